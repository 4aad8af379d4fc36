"""Network by allowlist: which ``host:port`` a sandboxed command (or the server's own HTTP client acting for
an agent) may reach, checked against the addresses the name resolves to, never a second lookup.

The sandbox has no network of its own. A forwarder inside it (goals/sandbox_forward.py) relays
127.0.0.1:3128 to a unix socket where :class:`Proxy` (an asyncio HTTP proxy in a thread of the worker) answers
CONNECT and absolute-URI requests for the allowed destinations only. :func:`requests_session` applies the same
rule to code running outside the sandbox; :func:`public_session` lets any host through at public addresses only
(web push: an endpoint is whatever a browser sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024
HEAD_TIMEOUT_S = 30
CONNECT_TIMEOUT_S = 10
MAX_CONNECTIONS = 128
MAX_REFUSALS = 100
KILL_WAIT_S = 5
CHUNK = 65536
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
# Addresses that are global by Python's tables but reach the inside: 6to4 and NAT64 embed an IPv4 address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(Exception):
    """A destination outside the allowlist; the message is one line: ``refused: host:port (why)``."""


class Unresolved(EgressRefused):
    """A name that does not resolve (now: it may later)."""


@dataclass(frozen=True)
class Rule:
    """One allowed destination. ``host`` is a name (``*.example.com`` allows its subdomains) or an IP;
    ``private_ok`` lets it resolve to loopback or private addresses (for entries written by staff only)."""

    host: str
    port: int
    private_ok: bool = False

    @classmethod
    def parse(cls, text: str, *, private_ok: bool = False) -> Rule:
        """``api.openai.com:443``, ``*.example.com:443``, ``10.0.0.5:8080`` or ``[::1]:8080``; a ValueError
        whose message fits under a form field otherwise."""
        text = (text or "").strip()
        example = "write host:port, e.g. api.openai.com:443"
        if text.startswith("["):
            host, bracket, rest = text[1:].partition("]")
            if not bracket or not rest.startswith(":"):
                raise ValueError(f"“{text}” is not a destination: {example}.")
            port_text = rest[1:]
            try:
                host = str(ipaddress.IPv6Address(host))
            except ValueError:
                raise ValueError(f"“{host}” is not an IPv6 address.") from None
        else:
            host, colon, port_text = text.rpartition(":")
            if not colon or not host:
                raise ValueError(f"“{text}” has no port: {example}.")
            if "/" in text:
                raise ValueError(f"“{text}” is not a host name: {example}, without a scheme or path.")
            if ":" in host:
                raise ValueError(f"Put an IPv6 address in brackets: [{host}]:{port_text}.")
            host = host.lower().rstrip(".")
            name = host[2:] if host.startswith("*.") else host
            labels = name.split(".")
            if not is_ip(host) and (len(name) > 253 or not all(_LABEL.match(label) for label in labels)):
                raise ValueError(f"“{host}” is not a host name: {example}.")
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ValueError(f"“{port_text}” is not a port: use a number from 1 to 65535.")
        return cls(host, int(port_text), private_ok)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def matches(self, host: str, port: int) -> bool:
        host, own = _normal_host(host), _normal_host(self.host)
        if port != self.port:
            return False
        if own.startswith("*."):
            return host.endswith(own[1:]) and len(host) > len(own) - 1
        return host == own


def is_ip(host: str) -> bool:
    """Whether the host is an IP address written out (not a name to resolve)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _normal_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))
    return host


def _why_private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why the address is not a public one ("" when it is)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = (
            ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        )
        if embedded is not None:
            inner = _why_private(embedded)
            return f"{inner}, inside an IPv6 address" if inner else ""
    for test, name in (
        (ip.is_loopback, "loopback"),
        (ip.is_unspecified, "unspecified"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"), "carrier-grade NAT"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not public"),
    ):
        if test:
            return f"a {name} address"
    return ""


def check(host: str, port: int, rules: Iterable[Rule], *, every: bool = False) -> list[str]:
    """The addresses ``host:port`` may be reached at under ``rules`` (resolved once, here); EgressRefused
    when no rule allows it or every address it resolves to is private and its rule does not say private_ok
    (with ``every``: when any of them is)."""
    host = _normal_host(host)
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    rule = next((rule for rule in rules if rule.matches(host, port)), None)
    if rule is None:
        raise EgressRefused(f"refused: {shown} (not in the allowlist)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise Unresolved(f"refused: {shown} (the name does not resolve: {error})") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    allowed, why = [], ""
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        reason = "" if rule.private_ok else _why_private(ip)
        if reason:
            why = why or f"{address} is {reason}"
        else:
            allowed.append(address)
    if not allowed or (every and why):
        raise EgressRefused(f"refused: {shown} ({why or 'no address'})")
    return allowed


# --- the proxy the sandbox reaches through its forwarder ---------------------------------------------------


class Proxy:
    """An HTTP proxy on a unix socket, in a thread of its own, that lets through only what ``rules`` allow:
    CONNECT (https and anything else over TLS) and absolute-URI requests (plain http). ``refused`` lists the
    refusals, one line each."""

    def __init__(self, rules: Iterable[Rule], socket_path: Path, *, owner: tuple[int, int] | None = None):
        self.rules = tuple(rules)
        self.socket_path = Path(socket_path)
        self.owner = owner
        self.refused: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None
        self._handlers: set[asyncio.Task] = set()
        self._transports: set[asyncio.BaseTransport] = set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="goalpost-egress-proxy", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        try:
            server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path), limit=HEAD_LIMIT)
            if self.owner is not None:
                os.chown(self.socket_path, *self.owner)
            self.socket_path.chmod(0o600)
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        async with server:
            await self._stopped.wait()
            server.close()
            # Connections still open (the box is gone or going) end with the proxy.
            for transport in list(self._transports):
                transport.abort()
            if self._handlers:
                await asyncio.wait(self._handlers, timeout=KILL_WAIT_S)

    def _refuse(self, reason: str) -> None:
        log.info("egress %s", reason)
        if reason not in self.refused and len(self.refused) < MAX_REFUSALS:
            self.refused.append(reason)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._slots.locked():
            writer.close()
            return
        handler = asyncio.current_task()
        self._handlers.add(handler)
        self._transports.add(writer.transport)
        handler.add_done_callback(self._handlers.discard)
        async with self._slots:
            try:
                await self._proxy(reader, writer)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                pass
            except Exception:  # a hostile request must never take the proxy down
                log.exception("egress proxy: unexpected error")
            finally:
                writer.close()
                self._transports.discard(writer.transport)

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "Bad Request", "not an HTTP proxy request")
            return
        method, target, version = parts
        if method.upper() == "CONNECT":
            host, _, port_text = target.rpartition(":")
            first = b""
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                await _answer(writer, 400, "Bad Request", "only CONNECT and http:// requests go through this proxy")
                return
            host, port_text = url.hostname, str(url.port or 80)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            dropped = ("proxy-", "connection:", "keep-alive:", "host:")
            kept = [line for line in header_lines if line and not line.lower().startswith(dropped)]
            # The Host header names the checked host: a shared address (a CDN) must not route it elsewhere.
            host_header = f"Host: {url.netloc.rpartition('@')[2]}"
            lines = [f"{method} {path} {version}", host_header, *kept, "Connection: close", "", ""]
            first = "\r\n".join(lines).encode("latin-1")
        if not port_text.isdigit():
            await _answer(writer, 400, "Bad Request", f"no port in {target}")
            return
        port = int(port_text)
        try:
            addresses = await asyncio.get_running_loop().run_in_executor(None, check, host, port, self.rules)
        except EgressRefused as refusal:
            self._refuse(str(refusal))
            await _answer(writer, 403, "Forbidden", str(refusal))
            return
        upstream = await _open(addresses, port)
        if upstream is None:
            await _answer(writer, 502, "Bad Gateway", f"could not connect to {host}:{port}")
            return
        up_reader, up_writer = upstream
        self._transports.add(up_writer.transport)
        try:
            if first:
                up_writer.write(first)
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            self._transports.discard(up_writer.transport)


async def _open(addresses: list[str], port: int):
    for address in addresses:
        with contextlib.suppress(OSError, TimeoutError):
            return await asyncio.wait_for(asyncio.open_connection(address, port, limit=CHUNK), CONNECT_TIMEOUT_S)
    return None


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
    except OSError:
        sink.close()


async def _answer(writer: asyncio.StreamWriter, status: int, phrase: str, text: str) -> None:
    body = f"{text}\n".encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode("latin-1") + body)
    with contextlib.suppress(OSError):
        await writer.drain()


# --- the same rule for the server's own HTTP client -------------------------------------------------------


class _CheckedConnection:
    """Connects to an address :func:`check` vetted, keeping the host name for the Host header, SNI and the
    certificate check."""

    egress_rules: tuple[Rule, ...] | None = ()  # None: any host, at public addresses only

    def _new_conn(self) -> socket.socket:
        rules = (Rule(self.host, self.port),) if self.egress_rules is None else self.egress_rules
        addresses = check(self.host, self.port, rules, every=self.egress_rules is None)
        error: Exception | None = None
        for address in addresses:
            try:
                return create_connection(
                    (address, self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except TimeoutError as failure:
                error = ConnectTimeoutError(self, f"Connection to {self.host} timed out. ({failure})")
            except OSError as failure:
                error = NewConnectionError(self, f"Failed to establish a new connection: {failure}")
        raise error


class _EgressAdapter(HTTPAdapter):
    def __init__(self, rules: tuple[Rule, ...] | None, **options):
        self.egress_rules = rules
        super().__init__(**options)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        rules = self.egress_rules
        http = type("EgressHTTPConnection", (_CheckedConnection, HTTPConnection), {"egress_rules": rules})
        https = type("EgressHTTPSConnection", (_CheckedConnection, HTTPSConnection), {"egress_rules": rules})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("EgressHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("EgressHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        raise EgressRefused(f"refused: {proxy} (egress never goes through a proxy)")


def requests_session(rules: Iterable[Rule]) -> requests.Session:
    """A requests Session that reaches only what ``rules`` allow, at the addresses checked (EgressRefused
    otherwise); the environment's proxy settings are ignored."""
    session = requests.Session()
    session.trust_env = False
    adapter = _EgressAdapter(tuple(rules))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def public_session() -> requests.Session:
    """A requests Session that reaches any host, only if every address it resolves to is public: checked at each
    connection, which goes to the address checked (a DNS answer that changes meanwhile cannot redirect it). A
    private destination is EgressRefused; the environment's proxy settings are ignored."""
    session = requests.Session()
    session.trust_env = False
    adapter = _EgressAdapter(None)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session

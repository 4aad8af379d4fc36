"""A local push service that speaks the Web Push protocol, for the sending side's tests.

It checks what a real push service checks: the VAPID `Authorization: vapid t=<JWT>, k=<key>` header (the ES256
signature verified against k, k the key the browser subscribed with, `aud` the endpoint's origin, `exp` in the
future and within 24 h, `sub` present), `Content-Encoding: aes128gcm`, the TTL, Urgency and Topic headers; and it
decrypts the payload with the browser's private key, as the browser would. It answers 201, or what it is told:
404, 410, 429 with Retry-After, 500, or no answer at all (hang).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from approvals.models import PushSubscription

AUTHORIZATION = re.compile(r"^vapid t=([\w-]+)\.([\w-]+)\.([\w-]+),\s*k=([\w-]+)$", re.IGNORECASE)
URGENCIES = {"very-low", "low", "normal", "high"}
TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """What a browser keeps for one subscription: its ECDH key pair and auth secret."""

    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str

    @classmethod
    def new(cls, application_server_key: str) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16), application_server_key)

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(point)


@dataclass
class Push:
    """One push the service accepted, as the browser would see it."""

    endpoint: str
    payload: dict
    ttl: int
    urgency: str
    topic: str | None
    claims: dict


@dataclass
class FakePushService:
    application_server_key: str
    received: list[Push] = field(default_factory=list)
    attempts: list[tuple[str, int | str]] = field(default_factory=list)  # (endpoint, what was answered)
    violations: list[str] = field(default_factory=list)
    client_ports: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._browsers: dict[str, Browser] = {}
        self._answers: dict[str | None, tuple[int | str, str | None]] = {None: (201, None)}
        self._times: dict[str | None, int] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.service = self
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePushService:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    # --- the browser side ---

    def subscribe(self, user, device_name: str = "phone") -> PushSubscription:
        """Subscribe a new browser of `user` and store its subscription as the subscribe view would."""
        return PushSubscription.objects.create(user=user, device_name=device_name, **self._new_browser())

    def subscribe_many(self, user, count: int) -> list[PushSubscription]:
        PushSubscription.objects.bulk_create(
            PushSubscription(user=user, device_name=f"device {i}", **self._new_browser()) for i in range(count)
        )
        return list(PushSubscription.objects.filter(user=user, endpoint__startswith=self.origin))

    def _new_browser(self) -> dict:
        path = f"/wpush/v2/{secrets.token_urlsafe(16)}"
        browser = Browser.new(self.application_server_key)
        self._browsers[path] = browser
        return {"endpoint": self.origin + path, "p256dh": browser.p256dh, "auth": b64url(browser.auth_secret)}

    # --- what the service answers ---

    def answer(
        self, status: int | str, *, retry_after: str | None = None, endpoint: str | None = None, times: int = 0
    ) -> None:
        """Answer `status` ("hang": never answer) for one endpoint or (None) all; `times` > 0: then 201 again."""
        self._answers[endpoint] = (status, retry_after)
        self._times[endpoint] = times

    def payloads(self, endpoint: str | None = None) -> list[dict]:
        return [push.payload for push in self.received if endpoint in (None, push.endpoint)]

    def endpoints(self) -> list[str]:
        return [push.endpoint for push in self.received]

    # --- the protocol ---

    def handle(self, path: str, headers, body: bytes) -> tuple[int | str, str | None]:
        endpoint = self.origin + path
        browser = self._browsers.get(path)
        if browser is None:
            return 404, None
        problem, status, claims = self._check_vapid(headers.get("Authorization", ""), browser)
        if problem is None:
            problem, status = self._check_headers(headers)
        payload = None
        if problem is None:
            try:
                plain = http_ece.decrypt(
                    body, private_key=browser.private_key, auth_secret=browser.auth_secret, version="aes128gcm"
                )
                payload = json.loads(plain)
            except (http_ece.ECEException, ValueError) as error:
                problem, status = f"payload does not decrypt: {error!r}", 400
        with self._lock:
            if problem is not None:
                self.violations.append(f"{endpoint}: {problem}")
                self.attempts.append((endpoint, status))
                return status, None
            key = endpoint if endpoint in self._answers else None
            answer, retry_after = self._answers[key]
            if self._times.get(key):
                self._times[key] -= 1
                if not self._times[key]:
                    self._answers[key] = (201, None)
            self.attempts.append((endpoint, answer))
            if answer == 201:
                self.received.append(
                    Push(
                        endpoint=endpoint,
                        payload=payload,
                        ttl=int(headers["TTL"]),
                        urgency=headers["Urgency"],
                        topic=headers.get("Topic"),
                        claims=claims,
                    )
                )
        return answer, retry_after

    def _check_vapid(self, authorization: str, browser: Browser) -> tuple[str | None, int, dict]:
        match = AUTHORIZATION.match(authorization.strip())
        if not match:
            return f"Authorization is not 'vapid t=…, k=…': {authorization[:40]!r}", 401, {}
        header_b64, claims_b64, signature_b64, key_b64 = match.groups()
        try:
            header = json.loads(unb64url(header_b64))
            claims = json.loads(unb64url(claims_b64))
            public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key_b64))
            signature = unb64url(signature_b64)
        except ValueError as error:
            return f"VAPID token does not parse: {error!r}", 401, {}
        if header.get("alg") != "ES256" or len(signature) != 64:
            return f"VAPID token is not ES256: {header}", 401, claims
        try:
            public_key.verify(
                encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")),
                f"{header_b64}.{claims_b64}".encode(),
                ec.ECDSA(hashes.SHA256()),
            )
        except InvalidSignature:
            return "VAPID signature does not verify against k", 401, claims
        if key_b64 != browser.application_server_key:
            return "k is not the key the browser subscribed with", 403, claims
        now = time.time()
        if claims.get("aud") != self.origin:
            return f"aud {claims.get('aud')!r} is not {self.origin!r}", 403, claims
        if not isinstance(claims.get("exp"), int) or not now < claims["exp"] <= now + 24 * 60 * 60:
            return f"exp {claims.get('exp')!r} is not within the next 24 hours", 403, claims
        if not claims.get("sub"):
            return "sub is missing", 403, claims
        return None, 201, claims

    def _check_headers(self, headers) -> tuple[str | None, int]:
        if headers.get("Content-Encoding") != "aes128gcm":
            return f"Content-Encoding is {headers.get('Content-Encoding')!r}", 415
        if not (headers.get("TTL") or "").isdigit():
            return f"TTL is {headers.get('TTL')!r}", 400
        if headers.get("Urgency") not in URGENCIES:
            return f"Urgency is {headers.get('Urgency')!r}", 400
        topic = headers.get("Topic")
        if topic is not None and not TOPIC.match(topic):
            return f"Topic {topic!r} is not 1-32 URL-safe base64 characters", 400
        return None, 201


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a reused session shows as one connection

    def do_POST(self) -> None:
        service: FakePushService = self.server.service
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with service._lock:
            service.client_ports.add(self.client_address[1])
        status, retry_after = service.handle(self.path, self.headers, body)
        if status == "hang":
            service._release.wait(30)
            self.close_connection = True
            return
        self.send_response(status)
        if status == 201:
            self.send_header("Location", f"{service.origin}/m/{secrets.token_urlsafe(8)}")
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args) -> None:
        pass

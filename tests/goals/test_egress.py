import datetime
import http.server
import json
import ssl
import subprocess
import threading

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from goals.egress import EgressRefused, Rule, check, requests_session
from goals.sandbox import FORWARD_PORT, Box, Limits, Session, sandbox_python

LIMITS = Limits(cpu_seconds=60, memory_mb=512, processes=128, file_size_mb=64, disk_mb=256, tmp_mb=64)


# --- rules -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        pytest.param("api.openai.com:443", Rule("api.openai.com", 443), id="name"),
        pytest.param(" API.OpenAI.com.:443 ", Rule("api.openai.com", 443), id="case-and-trailing-dot"),
        pytest.param("*.example.com:8443", Rule("*.example.com", 8443), id="wildcard"),
        pytest.param("10.0.0.5:8080", Rule("10.0.0.5", 8080), id="ipv4"),
        pytest.param("[::1]:8080", Rule("::1", 8080), id="ipv6-in-brackets"),
        pytest.param("localhost:5432", Rule("localhost", 5432), id="single-label"),
    ],
)
def test_a_rule_is_read_from_host_and_port(text, rule):
    assert Rule.parse(text) == rule
    assert Rule.parse(text, private_ok=True).private_ok is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("api.openai.com", "has no port", id="no-port"),
        pytest.param("api.openai.com:https", "is not a port", id="port-not-a-number"),
        pytest.param("api.openai.com:70000", "is not a port", id="port-too-large"),
        pytest.param("api.openai.com:0", "is not a port", id="port-zero"),
        pytest.param("::1:8080", "in brackets", id="ipv6-without-brackets"),
        pytest.param("[nope]:80", "is not an IPv6 address", id="bad-ipv6"),
        pytest.param("bad_host!:80", "is not a host name", id="bad-name"),
        pytest.param("http://x.com:80", "is not a host name", id="a-url"),
        pytest.param("", "has no port", id="empty"),
    ],
)
def test_a_bad_rule_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        Rule.parse(text)


@pytest.mark.parametrize(
    ("host", "port", "rules", "result"),
    [
        pytest.param("93.184.215.14", 443, [Rule("93.184.215.14", 443)], ["93.184.215.14"], id="public-ip"),
        pytest.param("93.184.215.14", 80, [Rule("93.184.215.14", 443)], "not in the allowlist", id="other-port"),
        pytest.param("evil.example", 443, [Rule("api.openai.com", 443)], "not in the allowlist", id="other-host"),
        pytest.param("127.0.0.1", 6379, [Rule("127.0.0.1", 6379)], "loopback", id="loopback"),
        pytest.param("localhost", 5432, [Rule("localhost", 5432)], "loopback", id="name-of-loopback"),
        pytest.param("LOCALHOST", 5432, [Rule("localhost", 5432, True)], ["127.0.0.1"], id="private-ok"),
        pytest.param("::ffff:127.0.0.1", 80, [Rule("::ffff:127.0.0.1", 80)], "loopback", id="ipv4-mapped"),
        pytest.param("[::1]", 80, [Rule("::1", 80)], "loopback", id="ipv6-loopback"),
        pytest.param("10.1.2.3", 80, [Rule("10.1.2.3", 80)], "private", id="private"),
        pytest.param("169.254.169.254", 80, [Rule("169.254.169.254", 80)], "link-local", id="cloud-metadata"),
        pytest.param("100.64.0.1", 80, [Rule("100.64.0.1", 80)], "carrier-grade NAT", id="cgnat"),
        pytest.param("224.0.0.1", 80, [Rule("224.0.0.1", 80)], "multicast", id="multicast"),
        pytest.param("0.0.0.0", 80, [Rule("0.0.0.0", 80)], "unspecified", id="unspecified"),  # noqa: S104
        pytest.param("64:ff9b::7f00:1", 80, [Rule("64:ff9b::7f00:1", 80)], "loopback", id="nat64"),
        pytest.param("a.b.goalpost.invalid", 443, [Rule("*.goalpost.invalid", 443)], "does not resolve", id="wildcard"),
        pytest.param("example.com", 443, [Rule("*.example.com", 443)], "not in the allowlist", id="wildcard-apex"),
        pytest.param("badexample.com", 443, [Rule("*.example.com", 443)], "not in the allowlist", id="suffix"),
    ],
)
def test_check_allows_only_listed_public_destinations(host, port, rules, result):
    if isinstance(result, list):
        assert check(host, port, rules) == result
    else:
        with pytest.raises(EgressRefused, match=result) as refusal:
            check(host, port, rules)
        assert str(refusal.value).startswith("refused: ")


# --- the server's own HTTP client ------------------------------------------------------------------------


class Echo(http.server.BaseHTTPRequestHandler):
    """Answers every GET with the Host header it received (and the TLS server name, when there is one)."""

    def do_GET(self):
        body = json.dumps({"host": self.headers["Host"], "sni": getattr(self.server, "sni", None)}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def echo_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_echo_server(tmp_path):
    """An https echo server with a certificate for "localhost" only, and the file that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    def note_server_name(connection, server_name, _context):
        server.sni = server_name

    context.sni_callback = note_server_name
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], cert_file
    server.shutdown()
    server.server_close()


def test_requests_session_reaches_an_allowed_private_destination(echo_server):
    session = requests_session([Rule("127.0.0.1", echo_server, private_ok=True)])
    response = session.get(f"http://127.0.0.1:{echo_server}/", timeout=10)
    assert response.json()["host"] == f"127.0.0.1:{echo_server}"


@pytest.mark.parametrize(
    ("url", "rules", "message"),
    [
        pytest.param("http://127.0.0.1:{port}/", [Rule("127.0.0.1", 0)], "loopback", id="without-private-ok"),
        pytest.param("http://localhost:{port}/", [Rule("localhost", 0)], "loopback", id="a-name-for-loopback"),
        pytest.param("http://127.0.0.1:{port}/", [], "not in the allowlist", id="no-rules"),
        pytest.param("http://127.0.0.1:1/", [Rule("127.0.0.1", 0, True)], "not in the allowlist", id="other-port"),
    ],
)
def test_requests_session_refuses_what_the_rules_do_not_allow(echo_server, url, rules, message):
    rules = [Rule(rule.host, rule.port or echo_server, rule.private_ok) for rule in rules]
    with pytest.raises(EgressRefused, match=message):
        requests_session(rules).get(url.format(port=echo_server), timeout=10)


def test_requests_session_ignores_the_proxy_in_the_environment(echo_server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    session = requests_session([Rule("127.0.0.1", echo_server, private_ok=True)])
    assert session.get(f"http://127.0.0.1:{echo_server}/", timeout=10).status_code == 200


def test_requests_session_keeps_the_name_for_tls_while_connecting_to_the_checked_address(tls_echo_server):
    port, trusted = tls_echo_server
    session = requests_session([Rule("localhost", port, private_ok=True)])
    response = session.get(f"https://localhost:{port}/", timeout=10, verify=str(trusted))
    assert response.json() == {"host": f"localhost:{port}", "sni": "localhost"}


def test_requests_session_still_checks_the_certificate(tls_echo_server):
    port, _ = tls_echo_server
    session = requests_session([Rule("localhost", port, private_ok=True)])
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"https://localhost:{port}/", timeout=10)


# --- the sandbox's way out -------------------------------------------------------------------------------

CLIENT = f"""
import json, os, socket, sys

def through_proxy(host, port):
    try:
        return ask_proxy(host, port)
    except OSError as error:
        return type(error).__name__

def ask_proxy(host, port):
    with socket.create_connection(("127.0.0.1", {FORWARD_PORT}), timeout=10) as proxy:
        proxy.sendall(f"CONNECT {{host}}:{{port}} HTTP/1.1\\r\\nHost: {{host}}:{{port}}\\r\\n\\r\\n".encode())
        answer = proxy.makefile("rb")
        status = answer.readline().decode().strip()
        while answer.readline() not in (b"\\r\\n", b""):
            pass
        if " 200 " not in status:
            return status + " " + answer.read().decode().strip()
        proxy.sendall(f"GET / HTTP/1.0\\r\\nHost: {{host}}:{{port}}\\r\\n\\r\\n".encode())
        return answer.read().decode().rsplit("\\r\\n", 1)[-1]

def plain_http(host, port):
    try:
        with socket.create_connection(("127.0.0.1", {FORWARD_PORT}), timeout=10) as proxy:
            request = f"GET http://{{host}}:{{port}}/ HTTP/1.1\\r\\nHost: evil.example\\r\\n\\r\\n"
            proxy.sendall(request.encode())
            answer = proxy.makefile("rb").read().decode()
            return answer.split("\\r\\n", 1)[0] + " " + answer.rsplit("\\r\\n", 1)[-1].strip()
    except OSError as error:
        return type(error).__name__

def direct(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return "connected"
    except OSError as error:
        return type(error).__name__

targets = json.loads(sys.argv[1])
print(json.dumps({{
    "proxied": {{name: through_proxy(host, port) for name, (host, port) in targets.items()}},
    "plain": {{name: plain_http(host, port) for name, (host, port) in targets.items()}},
    "direct": {{name: direct(port) for name, (_, port) in targets.items()}},
    "proxy_variable": os.environ.get("HTTPS_PROXY", ""),
}}))
"""


@pytest.fixture
def two_listeners():
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [server.server_address[1] for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def run_client(worktree, rules, targets) -> tuple[dict, list[str]]:
    python = sandbox_python()
    if python is None:
        pytest.skip("no Python the sandbox user can run")
    with Session(Box(worktree, egress=tuple(rules), limits=LIMITS)) as session:
        result = subprocess.run(
            session.wrap([python, "-I", "-c", CLIENT, json.dumps(targets)]),
            cwd=worktree,
            env=session.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout), session.refused


def test_the_proxy_lets_through_only_the_allowed_listener(box_worktree, two_listeners):
    allowed, other = two_listeners
    report, refused = run_client(
        box_worktree,
        [Rule("127.0.0.1", allowed, private_ok=True)],
        {"allowed": ["127.0.0.1", allowed], "other": ["127.0.0.1", other]},
    )
    assert json.loads(report["proxied"]["allowed"])["host"] == f"127.0.0.1:{allowed}"
    assert report["proxied"]["other"] == f"HTTP/1.1 403 Forbidden refused: 127.0.0.1:{other} (not in the allowlist)"
    # Plain http goes through too, with the Host header naming the checked host whatever the client wrote.
    status, _, body = report["plain"]["allowed"].partition(" {")
    assert (status, json.loads("{" + body)["host"]) == ("HTTP/1.0 200 OK", f"127.0.0.1:{allowed}")
    assert report["plain"]["other"].startswith("HTTP/1.1 403 Forbidden refused: 127.0.0.1:")
    assert refused == [f"refused: 127.0.0.1:{other} (not in the allowlist)"]
    # A program that ignores the proxy variables has no network to go around it.
    assert report["direct"] == {"allowed": "ConnectionRefusedError", "other": "ConnectionRefusedError"}
    assert report["proxy_variable"] == f"http://127.0.0.1:{FORWARD_PORT}"


def test_a_name_that_resolves_to_loopback_needs_private_ok(box_worktree, two_listeners):
    allowed, _ = two_listeners
    report, refused = run_client(box_worktree, [Rule("localhost", allowed)], {"named": ["localhost", allowed]})
    reason = f"refused: localhost:{allowed} (127.0.0.1 is a loopback address)"
    assert report["proxied"]["named"] == f"HTTP/1.1 403 Forbidden {reason}"
    assert refused == [reason]


def test_without_rules_there_is_no_network_at_all(box_worktree, two_listeners):
    allowed, _ = two_listeners
    report, refused = run_client(box_worktree, [], {"allowed": ["127.0.0.1", allowed]})
    # Nothing listens on the forwarder's port: there is no proxy to ask.
    assert report == {
        "proxied": {"allowed": "ConnectionRefusedError"},
        "plain": {"allowed": "ConnectionRefusedError"},
        "direct": {"allowed": "ConnectionRefusedError"},
        "proxy_variable": "",
    }
    assert refused == []


def test_no_rules_means_no_proxy_and_no_proxy_variables(box_worktree):
    with Session(Box(box_worktree, limits=LIMITS)) as session:
        assert session._proxy is None
        assert "HTTPS_PROXY" not in session.env()
        assert "--unshare-net" in session.wrap(["true"])


def test_the_sandbox_never_shares_the_hosts_network(box_worktree):
    with Session(Box(box_worktree, egress=(Rule("127.0.0.1", 1, True),), limits=LIMITS)) as session:
        argv = session.wrap(["true"])
    assert "--unshare-net" in argv
    assert "--share-net" not in argv

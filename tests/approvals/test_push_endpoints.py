"""Push endpoints are https on public addresses only: refused when a browser subscribes, and again at each
connection, so a stored endpoint (or a name that resolves elsewhere since) never gets a connection to loopback or a
private network. settings.GOALPOST_PUSH_ALLOW_PRIVATE lets the tests' local fake through; here it is off."""

import json
import socket

import pytest

from approvals import push
from approvals.models import PushSubscription
from approvals.tasks import send_push
from tests.support.fake_push import Browser, b64url

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_only(settings):
    settings.GOALPOST_PUSH_ALLOW_PRIVATE = False


@pytest.fixture
def listener():
    """(port, connections()) of a TCP port on 127.0.0.1: the kernel completes connections to it unaccepted, and
    connections() takes them from the backlog, so none can go unnoticed."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    server.setblocking(False)

    def connections() -> list[tuple]:
        peers = []
        while True:
            try:
                conn, peer = server.accept()
            except BlockingIOError:
                return peers
            conn.close()
            peers.append(peer)

    yield server.getsockname()[1], connections
    server.close()


def keys() -> dict:
    browser = Browser.new(push.settings.VAPID_PUBLIC_KEY)
    return {"p256dh": browser.p256dh, "auth": b64url(browser.auth_secret)}


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        pytest.param("http://push.example.net/x", "must be an https:// URL", id="plain-http"),
        pytest.param("ftp://push.example.net/x", "must be an https:// URL", id="another-scheme"),
        pytest.param("https://127.0.0.1/x", "127.0.0.1 is a loopback address", id="loopback"),
        pytest.param("https://localhost:8443/x", "a loopback address", id="a-name-for-loopback"),
        pytest.param("https://[::1]/x", "is a loopback address", id="ipv6-loopback"),
        pytest.param("https://[::ffff:127.0.0.1]/x", "loopback address, inside an IPv6 address", id="ipv4-mapped"),
        pytest.param("https://10.1.2.3/x", "a private address", id="private"),
        pytest.param("https://192.168.0.10/x", "a private address", id="home-network"),
        pytest.param("https://169.254.169.254/latest/meta-data", "a link-local address", id="cloud-metadata"),
        pytest.param("https://100.64.0.1/x", "carrier-grade NAT", id="cgnat"),
        pytest.param("https://0.0.0.0/x", "unspecified", id="unspecified"),
        pytest.param("https://push.example.net:99999/x", "port is not a number", id="bad-port"),
    ],
)
def test_subscribing_refuses_an_endpoint_that_is_not_https_and_public(as_owner, endpoint, reason):
    body = {"endpoint": endpoint, "keys": keys()}
    response = as_owner.post("/settings/push/subscribe", json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not PushSubscription.objects.exists()


def test_subscribing_accepts_a_public_https_endpoint(as_owner):
    body = {"endpoint": "https://93.184.215.14/wpush/v2/abc", "keys": keys()}
    response = as_owner.post("/settings/push/subscribe", json.dumps(body), content_type="application/json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("https://127.0.0.1:{port}/wpush/x", id="a-stored-loopback-address"),
        pytest.param("http://127.0.0.1:{port}/wpush/x", id="a-stored-plain-http-endpoint"),
        pytest.param("https://localhost:{port}/wpush/x", id="a-name-that-resolves-to-loopback-now"),
    ],
)
def test_send_test_never_connects_to_a_refused_address(owner, listener, endpoint):
    port, connections = listener
    device = PushSubscription.objects.create(user=owner, endpoint=endpoint.format(port=port), **keys())
    send_push.apply(args=(device.pk, json.dumps(push.payload_for_test())))
    assert connections() == []
    assert not PushSubscription.objects.filter(pk=device.pk).exists()  # refused for good: the device goes


def test_the_connection_itself_refuses_a_name_resolving_to_loopback(owner, listener):
    port, connections = listener
    device = PushSubscription.objects.create(user=owner, endpoint=f"https://localhost:{port}/wpush/x", **keys())
    with push.push_session(device.endpoint) as session, pytest.raises(push.PushError) as refused:
        push.send_notification(device, push.payload_for_test(), session=session)
    assert refused.value.permanent
    assert "localhost" in str(refused.value) and "loopback" in str(refused.value)
    assert connections() == []


def test_the_listener_does_see_a_connection(listener):
    port, connections = listener
    socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert len(connections()) == 1


def test_the_send_test_button_says_why_a_refused_endpoint_gets_nothing(as_owner, owner, listener, monkeypatch):
    port, connections = listener
    device = PushSubscription.objects.create(
        user=owner, device_name="Old tablet", endpoint=f"https://localhost:{port}/wpush/x", **keys()
    )
    queued = []
    monkeypatch.setattr(send_push, "apply_async", lambda args, **options: queued.append(args))
    response = as_owner.post("/settings/push/test", {"id": device.pk}, follow=True)
    page = response.content.decode()
    assert "Not sent to Old tablet: The endpoint is not a public push service" in page
    assert "a loopback address" in page
    assert queued == [] and connections() == []

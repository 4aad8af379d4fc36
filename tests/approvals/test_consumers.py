import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from approvals.consumers import UNAUTHENTICATED, user_group
from config.asgi import application
from tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@sync_to_async
def session_cookie_for(username: str) -> str:
    user = make_user(username)
    client = Client()
    client.force_login(user)
    return user.pk, client.cookies["sessionid"].value


def communicator(cookie: str | None = None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/", headers=headers)


async def test_anonymous_socket_is_closed():
    ws = communicator()
    connected, code = await ws.connect()
    assert not connected
    assert code == UNAUTHENTICATED


async def test_signed_in_user_receives_their_own_events_only():
    alice_id, alice_cookie = await session_cookie_for("alice")
    bob_id, bob_cookie = await session_cookie_for("bob")
    alice, bob = communicator(alice_cookie), communicator(bob_cookie)
    assert (await alice.connect())[0]
    assert (await bob.connect())[0]
    html = '<div id="inbox-count" hx-swap-oob="true">1</div>'
    await get_channel_layer().group_send(user_group(alice_id), {"type": "fragment", "html": html})
    assert await alice.receive_from(timeout=2) == html
    assert await bob.receive_nothing(timeout=0.3)
    await alice.send_to(text_data="ignored")
    assert await alice.receive_nothing(timeout=0.1)
    await alice.disconnect()
    await bob.disconnect()

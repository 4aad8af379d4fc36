import contextlib
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from approvals.broadcast import broadcast, fragment, live_channel
from approvals.consumers import CATCH_UP, UNAUTHENTICATED, live_sockets, user_group
from config.asgi import application
from config.pubsub import client_name
from tests.factories import make_user, subprocess_database_url
from tests.support.processes import running_daphne, wait_until
from tests.support.stack import LiveSocket, reconnect_codes, session_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_prefix(settings) -> str:
    """Test runs side by side share one Redis, and each has a user 1: a prefix of our own keeps them apart."""
    layer = settings.CHANNEL_LAYERS["default"]
    prefix = f"goalpost-test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": prefix}}}
    return prefix


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
    assert live_sockets().count() == 0


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


async def test_a_broadcast_reaches_each_socket_of_its_people_exactly_once_and_nobody_else():
    alice_id, alice_cookie = await session_cookie_for("alice")
    bob_id, bob_cookie = await session_cookie_for("bob")
    carol_id, carol_cookie = await session_cookie_for("carol")
    phone, laptop = communicator(alice_cookie), communicator(alice_cookie)
    bob, carol = communicator(bob_cookie), communicator(carol_cookie)
    for ws in (phone, laptop, bob, carol):
        assert (await ws.connect())[0]
    card = '<article id="request-7" hx-swap-oob="afterbegin:#inbox-list">card</article>'

    assert await sync_to_async(broadcast)([alice_id, bob_id, alice_id], fragment(card))

    for ws in (phone, laptop, bob):
        assert await ws.receive_from(timeout=2) == card
        assert await ws.receive_nothing(timeout=0.2), "the card arrived twice"
    assert await carol.receive_nothing(timeout=0.2)
    for ws in (phone, laptop, bob, carol):
        await ws.disconnect()


async def test_a_closed_socket_leaves_the_process_registry():
    alice_id, alice_cookie = await session_cookie_for("alice")
    phone, laptop = communicator(alice_cookie), communicator(alice_cookie)
    assert (await phone.connect())[0]
    assert (await laptop.connect())[0]
    assert live_sockets().count() == 2

    await phone.disconnect()

    assert live_sockets().count() == 1
    assert await sync_to_async(broadcast)([alice_id], fragment("<p id='x'>still here</p>"))
    assert await laptop.receive_from(timeout=2) == "<p id='x'>still here</p>"
    await laptop.disconnect()
    assert live_sockets().by_user == {}
    assert live_sockets().listener.holders == 0


async def test_a_socket_sent_anything_but_a_fragment_event_gets_nothing():
    alice_id, alice_cookie = await session_cookie_for("alice")
    ws = communicator(alice_cookie)
    assert (await ws.connect())[0]

    assert await sync_to_async(broadcast)([alice_id], {"type": "websocket.close", "html": "x"})

    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


def test_sockets_on_two_daphne_processes_both_receive_the_card(private_prefix):
    alice, bob = make_user("alice"), make_user("bob")
    database_url = subprocess_database_url()
    card = '<article id="request-9" hx-swap-oob="afterbegin:#inbox-list">two processes</article>'
    sockets = []
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        servers = [running_daphne(database_url, GOALPOST_CHANNEL_PREFIX=private_prefix) for _ in range(2)]
        starts = [(server, pool.submit(server.__enter__)) for server in servers]  # both start at once
        for server, start in starts:
            if start.exception() is None:
                stack.push(server)
        webs = [start.result()[0] for _, start in starts]
        stack.callback(lambda: [socket.close() for _, socket in sockets])
        for web in webs:
            for user in (alice, bob):
                socket = LiveSocket(web, session_for(user))
                sockets.append((user, socket))
                assert socket.connect() == 0

        wait_until(lambda: broadcast([alice.pk], fragment(card)), what="a broadcast Redis accepts")

        for user, socket in sockets:
            if user == alice:
                assert socket.wait_for_text("two processes", timeout=10) == card
            else:
                with pytest.raises(TimeoutError):
                    socket.wait_for_text("two processes", timeout=0.3)
        assert all(socket.received.count(card) == 1 for user, socket in sockets if user == alice)


async def test_sockets_reconnect_to_catch_up_when_their_process_lost_the_live_subscription(settings):
    """Redis dropped the process's subscription (a restart): broadcasts may have been lost meanwhile, so once it is
    subscribed again every socket is closed with a code the htmx extension reopens after, and live.js catches up."""
    import redis

    _, alice_cookie = await session_cookie_for("alice")
    ws = communicator(alice_cookie)
    assert (await ws.connect())[0]
    admin = redis.Redis.from_url(settings.REDIS_URL)
    ours = [c for c in admin.client_list(_type="pubsub") if c["name"] == client_name(live_channel())]
    assert len(ours) == 1, "one subscription for the process, whatever its number of sockets"

    admin.client_kill_filter(_id=ours[0]["id"])

    closed = await ws.receive_output(timeout=10)
    assert closed == {"type": "websocket.close", "code": CATCH_UP}
    assert CATCH_UP in reconnect_codes()
    admin.close()

"""Live pages: what reaches each person's open sockets when requests open and settle and goals move."""

import re
import uuid

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from approvals import live
from approvals.broadcast import broadcast, fragment
from approvals.models import ApprovalRequest, Decision
from config.asgi import application
from goals.models import GoalStatus
from tests.factories import make_goal

DEAD_REDIS = "redis://127.0.0.1:1/0"


@pytest.fixture(autouse=True)
def private_channel_layer(settings):
    """Test runs side by side share one Redis, and each has a user 1: a prefix of our own keeps them apart."""
    layer = settings.CHANNEL_LAYERS["default"]
    prefix = f"goalpost-test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": prefix}}}


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def open_socket(user) -> WebsocketCommunicator:
    cookie = await sync_to_async(session_cookie)(user)
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1"), (b"cookie", f"sessionid={cookie}".encode())]
    socket = WebsocketCommunicator(application, "/ws/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


def inbox_count(html: str) -> str:
    match = re.search(r'<span id="inbox-count"[^>]*hx-swap-oob="true">(\d+)</span>', html)
    assert match, html
    return match.group(1)


@pytest.fixture
def sockets(owner, approver, outsider):
    opened: list[WebsocketCommunicator] = []

    async def connect(*users):
        for user in users:
            opened.append(await open_socket(user))
        return opened

    yield connect


@pytest.mark.django_db(transaction=True)
async def test_a_new_request_reaches_the_owner_and_the_approver_but_never_an_outsider(
    goal, owner, approver, outsider, sockets
):
    owner_ws, approver_ws, outsider_ws = await sockets(owner, approver, outsider)

    approval = await sync_to_async(ApprovalRequest.open)(goal, "step", summary="2 files, +3 −1", step_number=1)

    for ws in (owner_ws, approver_ws):
        html = await ws.receive_from(timeout=3)
        assert f'<article id="request-{approval.pk}"' in html
        assert 'hx-swap-oob="afterbegin:#inbox-list"' in html
        assert "2 files, +3 −1" in html
        assert "csrfmiddlewaretoken" not in html
        assert inbox_count(html) == "1"
        assert '<div id="inbox-empty" hx-swap-oob="true"></div>' in html
    assert await outsider_ws.receive_nothing(timeout=0.3)
    for ws in (owner_ws, approver_ws, outsider_ws):
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_decision_removes_the_card_everywhere_and_gives_each_person_their_own_count(
    goal, owner, approver, outsider, git_repo, sockets
):
    approval = await sync_to_async(ApprovalRequest.open)(goal, "step", summary="change", step_number=1)

    @sync_to_async
    def approvers_own_pending_request():
        their_goal = make_goal(approver, git_repo)
        ApprovalRequest.open(their_goal, "plan", summary="their plan")

    await approvers_own_pending_request()
    await sync_to_async(live.flush)()  # both cards went out before these pages opened
    owner_ws, approver_ws, outsider_ws = await sockets(owner, approver, outsider)

    await sync_to_async(approval.decide)(approver, "approve")

    for ws, count in ((owner_ws, "0"), (approver_ws, "1")):
        html = await ws.receive_from(timeout=3)
        assert f'<div id="request-{approval.pk}" hx-swap-oob="delete">' in html
        assert f'id="decision-area-{approval.pk}"' in html
        assert "Decided by approver: approve." in html
        assert inbox_count(html) == count
        # The inbox says so once nothing is left for this person.
        assert ('<div id="inbox-empty" hx-swap-oob="true">' in html) is (count == "0")
    assert await outsider_ws.receive_nothing(timeout=0.3)
    for ws in (owner_ws, approver_ws, outsider_ws):
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_superseded_request_leaves_and_its_successor_arrives(goal, owner, sockets):
    first = await sync_to_async(ApprovalRequest.open)(goal, "step", summary="first", step_number=1)
    await sync_to_async(live.flush)()  # the first card went out before this page opened
    (owner_ws,) = await sockets(owner)

    second = await sync_to_async(ApprovalRequest.open)(goal, "step", summary="second", step_number=2)

    gone = await owner_ws.receive_from(timeout=3)
    assert f'<div id="request-{first.pk}" hx-swap-oob="delete">' in gone
    assert "Replaced by a newer request." in gone
    arrived = await owner_ws.receive_from(timeout=3)
    assert f'<article id="request-{second.pk}"' in arrived
    assert inbox_count(arrived) == "1"
    await owner_ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_goal_status_change_fills_the_goal_status_elements_of_its_people_only(
    goal, owner, approver, outsider, sockets
):
    owner_ws, approver_ws, outsider_ws = await sockets(owner, approver, outsider)

    await sync_to_async(goal.set_status)(GoalStatus.PAUSED, owner, "Paused by hand.")

    for ws in (owner_ws, approver_ws):
        html = await ws.receive_from(timeout=3)
        assert f'<span id="goal-status-{goal.pk}" hx-swap-oob="innerHTML">' in html
        assert ">Paused</span>" in html
    assert await outsider_ws.receive_nothing(timeout=0.3)
    for ws in (owner_ws, approver_ws, outsider_ws):
        await ws.disconnect()


def test_broadcast_with_redis_down_returns_false_instead_of_raising(settings):
    settings.REDIS_URL = DEAD_REDIS
    assert broadcast([1, 2], fragment("<p id='x'>hi</p>")) is False


def test_a_decision_still_counts_when_redis_is_down(settings, pending, approver, django_capture_on_commit_callbacks):
    settings.REDIS_URL = DEAD_REDIS
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = pending.decide(approver, "approve")
    assert callbacks, "the live update was scheduled for after the commit"
    assert result.settled
    assert Decision.objects.filter(request=pending, user=approver, verdict="approve").exists()

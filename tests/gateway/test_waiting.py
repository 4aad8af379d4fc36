"""Agents waiting on a decision: woken by one subscription per process, with the outcome in the message."""

import asyncio
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from approvals.models import ApprovalRequest
from gateway import api
from gateway import calls as gateway
from goals.models import GoalStatus
from tests.factories import make_goal

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def private_prefix(settings) -> None:
    """Test runs side by side share one Redis: a channel prefix of our own keeps their decisions apart."""
    layer = settings.CHANNEL_LAYERS["default"]
    prefix = f"goalpost-test-{uuid.uuid4().hex[:12]}"
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": prefix}}}


@pytest.fixture
def reads(monkeypatch) -> list[int]:
    """Every database read of a request's outcome, by request id (the waiters' and the publisher's)."""
    seen: list[int] = []
    real = gateway.request_outcome

    def counted(request_id: int):
        seen.append(request_id)
        return real(request_id)

    monkeypatch.setattr(gateway, "request_outcome", counted)
    return seen


async def until(condition, what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {condition}"
        await asyncio.sleep(0.01)


async def test_a_decision_wakes_every_waiter_with_its_outcome_and_no_read_of_its_own(running, owner, git_repo, reads):
    request = await sync_to_async(ApprovalRequest.open)(running, "step", summary="deploy?")
    second_goal = await sync_to_async(make_goal)(owner, git_repo, status=GoalStatus.RUNNING)
    other = await sync_to_async(ApprovalRequest.open)(second_goal, "step", summary="migrate?")
    waiting = [asyncio.create_task(api.wait_for_outcome(request.pk, 20)) for _ in range(20)]
    bystander = asyncio.create_task(api.wait_for_outcome(other.pk, 20))
    await until(lambda: len(reads) == 21, "every waiter's first read")

    await sync_to_async(request.decide)(owner, "approve", comment="ship it")

    outcomes = await asyncio.wait_for(asyncio.gather(*waiting), 10)
    assert {(o.status, o.decision, o.decided_by, o.comment) for o in outcomes} == {
        ("approved", "allow", owner.username, "ship it")
    }
    assert reads.count(request.pk) == 21, "20 first reads and the publisher's one: none per waiter after it"
    assert not bystander.done(), "another request's waiter was not answered"
    bystander.cancel()
    await asyncio.gather(bystander, return_exceptions=True)
    assert api.settled_waiters().count() == 0


async def test_a_request_that_expires_while_waited_on_answers_expired_not_pending(running):
    request = await sync_to_async(ApprovalRequest.open)(running, "step", summary="deploy?")
    soon = timezone.now() + timedelta(milliseconds=300)
    await sync_to_async(ApprovalRequest.objects.filter(pk=request.pk).update)(expires_at=soon)

    outcome = await api.wait_for_outcome(request.pk, 15)

    assert outcome.status == "expired"
    assert outcome.decision == "deny"


async def test_a_waiter_woken_without_an_outcome_reads_it_from_the_database(running, owner, monkeypatch, reads):
    """After a gap in the subscription every waiter reads once: a decision may have been published meanwhile."""
    monkeypatch.setattr(gateway, "publish_settled", lambda request_id: False)  # the message is lost
    request = await sync_to_async(ApprovalRequest.open)(running, "step", summary="deploy?")
    waiting = asyncio.create_task(api.wait_for_outcome(request.pk, 20))
    await until(lambda: len(reads) == 1, "the first read")
    await sync_to_async(request.decide)(owner, "reject")
    assert not waiting.done()

    await api.settled_waiters().wake_all()

    outcome = await asyncio.wait_for(waiting, 10)
    assert (outcome.status, outcome.decision) == ("rejected", "deny")


def test_the_published_outcome_is_the_one_an_agent_reads(running, owner):
    request = ApprovalRequest.open(running, "step", summary="deploy?")
    request.decide(owner, "approve", comment="fine")
    read = gateway.request_outcome(request.pk)

    assert gateway.RequestOutcome.from_dict(read.as_dict()).as_dict() == read.as_dict()

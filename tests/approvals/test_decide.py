import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.utils import timezone

from approvals import signals
from approvals.models import (
    ApprovalRequest,
    Decision,
    DecisionRefused,
    RequestStatus,
    expire_overdue_requests,
)
from goals.models import Goal, GoalStatus, OnTimeout
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    """Every approvals signal sent during the test, as (name, kwargs)."""
    seen = []
    handlers = {}
    for name in ("request_opened", "decision_made", "vote_recorded", "request_expired", "request_superseded"):
        def handler(sender, name=name, **kwargs):
            seen.append((name, kwargs))
        handlers[name] = handler
        getattr(signals, name).connect(handler, weak=False)
    yield seen
    for name, handler in handlers.items():
        getattr(signals, name).disconnect(handler)


def test_opening_a_request_announces_it(goal, received, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "plan", summary="7 files", plan="1. split the module")
    assert request.status == RequestStatus.PENDING
    assert request.required_approvals == 1
    assert request.expires_at - request.created_at == timedelta(minutes=goal.approval_timeout_minutes)
    assert [name for name, _ in received] == ["request_opened"]
    assert goal.events.filter(kind="request").exists()


def test_a_new_request_supersedes_the_pending_one(goal, pending, received, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        newer = ApprovalRequest.open(goal, "step", summary="next")
    pending.refresh_from_db()
    assert pending.status == RequestStatus.SUPERSEDED
    assert newer.is_pending
    assert sorted(name for name, _ in received) == ["request_opened", "request_superseded"]


def test_unknown_kind_is_refused(goal):
    with pytest.raises(ValueError):
        ApprovalRequest.open(goal, "vibes")


@pytest.mark.parametrize(
    ("kind", "origin"),
    [
        pytest.param("step", "loop", id="a-step-is-the-loops"),
        pytest.param("plan", "loop", id="a-plan-is-the-loops"),
        pytest.param("done", "loop", id="done-is-the-loops"),
        pytest.param("stall", "stall", id="a-stall"),
        pytest.param("budget", "budget", id="a-budget"),
    ],
)
def test_a_request_without_an_origin_is_the_loops_by_its_kind(goal, kind, origin):
    request = ApprovalRequest.open(goal, kind)
    assert request.origin == origin and not request.from_gateway


def test_an_unknown_origin_is_refused(goal):
    with pytest.raises(ValueError):
        ApprovalRequest.open(goal, "step", origin="elsewhere")
    assert not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    ("verdict", "status", "goal_status"),
    [
        pytest.param("approve", RequestStatus.APPROVED, GoalStatus.DRAFT, id="approve"),
        pytest.param("reject", RequestStatus.REJECTED, GoalStatus.DRAFT, id="reject with feedback"),
        pytest.param("stop", RequestStatus.REJECTED, GoalStatus.PAUSED, id="stop pauses the goal"),
    ],
)
def test_a_decision_settles_the_request(
    pending, owner, received, django_capture_on_commit_callbacks, verdict, status, goal_status
):
    with django_capture_on_commit_callbacks(execute=True):
        result = pending.decide(owner, verdict, comment="  use the cache  ", device="Pixel 8")
    assert result.settled
    pending.refresh_from_db()
    assert pending.status == status
    assert pending.decided_at is not None
    assert result.decision.comment == "use the cache"
    assert result.decision.device == "Pixel 8"
    assert Goal.objects.get(pk=pending.goal_id).status == goal_status
    assert [name for name, _ in received] == ["decision_made"]
    assert received[0][1]["decision"] == result.decision


def test_an_approver_may_decide(pending, approver):
    assert pending.decide(approver, "approve").settled


@pytest.mark.parametrize(
    "who", [pytest.param("outsider", id="outsider"), pytest.param("anonymous", id="anonymous")]
)
def test_nobody_else_decides(pending, request, who):
    user = AnonymousUser() if who == "anonymous" else request.getfixturevalue(who)
    with pytest.raises(DecisionRefused) as refused:
        pending.decide(user, "approve")
    assert refused.value.code == "not_allowed"
    assert not Decision.objects.exists()


def test_an_agent_can_never_decide(pending):
    with pytest.raises(DecisionRefused) as refused:
        pending.decide("agent-token-abc", "approve")
    assert refused.value.code == "not_allowed"


def test_the_second_decision_is_told_who_decided_and_how(pending, owner, approver):
    pending.decide(owner, "reject", comment="no")
    with pytest.raises(DecisionRefused) as refused:
        pending.decide(approver, "approve")
    assert refused.value.code == "already_decided"
    assert "owner" in str(refused.value) and "reject" in str(refused.value)
    assert refused.value.decision.user == owner
    pending.refresh_from_db()
    assert pending.status == RequestStatus.REJECTED
    assert Decision.objects.count() == 1


def test_repeating_the_same_tap_is_refused_not_doubled(pending, owner):
    pending.decide(owner, "approve")
    with pytest.raises(DecisionRefused) as refused:
        pending.decide(owner, "approve")
    assert refused.value.code == "already_decided"
    assert Decision.objects.count() == 1


def test_a_superseded_request_refuses_decisions(goal, pending, owner):
    ApprovalRequest.open(goal, "step")
    with pytest.raises(DecisionRefused) as refused:
        pending.decide(owner, "approve")
    assert refused.value.code == "superseded"


@pytest.mark.parametrize(
    ("verdict", "extend", "kind", "message"),
    [
        pytest.param("maybe", None, "step", "Unknown decision", id="unknown verdict"),
        pytest.param("extend", {"tokens": 1000}, "step", "Only a budget request", id="extend on a step request"),
        pytest.param("extend", None, "budget", "which budget", id="extend without amounts"),
        pytest.param("extend", {"coffee": 2}, "budget", "No budget called", id="extend an unknown budget"),
        pytest.param("extend", {"tokens": -5}, "budget", "above 0", id="extend by a negative amount"),
        pytest.param("extend", {"tokens": True}, "budget", "above 0", id="extend by a boolean"),
        pytest.param("approve", {"tokens": 5}, "step", "Only an extend decision", id="approve carrying an extension"),
    ],
)
def test_invalid_decisions_are_refused(goal, owner, verdict, extend, kind, message):
    request = ApprovalRequest.open(goal, kind)
    with pytest.raises(DecisionRefused) as refused:
        request.decide(owner, verdict, extend=extend)
    assert refused.value.code == "invalid"
    assert message in str(refused.value)
    request.refresh_from_db()
    assert request.is_pending


def test_extend_raises_the_budget(goal, owner):
    request = ApprovalRequest.open(goal, "budget", details={"budget": "tokens", "used": 2_000_000})
    result = request.decide(owner, "extend", extend={"tokens": 500_000, "steps": 5})
    assert result.settled
    goal.refresh_from_db()
    assert goal.budget_tokens == 2_500_000
    assert goal.budget_steps == 25
    assert goal.events.filter(kind="budget").exists()
    assert result.request.status == RequestStatus.APPROVED


@pytest.fixture
def high_risk_goal(goal, approver, django_user_model):
    second = make_user("second")
    goal.approvers.add(second)
    Goal.objects.filter(pk=goal.pk).update(work_type="auth_billing", risk="high", rollback_note="revert")
    goal.refresh_from_db()
    return goal


def test_two_person_rule_needs_two_distinct_approvers(high_risk_goal, approver, owner, received, django_capture_on_commit_callbacks):
    request = ApprovalRequest.open(high_risk_goal, "step")
    assert request.required_approvals == 2
    with django_capture_on_commit_callbacks(execute=True):
        first = request.decide(approver, "approve", comment="looks right")
    assert not first.settled
    assert ApprovalRequest.objects.get(pk=request.pk).is_pending
    with pytest.raises(DecisionRefused) as refused:
        request.decide(approver, "approve")
    assert refused.value.code == "already_voted"
    with django_capture_on_commit_callbacks(execute=True):
        second = request.decide(owner, "approve")
    assert second.settled
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.APPROVED
    assert [name for name, _ in received] == ["request_opened", "vote_recorded", "decision_made"]


def test_two_person_rule_one_reject_is_enough(high_risk_goal, approver, owner):
    request = ApprovalRequest.open(high_risk_goal, "step")
    request.decide(approver, "approve")
    assert request.decide(owner, "reject", comment="not this way").settled
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.REJECTED


def test_high_risk_with_one_approver_needs_one_approval(goal, owner):
    Goal.objects.filter(pk=goal.pk).update(work_type="migration", risk="high", rollback_note="down migration")
    goal.refresh_from_db()
    assert ApprovalRequest.open(goal, "step").required_approvals == 1


def overdue(request: ApprovalRequest) -> ApprovalRequest:
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    request.refresh_from_db()
    return request


def test_deciding_an_expired_request_is_refused_and_never_approves(pending, owner):
    overdue(pending)
    with pytest.raises(DecisionRefused) as refused:
        pending.decide(owner, "approve")
    assert refused.value.code == "expired"
    pending.refresh_from_db()
    assert pending.status == RequestStatus.EXPIRED
    assert not Decision.objects.exists()
    assert Goal.objects.get(pk=pending.goal_id).status == GoalStatus.PAUSED


def test_the_sweep_expires_overdue_requests_by_the_goals_rule(goal, pending, received, django_capture_on_commit_callbacks):
    fresh_goal = Goal.objects.create(
        owner=goal.owner, title="other", objective="x", repository=goal.repository, agent_profile=goal.agent_profile,
        on_timeout=OnTimeout.DENY_AND_CONTINUE,
    )
    other = overdue(ApprovalRequest.open(fresh_goal, "step"))
    overdue(pending)
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_overdue_requests() == 2
    assert expire_overdue_requests() == 0
    assert Goal.objects.get(pk=goal.pk).status == GoalStatus.PAUSED
    assert Goal.objects.get(pk=fresh_goal.pk).status == GoalStatus.DRAFT
    assert {kwargs["rule"] for name, kwargs in received if name == "request_expired"} == {
        "deny_and_pause", "deny_and_continue"
    }
    assert ApprovalRequest.objects.get(pk=other.pk).status == RequestStatus.EXPIRED


def test_requests_in_time_are_not_swept(pending):
    assert expire_overdue_requests() == 0
    assert ApprovalRequest.objects.get(pk=pending.pk).is_pending


def test_decisions_are_append_only(pending, owner):
    decision = pending.decide(owner, "approve").decision
    decision.comment = "rewritten"
    with pytest.raises(Exception, match="append-only"):
        decision.save()
    with pytest.raises(Exception, match="append-only"):
        decision.delete()
    assert Decision.objects.get().comment == ""


@pytest.mark.django_db(transaction=True)
def test_concurrent_decisions_leave_exactly_one_outcome(goal, owner, approver):
    """Two people, many devices, all tapping at once: one decision wins, every other caller hears who won."""
    request = ApprovalRequest.open(goal, "step")
    verdicts = ["approve", "reject", "stop"]
    users = [owner, approver]
    barrier = threading.Barrier(20)
    outcomes: list[tuple[str, str]] = []
    lock = threading.Lock()

    def tap(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            mine = ApprovalRequest.objects.get(pk=request.pk)
            try:
                mine.decide(users[index % 2], verdicts[index % 3], device=f"device-{index}")
                result = ("won", verdicts[index % 3])
            except DecisionRefused as refused:
                result = (refused.code, str(refused))
            with lock:
                outcomes.append(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [verdict for code, verdict in outcomes if code == "won"]
    assert len(outcomes) == 20
    assert len(winners) == 1
    assert Decision.objects.filter(request=request).count() == 1
    decision = Decision.objects.get(request=request)
    assert decision.verdict == winners[0]
    losers = [message for code, message in outcomes if code != "won"]
    assert all(message.startswith("Already decided:") for message in losers), losers
    assert all(decision.user.username in message for message in losers)


def test_approving_a_budget_request_while_the_budget_is_still_used_up_is_refused_with_the_way_on(goal, owner):
    from goals.models import Step

    goal.budget_steps = 1
    goal.save(update_fields=["budget_steps"])
    Step.objects.create(goal=goal, number=1, status="passed")
    finding = goal.exhausted_budget()
    request = ApprovalRequest.open(goal, "budget", findings=[finding.as_dict()], details=dict(finding.data))

    with pytest.raises(DecisionRefused) as refused:
        request.decide(owner, "approve")
    assert refused.value.code == "invalid"
    assert str(refused.value) == "Budget used up: 1 of 1 steps. Extend it to go on, or reject or stop the goal."
    request.refresh_from_db()
    assert request.is_pending and not request.decisions.exists()

    # Raised on the goal meanwhile: approving is enough now.
    goal.budget_steps = 3
    goal.save(update_fields=["budget_steps"])
    assert request.decide(owner, "approve").settled

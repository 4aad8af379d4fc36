"""One judge for both drivers: what an agent elsewhere reports counts in the goal's one usage, the managed loop
and the gateway say a used-up budget the same way, and a failure streak is counted once."""

import pytest

from approvals.models import RequestKind, RequestOrigin, Verdict
from gateway import calls as gateway
from gateway.calls import ALLOW, ASK, ToolCall
from goals import gates, judge, loop
from goals.models import GoalStatus

pytestmark = pytest.mark.django_db


def write(repo, path, content="x\n"):
    return ToolCall("Write", {"file_path": str(repo / path), "content": content}, cwd=str(repo))


@pytest.mark.parametrize(
    ("signatures", "streak"),
    [
        ((), 0),
        ((None,), 0),
        (("a",), 1),
        (("a", "a", "a"), 3),
        (("b", "a", "a"), 2),
        (("a", "a", None), 0),
        (("a", None, "a"), 1),
    ],
)
def test_a_failure_streak_is_counted_one_way(signatures, streak):
    assert gates.failure_streak(signatures) == streak


def test_tokens_an_agent_reports_count_in_the_goals_usage(running):
    gateway.record_usage(running, None, 700)
    gateway.record_evidence(running, None, command="pytest", exit_code=0, tokens=300)
    running.refresh_from_db()
    assert running.usage().tokens == 1000
    assert running.reported_tokens == 1000


def test_the_loop_stops_on_a_budget_an_agent_elsewhere_used_up(running):
    running.budget_tokens = 1000
    running.save()
    gateway.record_usage(running, None, 1200)
    running.refresh_from_db()
    finding = running.exhausted_budget()
    assert finding is not None and finding.data["budget"] == "tokens"
    outcome = loop.run_step(running.pk, worker="test")
    running.refresh_from_db()
    assert outcome.request.kind == RequestKind.BUDGET and running.status == GoalStatus.WAITING


def test_both_drivers_say_a_used_up_budget_the_same_way(running, git_repo):
    running.budget_tokens = 1000
    running.save()
    gateway.record_usage(running, None, 1200)
    running.refresh_from_db()
    denied = gateway.propose(running, ToolCall("Bash", {"command": "ls"}, cwd=str(git_repo)))
    asked = loop.run_step(running.pk, worker="test").request
    assert denied.reason == asked.summary == "Budget used up: 1200 of 1000 tokens. Extend it or end the goal."


def test_files_an_allowed_call_writes_count_in_the_goals_usage(running, git_repo):
    outcome = gateway.propose(running, write(git_repo, "docs/notes.md"))
    assert outcome.verdict == ALLOW
    running.refresh_from_db()
    assert running.reported_paths == ["docs/notes.md"] and running.usage().files_total == 1


def test_files_of_a_call_approved_on_the_phone_count_once_it_is_approved(running, git_repo, owner):
    running.risk = "high"  # every call is reviewed
    running.save()
    outcome = gateway.propose(running, write(git_repo, "src/app.py"))
    assert outcome.verdict == ASK
    running.refresh_from_db()
    assert running.usage().files_total == 0
    outcome.request.decide(owner, Verdict.APPROVE)
    running.refresh_from_db()
    assert running.reported_paths == ["src/app.py"] and running.usage().files_total == 1


def test_a_gateway_request_leaves_the_goal_running_and_a_loop_request_makes_it_wait(running):
    finding = gates.GateFinding(gate="scope", severity=gates.APPROVAL, reason="outside the scope")
    call = judge.open_request(running, [finding], summary="a call", origin=RequestOrigin.GATEWAY)
    running.refresh_from_db()
    assert call.origin == RequestOrigin.GATEWAY and running.status == GoalStatus.RUNNING
    step = judge.open_request(running, [finding], summary="a step", step_number=1)
    running.refresh_from_db()
    assert step.origin == RequestOrigin.LOOP and running.status == GoalStatus.WAITING
    call.refresh_from_db()
    assert call.is_pending  # the loop's request supersedes only the loop's own


def test_a_budget_request_carries_the_budget_it_is_about(running):
    finding = gates.budget_finding("steps", 20, 20)
    request = judge.open_request(running, [finding], summary=finding.reason)
    assert request.kind == RequestKind.BUDGET and request.origin == RequestOrigin.BUDGET
    assert request.details == {"budget": "steps", "used": 20, "allowed": 20}


def test_progress_and_start_are_stamped_once(running):
    running.started_at = None
    running.save()
    judge.started(running)
    first = running.started_at
    judge.started(running)
    running.refresh_from_db()
    assert running.started_at == first
    judge.progress(running)
    running.refresh_from_db()
    assert running.last_progress_at is not None

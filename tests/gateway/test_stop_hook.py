"""Claude Code's Stop hook: Goalpost keeps the agent working while its goal runs and is not done, and lets it stop
once the goal is done, paused, out of budget or waiting for the owner's word that it is done, never looping."""

import pytest

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from gateway import calls
from gateway.models import AgentToken
from goals.models import GoalStatus

pytestmark = pytest.mark.django_db(transaction=True)  # the hook is an async view: its reads run in another thread

CHECK = "pytest tests/test_dashboard.py"


@pytest.fixture
def token(running):
    return AgentToken.issue(running, running.owner, name="claude")


def stop(client, secret, *, active=False):
    body = {
        "session_id": "9a1c7f0e",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": "/tmp",
        "permission_mode": "default",
        "hook_event_name": "Stop",
        "stop_hook_active": active,
    }
    response = client.post(
        "/api/v1/hooks/claude", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200, response.content
    return response.json()


def report(goal, token, exit_code, **fields):
    return calls.record_evidence(goal, token, command=CHECK, exit_code=exit_code, **fields)


def done_requests(goal):
    return ApprovalRequest.objects.filter(goal=goal, kind=RequestKind.DONE)


def test_a_check_never_reported_keeps_it_working_with_the_budget_left(client, running, token):
    running.budget_tokens = 50_000
    running.save()
    answer = stop(client, token[1])
    assert answer["decision"] == "block"
    assert f"`{CHECK}` has not been reported yet" in answer["reason"]
    assert "Budget left:" in answer["reason"] and "50,000 of 50,000 tokens" in answer["reason"]


def test_a_failing_check_is_the_evidence_that_sends_it_back(client, running, token):
    report(running, token[0], 1, output_tail="E   assert 2.1 < 1.5\n1 failed", failing_tests=["test_load_time"])
    answer = stop(client, token[1])
    assert answer["decision"] == "block"
    assert f"`{CHECK}` exited 1 (expected 0); failing: test_load_time" in answer["reason"]
    assert "assert 2.1 < 1.5" in answer["reason"]


def test_the_last_report_counts_not_an_earlier_failure(client, running, token):
    report(running, token[0], 1)
    report(running, token[0], 0)
    answer = stop(client, token[1])
    assert "decision" not in answer
    assert "done request" in answer["systemMessage"]


def test_stop_hook_active_never_blocks_again(client, running, token):
    report(running, token[0], 1)
    answer = stop(client, token[1], active=True)
    assert set(answer) == {"systemMessage"} and "not done yet" in answer["systemMessage"]


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (GoalStatus.PAUSED, "The goal is paused"),
        (GoalStatus.DONE, "The goal is done"),
        (GoalStatus.CANCELLED, "The goal was cancelled"),
        (GoalStatus.FAILED, "The goal failed"),
        (GoalStatus.STALLED, "The goal is stalled"),
    ],
)
def test_a_goal_that_does_not_run_lets_it_stop(client, running, token, status, said):
    running.status = status
    running.save()
    answer = stop(client, token[1])
    assert "decision" not in answer and answer["systemMessage"].startswith(f"Goalpost: {said}")


def test_a_used_up_budget_lets_it_stop(client, running, token):
    running.budget_tokens = 1_000
    running.save()
    report(running, token[0], 1, tokens=1_000)
    answer = stop(client, token[1])
    assert "decision" not in answer and "Budget used up: 1000 of 1000 tokens" in answer["systemMessage"]


def test_every_check_passing_opens_one_done_request_and_approving_it_finishes_the_goal(client, running, token):
    report(running, token[0], 0)
    first = stop(client, token[1])
    request = done_requests(running).get()
    assert request.from_gateway and request.status == RequestStatus.PENDING
    assert f"done request #{request.pk}" in first["systemMessage"]
    assert request.evidence and request.evidence[-1]["passed"] is True
    again = stop(client, token[1])  # a second stop while the owner has not answered joins that request
    assert done_requests(running).count() == 1 and f"#{request.pk} waits for the owner" in again["systemMessage"]
    request.decide(running.owner, "approve")
    running.refresh_from_db()
    assert running.status == GoalStatus.DONE
    assert "decision" not in stop(client, token[1])


def test_a_done_request_rejected_sends_it_back_with_the_owners_word(client, running, token):
    report(running, token[0], 0)
    stop(client, token[1])
    request = done_requests(running).get()
    request.decide(running.owner, "reject", comment="The table still loads in 2 s on staging")
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING
    answer = stop(client, token[1])
    assert answer["decision"] == "block" and "The table still loads in 2 s on staging" in answer["reason"]
    report(running, token[0], 0)  # a fresh passing run: done can be asked again
    assert "decision" not in stop(client, token[1])
    assert done_requests(running).count() == 2


def test_stop_goes_on_the_timeline_with_what_goalpost_said(client, running, token):
    stop(client, token[1])
    messages = list(running.events.filter(kind="agent").values_list("message", flat=True))
    assert "Claude Code finished its turn." in messages
    assert any(message.startswith("Goalpost sent it back to work:") for message in messages)

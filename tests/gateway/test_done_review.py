"""`POST /api/v1/goals/{id}/done`: an agent running elsewhere says the goal is done, which opens the done review;
only the owner's yes makes the goal done."""

import pytest

from approvals.models import ApprovalRequest, RequestKind, RequestOrigin, RequestStatus
from gateway.models import AgentReport, AgentToken
from goals.models import GoalStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner, name="codex bridge")[1]


def claim(client, goal_id, secret, body):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret else {}
    return client.post(f"/api/v1/goals/{goal_id}/done", body, content_type="application/json", **headers)


def test_a_claim_opens_the_done_review_with_the_reported_checks(client, running, secret):
    AgentReport.objects.create(goal=running, command="pytest -q", exit_code=1, passed=False, output_tail="1 failed")
    answer = claim(client, running.pk, secret, {"summary": "hello.txt written"}).json()
    request = ApprovalRequest.objects.get(pk=answer["request"]["id"])
    assert answer["verdict"] == "ask" and not answer["stop"] and not answer["joined"]
    assert answer["request"]["decision_url"] == f"/api/v1/requests/{request.pk}/decision"
    assert (request.kind, request.origin) == (RequestKind.DONE, RequestOrigin.GATEWAY)
    assert "codex bridge says the goal is done: hello.txt written" in request.summary
    assert [check["command"] for check in request.evidence] == ["pytest -q"]
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING  # the agent keeps working while the owner decides


def test_a_second_claim_joins_the_open_review(client, running, secret):
    first = claim(client, running.pk, secret, {"summary": "done"}).json()
    second = claim(client, running.pk, secret, {"summary": "really done"}).json()
    assert second["joined"] and second["request"]["id"] == first["request"]["id"]
    assert ApprovalRequest.objects.filter(kind=RequestKind.DONE).count() == 1


@pytest.mark.parametrize(
    ("verdict", "status"),
    [("approve", GoalStatus.DONE), ("reject", GoalStatus.RUNNING), ("stop", GoalStatus.PAUSED)],
)
def test_only_the_owners_yes_makes_the_goal_done(client, running, secret, owner, verdict, status):
    answer = claim(client, running.pk, secret, {"summary": "done"}).json()
    ApprovalRequest.objects.get(pk=answer["request"]["id"]).decide(owner, verdict, comment="the test still fails")
    running.refresh_from_db()
    assert running.status == status
    review = ApprovalRequest.objects.get(pk=answer["request"]["id"])
    assert review.status == (RequestStatus.APPROVED if verdict == "approve" else RequestStatus.REJECTED)


def test_a_goal_that_is_not_running_refuses_the_claim(client, running, secret):
    running.status = GoalStatus.PAUSED
    running.save()
    answer = claim(client, running.pk, secret, {"summary": "done"}).json()
    assert (answer["verdict"], answer["stop"], answer["request"]) == ("deny", True, None)
    assert "paused" in answer["reason"] and not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({}, 400, "summary"),
        ({"summary": ""}, 400, "summary"),
        ({"summary": 3}, 400, "summary"),
        ({"summary": "x" * 4001}, 400, "summary"),
    ],
)
def test_a_malformed_claim_is_400_naming_the_field(client, running, secret, body, status, says):
    response = claim(client, running.pk, secret, body)
    assert response.status_code == status and says in response.json()["error"]


def test_a_claim_needs_the_goals_token(client, running, secret):
    assert claim(client, running.pk, "", {"summary": "done"}).status_code == 401
    assert claim(client, running.pk, "gp_wrong", {"summary": "done"}).status_code == 401
    assert claim(client, running.pk + 999, secret, {"summary": "done"}).status_code == 404

"""After a decision, "Next request" opens the next pending one in the inbox's order, or says the inbox is empty."""

import pytest

from approvals.models import ApprovalRequest
from goals.models import GoalStatus
from tests.factories import HTMX, make_goal

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_waiting(owner, approver, goal, git_repo):
    """Two goals waiting for the owner: a medium-risk one and a high-risk one (first in the inbox)."""
    risky = make_goal(owner, git_repo, approvers=[approver], title="Billing export", risk="high")
    for target in (goal, risky):
        target.status = GoalStatus.WAITING
        target.save(update_fields=["status"])
    medium = ApprovalRequest.open(goal, "plan", summary="Seven files", step_number=1)
    high = ApprovalRequest.open(risky, "step", summary="A weakened test", step_number=2)
    return medium, high


def test_a_decision_offers_the_next_request(as_owner, two_waiting):
    medium, high = two_waiting
    response = as_owner.post(f"/approvals/{medium.pk}/decide", {"verdict": "reject", "comment": "smaller"}, follow=True)
    assert response.status_code == 200
    assert 'id="next-request"' in response.text
    assert f'href="/approvals/{high.pk}/">Next request</a>' in response.text


def test_the_decision_fragment_offers_the_next_request_too(as_owner, two_waiting):
    medium, high = two_waiting
    response = as_owner.post(f"/approvals/{medium.pk}/decide", {"verdict": "approve"}, **HTMX)
    assert response.status_code == 200
    assert f'href="/approvals/{high.pk}/">Next request</a>' in response.text


def test_the_last_decision_says_the_inbox_is_empty(as_owner, two_waiting):
    medium, high = two_waiting
    as_owner.post(f"/approvals/{medium.pk}/decide", {"verdict": "approve"})
    response = as_owner.post(f"/approvals/{high.pk}/decide", {"verdict": "reject"}, follow=True)
    assert "The inbox is empty: nothing else waits for you." in response.text
    assert "Next request</a>" not in response.text


def test_a_pending_request_shows_no_next_link(as_owner, two_waiting):
    medium, _ = two_waiting
    response = as_owner.get(f"/approvals/{medium.pk}/")
    assert 'id="next-request"' not in response.text


def test_next_skips_requests_the_person_cannot_answer(client, approver, owner, two_waiting, git_repo):
    medium, high = two_waiting
    others = make_goal(owner, git_repo, title="Owner only")  # the approver is not named on it
    ApprovalRequest.open(others, "plan", summary="not theirs", step_number=1)
    client.force_login(approver)
    client.post(f"/approvals/{high.pk}/decide", {"verdict": "reject"})
    response = client.post(f"/approvals/{medium.pk}/decide", {"verdict": "reject"}, follow=True)
    assert "The inbox is empty" in response.text


def test_outsiders_get_404_and_no_hint(client, outsider, two_waiting):
    medium, _ = two_waiting
    client.force_login(outsider)
    assert client.get(f"/approvals/{medium.pk}/").status_code == 404
    assert client.post(f"/approvals/{medium.pk}/decide", {"verdict": "approve"}).status_code == 404

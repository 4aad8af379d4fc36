"""The goal page's way forward: statuses as sentences, a link to each pending request, the header badge as the
person's own total, Retry and Resume on a failed goal, and an edit that never claims a failed goal is ready."""

import re

import pytest

from approvals.models import ApprovalRequest
from goals.models import GoalStatus, Step
from tests.factories import HTMX, form_data, make_goal, make_profile

pytestmark = pytest.mark.django_db


def badge(html: str) -> str:
    return re.search(r'id="inbox-count"[^>]*>(\d+)<', html).group(1)


def failed(goal, reason="Failed: the agent cannot run: codex is not installed."):
    goal.status = GoalStatus.READY
    goal.save(update_fields=["status"])
    goal.set_status(GoalStatus.FAILED, None, reason)
    return goal


@pytest.mark.parametrize(
    ("kind", "step", "sentence"),
    [
        pytest.param("plan", 1, "Waiting for you: plan for step 1", id="plan request"),
        pytest.param("step", 3, "Waiting for you: review of step 3", id="step request"),
        pytest.param("done", 4, "Waiting for you: the done review", id="done review"),
        pytest.param("budget", None, "Waiting for you: more budget", id="budget request"),
    ],
)
def test_a_waiting_goal_says_what_it_waits_for(as_owner, goal, kind, step, sentence):
    goal.status = GoalStatus.WAITING
    goal.save(update_fields=["status"])
    ApprovalRequest.open(goal, kind, summary="s", step_number=step)
    assert goal.status_sentence() == sentence
    assert sentence in as_owner.get(f"/goals/{goal.pk}/").text


def test_a_running_goal_names_its_step(as_owner, goal):
    goal.status = GoalStatus.RUNNING
    goal.save(update_fields=["status"])
    Step.objects.create(goal=goal, number=1, status="passed")
    assert goal.status_sentence() == "Running step 2"
    Step.objects.create(goal=goal, number=2, status="running")
    assert goal.status_sentence() == "Running step 2"
    assert "Running step 2" in as_owner.get("/goals/").text


def test_a_done_goal_says_whether_its_branch_was_pushed(goal):
    goal.status = GoalStatus.DONE
    goal.save(update_fields=["status"])
    assert goal.status_sentence() == f"Done: branch goalpost/{goal.pk} is being pushed"
    goal.record("publish", "Pushed goalpost/1 to the repository.", pushed=True)
    assert goal.status_sentence() == f"Done: branch goalpost/{goal.pk} pushed"


def test_the_goal_page_links_to_each_pending_request(as_owner, goal):
    goal.status = GoalStatus.WAITING
    goal.save(update_fields=["status"])
    first = ApprovalRequest.open(goal, "plan", summary="Seven files", step_number=1)
    second = ApprovalRequest.open(goal, "step", summary="A weakened test", step_number=2, origin="gateway")
    for response in (as_owner.get(f"/goals/{goal.pk}/"), as_owner.get(f"/goals/{goal.pk}/", **HTMX)):
        assert f'href="/approvals/{first.pk}/"' in response.text
        assert f'href="/approvals/{second.pk}/"' in response.text
        assert "Open the plan request for step 1" in response.text


def test_the_header_badge_is_the_person_s_total_on_every_page(client, owner, approver, goal, git_repo):
    other = make_goal(owner, git_repo, title="Another goal")
    for target in (goal, other, other):  # gateway requests: several may wait on one goal
        ApprovalRequest.open(target, "step", summary="s", origin="gateway")
    client.force_login(owner)
    for url in ("/", "/goals/", f"/goals/{goal.pk}/", f"/goals/{other.pk}/", "/goals/new/", "/settings/"):
        assert badge(client.get(url).text) == "3", url
    client.force_login(approver)  # approves for `goal` only
    assert badge(client.get(f"/goals/{goal.pk}/").text) == "1"
    assert badge(client.get("/").text) == "1"


@pytest.mark.parametrize(
    ("who", "status", "buttons"),
    [
        pytest.param("owner", 200, True, id="owner sees Retry and Resume"),
        pytest.param("approver", 200, False, id="approver sees the failure, no controls"),
        pytest.param("outsider", 404, False, id="outsider gets 404"),
    ],
)
def test_a_failed_goal_offers_retry_and_resume_to_its_owner(client, goal, request, who, status, buttons):
    failed(goal)
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/goals/{goal.pk}/")
    assert response.status_code == status
    if status == 200:
        assert "Failed: the agent cannot run: codex is not installed — Retry or Resume" in response.text
        assert (f"/goals/{goal.pk}/retry/" in response.text) is buttons
        assert (f"/goals/{goal.pk}/resume/" in response.text) is buttons


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("approver", 403, id="approver may not retry"),
        pytest.param("outsider", 404, id="outsider gets 404"),
    ],
)
def test_only_the_owner_retries(client, goal, request, who, status):
    failed(goal)
    client.force_login(request.getfixturevalue(who))
    assert client.post(f"/goals/{goal.pk}/retry/").status_code == status
    goal.refresh_from_db()
    assert goal.status == GoalStatus.FAILED


def test_retry_that_cannot_run_says_why_and_keeps_the_goal_failed(as_owner, goal):
    failed(goal)
    goal.agent_profile = make_profile("scripted", name="Empty script")  # nothing to replay: it cannot run
    goal.save(update_fields=["agent_profile"])
    response = as_owner.post(f"/goals/{goal.pk}/retry/", follow=True)
    assert "Empty script has no script to replay" in response.text
    goal.refresh_from_db()
    assert goal.status == GoalStatus.FAILED


def test_retry_from_the_page_runs_the_goal_again(as_owner, goal, django_capture_on_commit_callbacks):
    failed(goal)
    goal.agent_script = [{"summary": "Nothing to change"}]
    goal.save(update_fields=["agent_script"])
    with django_capture_on_commit_callbacks(execute=False):
        response = as_owner.post(f"/goals/{goal.pk}/retry/", **HTMX)
    assert response.status_code == 200
    assert 'id="goal-live"' in response.text and "Running step 1" in response.text
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING and goal.step_enqueued_at is not None


def test_editing_a_failed_goal_keeps_it_failed_and_says_so(as_owner, goal, repository):
    failed(goal)
    form = as_owner.get(f"/goals/{goal.pk}/edit/").text
    assert "Save and mark ready" not in form and "Save changes" in form
    data = form_data(repository, title="Edited after the failure", mark_ready="1")
    response = as_owner.post(f"/goals/{goal.pk}/edit/", data, follow=True)
    goal.refresh_from_db()
    assert goal.title == "Edited after the failure"
    assert goal.status == GoalStatus.FAILED
    assert "Saved. The goal is still failed. Retry or Resume it when you are ready." in response.text
    assert "ready: the contract passes" not in response.text.lower()

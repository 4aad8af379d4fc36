"""'Open pull request' on a done review, against a local forge speaking GitHub's, GitLab's or Gitea's API."""

import logging

import pytest

from gateway.calls import open_done_review
from goals.models import Goal, GoalEvent, GoalStatus, Step
from tests.factories import HTMX, commit_diff, make_step, open_request, run_record
from tests.support.fakes.forge import FakeForge

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

TOKEN = "forge-secret-token-123"
JSON = {"HTTP_ACCEPT": "application/json"}


@pytest.fixture(params=["github", "gitlab", "gitea"])
def forge(request):
    server = FakeForge(request.param, token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def github():
    server = FakeForge("github", token=TOKEN).start()
    yield server
    server.stop()


def set_forge(goal: Goal, server: FakeForge, token: str = TOKEN) -> None:
    repository = goal.repository
    repository.forge, repository.forge_url, repository.forge_project = server.kind, server.api_url, server.project
    repository.forge_token = token
    repository.save()


@pytest.fixture
def done(goal, git_repo):
    """A done review the owner approved: the goal is done and its branch pushed."""
    diff = commit_diff(git_repo, {"shop/export.py": "def export():\n    return 'csv'\n"})
    step = make_step(goal, 1, diff, evidence=[run_record(summary="pytest 4 passed")])
    Step.objects.filter(pk=step.pk).update(status="passed", commit_sha="c" * 40, summary="Add the CSV export")
    approval = open_request(goal, kind="done", step=step, findings=[], summary="The agent says the goal is done.")
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.DONE)
    approval.goal.refresh_from_db()
    return approval


def url(approval) -> str:
    return f"/approvals/{approval.pk}/pull-request"


def test_it_opens_the_pull_request_and_links_it_on_the_page(as_owner, done, forge):
    set_forge(done.goal, forge)
    page = as_owner.get(f"/approvals/{done.pk}/").text
    assert f"Open pull request on {done.goal.repository.get_forge_display()}" in page

    response = as_owner.post(url(done))

    assert response.status_code == 302 and response["Location"].endswith("#pull-request")
    [pull] = forge.pulls
    assert pull["head"] == f"goalpost/{done.goal_id}" and pull["base"] == "main"
    assert pull["title"] == "Dashboard under 1.5 s"
    assert "## Steps\n1. Add the CSV export `cccccccccccc`" in pull["body"] and "## Migration note" in pull["body"]
    page = as_owner.get(response["Location"]).text
    assert "Pull request opened" in page
    assert "View pull request #1" in page and forge.web_root in page
    assert GoalEvent.objects.filter(goal=done.goal, kind="pull_request", data__number=1).exists()


def test_a_second_tap_links_the_same_pull_request(as_owner, done, github):
    set_forge(done.goal, github)
    as_owner.post(url(done))
    response = as_owner.post(url(done), **JSON)
    assert response.status_code == 200
    assert response.json() == {"url": f"{github.web_root}/shop/invoices/pull/1", "number": 1, "existing": True}
    assert len(github.pulls) == 1 and [r["method"] for r in github.requests].count("POST") == 1


def test_a_pull_request_open_on_the_forge_already_is_linked(as_owner, done, forge):
    set_forge(done.goal, forge)
    forge.pulls.append({"number": 1, "head": f"goalpost/{done.goal_id}", "base": "main", "title": "by hand", "body": "",
                        "open": True})  # fmt: skip
    response = as_owner.post(url(done), **JSON)
    assert response.status_code == 200 and response.json()["existing"] is True
    assert len(forge.pulls) == 1


def test_json_answers_201_with_the_link(as_owner, done, github):
    set_forge(done.goal, github)
    response = as_owner.post(url(done), **JSON)
    assert response.status_code == 201
    assert response.json() == {"url": f"{github.web_root}/shop/invoices/pull/1", "number": 1, "existing": False}


def test_htmx_gets_the_pull_request_part_of_the_page(as_owner, done, github):
    set_forge(done.goal, github)
    response = as_owner.post(url(done), **HTMX)
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<section class="card pull-request" id="pull-request"')
    assert "Pull request opened." in response.text and "View pull request #1" in response.text


def test_a_refused_token_is_a_clear_message_and_the_token_never_shows(as_owner, done, github, caplog):
    caplog.set_level(logging.DEBUG)
    set_forge(done.goal, github, token="expired-token-456")

    page = as_owner.post(url(done), **HTMX).text
    redirected = as_owner.post(url(done), follow=True).text
    answer = as_owner.post(url(done), **JSON)

    assert "The forge refused the repository&#x27;s token (401)" in page
    assert "token (401)" in redirected
    assert answer.status_code == 409 and "401" in answer.json()["detail"]
    for text in (page, redirected, answer.text, caplog.text, as_owner.get(f"/approvals/{done.pk}/").text):
        assert "expired-token-456" not in text
    assert not github.pulls


def test_a_forge_that_is_down_is_a_message_not_a_500(as_owner, done, github):
    set_forge(done.goal, github)
    github.stop()
    response = as_owner.post(url(done), **HTMX)
    assert response.status_code == 200
    assert "Could not reach the forge at 127.0.0.1" in response.text
    assert GoalEvent.objects.filter(goal=done.goal, kind="pull_request_failed").exists()


def test_before_the_goal_is_done_the_page_says_when(as_owner, done, github):
    set_forge(done.goal, github)
    Goal.objects.filter(pk=done.goal_id).update(status=GoalStatus.WAITING)
    html = as_owner.get(f"/approvals/{done.pk}/").text
    assert "The branch is pushed once you approve the done review: open the pull request then." in html
    assert f'action="/approvals/{done.pk}/pull-request"' not in html
    response = as_owner.post(url(done), **JSON)
    assert response.status_code == 409 and "once you approve" in response.json()["detail"]
    assert not github.requests


def test_only_a_done_review_opens_a_pull_request(as_owner, goal, github):
    set_forge(goal, github)
    approval = open_request(goal)
    response = as_owner.post(url(approval), **JSON)
    assert response.status_code == 409 and response.json() == {"detail": "Only a done review opens a pull request."}


@pytest.mark.parametrize(("who", "status"), [("approver", 201), ("viewer", 403), ("outsider", 404)])
def test_who_may_open_it(client, done, github, who, status, request):
    set_forge(done.goal, github)
    client.force_login(request.getfixturevalue(who))
    response = client.post(url(done), **JSON)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"detail": "Only the goal's owner and approvers open its pull request."}
    assert len(github.pulls) == (1 if status == 201 else 0)


def test_a_get_is_refused(as_owner, done):
    assert as_owner.get(url(done)).status_code == 405


def test_a_done_review_of_an_agent_elsewhere_has_no_branch_of_ours_to_propose(as_owner, goal, github):
    set_forge(goal, github)
    approval = open_done_review(goal, None, "The agent says the goal is done: CSV export added")
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.DONE)

    html = as_owner.get(f"/approvals/{approval.pk}/").text
    response = as_owner.post(url(approval), **JSON)

    assert "The agent worked elsewhere, in its own checkout" in html
    assert f"goalpost/{goal.pk}" not in html.split('class="pr-body"')[0]
    assert response.status_code == 409 and "worked elsewhere" in response.json()["detail"]
    assert not github.requests

"""The gateway answers 400 with {"error": reason} for a diff the parser refuses: a combined merge diff or a log of
several commits, made by real git, posted to /changes or as an apply_patch tool call. Never a 500, nothing judged."""

import subprocess

import pytest

from approvals.models import ApprovalRequest
from gateway.models import AgentToken, GatewayCall
from tests.factories import run_git

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner)[1]


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post_changes(client, goal_id, secret, diff, repo):
    body = {"diff": diff, "source": "claude-code", "cwd": str(repo), "tool": "Bash"}
    return client.post(f"/api/v1/goals/{goal_id}/changes", body, content_type="application/json", **bearer(secret))


def propose_patch(client, goal_id, secret, patch, repo):
    body = {"tool": "apply_patch", "input": {"patch": patch}, "cwd": str(repo), "agent": "codex"}
    return client.post(f"/api/v1/goals/{goal_id}/steps", body, content_type="application/json", **bearer(secret))


def merge_with_resolved_conflict(repo) -> None:
    """Two branches change the same line of app.py; the merge resolves the conflict by hand."""
    run_git(repo, "checkout", "-q", "-b", "side")
    (repo / "app.py").write_text("print('side')\n")
    run_git(repo, "commit", "-q", "-am", "side")
    run_git(repo, "checkout", "-q", "main")
    (repo / "app.py").write_text("print('main')\n")
    run_git(repo, "commit", "-q", "-am", "main")
    merged = subprocess.run(["git", "-C", str(repo), "merge", "-q", "side"], capture_output=True, text=True)
    assert merged.returncode != 0 and "CONFLICT" in merged.stdout  # a real conflict, resolved below
    (repo / "app.py").write_text("print('both')\n")
    run_git(repo, "add", "app.py")
    run_git(repo, "commit", "-q", "-m", "merge side")


def two_commits(repo) -> None:
    (repo / "app.py").write_text("print('one')\n")
    run_git(repo, "commit", "-q", "-am", "one")
    (repo / "app.py").write_text("print('two')\n")
    run_git(repo, "commit", "-q", "-am", "two")


CASES = [
    pytest.param(merge_with_resolved_conflict, ("show", "HEAD"), "combined merge diff", id="git-show-merge"),
    pytest.param(merge_with_resolved_conflict, ("show", "-c", "HEAD"), "combined merge diff", id="diff-combined"),
    pytest.param(two_commits, ("log", "-p", "-2"), "log of several commits", id="git-log-p"),
    pytest.param(two_commits, ("format-patch", "-2", "--stdout"), "log of several commits", id="format-patch"),
]


@pytest.mark.parametrize(("make_history", "git_args", "reason"), CASES)
def test_changes_answers_400_naming_what_it_cannot_read(
    client, running, secret, git_repo, make_history, git_args, reason
):
    make_history(git_repo)
    response = post_changes(client, running.pk, secret, run_git(git_repo, *git_args), git_repo)
    assert response.status_code == 400
    assert reason in response.json()["error"] and "not a diff the gates can read" in response.json()["error"]
    assert not GatewayCall.objects.exists() and not ApprovalRequest.objects.exists()


@pytest.mark.parametrize(("make_history", "git_args", "reason"), CASES)
def test_an_apply_patch_call_answers_400_naming_what_it_cannot_read(
    client, running, secret, git_repo, make_history, git_args, reason
):
    make_history(git_repo)
    response = propose_patch(client, running.pk, secret, run_git(git_repo, *git_args), git_repo)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not ApprovalRequest.objects.exists()


def test_one_commit_of_the_same_history_is_judged(client, running, secret, git_repo):
    two_commits(git_repo)
    response = post_changes(client, running.pk, secret, run_git(git_repo, "show", "HEAD"), git_repo)
    assert response.status_code == 200 and response.json()["files"] == ["app.py"]


def test_a_binary_file_only_renamed_is_reported_as_a_change(client, running, secret, git_repo):
    (git_repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00" + bytes(range(256)))
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "logo")
    run_git(git_repo, "mv", "logo.png", "brand.png")
    diff = run_git(git_repo, "diff", "HEAD", "-M")
    assert "similarity index 100%" in diff and "Binary files" not in diff
    response = post_changes(client, running.pk, secret, diff, git_repo)
    assert response.status_code == 200 and response.json()["files"] == ["brand.png"]

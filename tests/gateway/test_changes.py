"""POST /api/v1/goals/{id}/changes: the working tree's real diff, judged after the fact. A protected path changed
by a command that was allowed stops the goal, opens a stop request with the diff, buzzes the phone, tells the agent."""

import posixpath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.models import ApprovalRequest, RequestKind, RequestOrigin, RequestStatus
from gateway import calls as gateway
from gateway import changes
from gateway.calls import ToolCall
from gateway.models import AgentToken, GatewayCall
from goals.models import GoalStatus
from tests.factories import make_git_repo, make_goal, run_git

pytestmark = pytest.mark.django_db


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner)[1]


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def real_diff(repo) -> str:
    """The working tree against HEAD, new files included, as the command hook sends it (`git add -N`)."""
    run_git(repo, "add", "-N", ".")
    return run_git(repo, "diff", "HEAD")


def post(client, goal_id, secret, diff, repo, **fields):
    body = {"diff": diff, "source": "claude-code", "cwd": str(repo), "tool": "Bash", **fields}
    return client.post(f"/api/v1/goals/{goal_id}/changes", body, content_type="application/json", **bearer(secret))


def write_protected(repo):
    (repo / "secrets").mkdir(exist_ok=True)
    (repo / "secrets" / "key").write_text("stolen\n")


def test_an_allowed_real_change_counts_its_files(client, running, secret, git_repo):
    (git_repo / "app.py").write_text("print('bye')\n")
    (git_repo / "notes.md").write_text("hi\n")
    response = post(client, running.pk, secret, real_diff(git_repo), git_repo)
    assert response.status_code == 200
    answer = response.json()
    assert (answer["verdict"], answer["stop"], answer["request"]) == ("allow", False, None)
    assert sorted(answer["files"]) == ["app.py", "notes.md"]
    running.refresh_from_db()
    assert sorted(running.reported_paths) == ["app.py", "notes.md"] and running.status == GoalStatus.RUNNING
    assert GatewayCall.objects.get().paths == answer["files"]


def test_every_form_of_a_real_git_diff_is_read(client, running, secret, git_repo):
    """Renames (with spaces and non-ASCII names, which git quotes), binary files, mode changes, deletions and new
    files, as `git add -N` and `git diff HEAD` write them."""
    (git_repo / "old name.txt").write_text("a\n")
    (git_repo / "gone.txt").write_text("bye\n")
    (git_repo / "run.sh").write_text("echo\n")
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "more")
    run_git(git_repo, "mv", "old name.txt", "new näme.txt")
    (git_repo / "gone.txt").unlink()
    (git_repo / "run.sh").chmod(0o755)
    (git_repo / "blob.bin").write_bytes(b"\x00\x01\x02")
    answer = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    assert answer["verdict"] == "allow"
    assert sorted(answer["files"]) == ["blob.bin", "gone.txt", "new näme.txt", "run.sh"]
    write_protected(git_repo)
    assert post(client, running.pk, secret, real_diff(git_repo), git_repo).json()["verdict"] == "deny"


def test_nothing_changed_is_allowed(client, running, secret, git_repo):
    answer = post(client, running.pk, secret, "", git_repo).json()
    assert answer["verdict"] == "allow" and answer["files"] == []


def test_a_protected_path_an_allowed_command_wrote_stops_the_goal_and_buzzes_the_phone(
    client, running, secret, git_repo, fake, eager, owner, django_capture_on_commit_callbacks
):
    phone = fake.subscribe(owner)
    # The command itself showed nothing a gate minds: it is allowed before it runs…
    call = ToolCall("Bash", {"command": "./setup.sh"}, cwd=str(git_repo), agent="claude")
    assert gateway.propose(running, call).verdict == "allow"
    write_protected(git_repo)  # …and then writes a protected path.
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, running.pk, secret, real_diff(git_repo), git_repo)
    answer = response.json()
    assert response.status_code == 200
    assert answer["verdict"] == "deny" and answer["stop"] is True
    assert "secrets/key" in answer["reason"] and "paused" in answer["reason"]
    assert [finding["gate"] for finding in answer["findings"]] == ["protected_path"]
    request = ApprovalRequest.objects.get(pk=answer["request"]["id"])
    assert (request.kind, request.origin, request.status) == (RequestKind.STOP, RequestOrigin.GATEWAY, "pending")
    assert "+stolen" in request.diff and "secrets/key" in request.details["paths"]
    assert answer["request"]["decision_url"] == f"/api/v1/requests/{request.pk}/decision"
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED
    assert fake.endpoints() == [phone.endpoint]
    # The agent's next call is denied and told to stop, as after Stop on the phone.
    assert gateway.propose(running, call).stop


def test_the_stop_request_page_shows_the_real_diff(client, running, secret, git_repo, owner):
    write_protected(git_repo)
    answer = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    client.force_login(owner)
    page = client.get(f"/approvals/{answer['request']['id']}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Accept what Claude Code changed, or keep the goal stopped" in html and "Approve accepts these changes and resumes it" in html
    assert "secrets/key" in html and "stolen" in html  # the real diff, rendered on the page


def test_the_same_diff_posted_again_opens_no_second_request(client, running, secret, git_repo):
    write_protected(git_repo)
    diff = real_diff(git_repo)
    first = post(client, running.pk, secret, diff, git_repo).json()
    again = post(client, running.pk, secret, diff, git_repo).json()
    assert again["verdict"] == "deny" and again["stop"] and again["request"]["id"] == first["request"]["id"]
    # A diff that grew around the same protected change joins the same pending request.
    (git_repo / "more.py").write_text("x = 1\n")
    grown = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    assert grown["verdict"] == "deny" and grown["request"]["id"] == first["request"]["id"]
    assert ApprovalRequest.objects.count() == 1


def test_approving_the_stop_request_accepts_those_changes_and_resumes_the_goal(
    client, running, secret, git_repo, owner
):
    write_protected(git_repo)
    diff = real_diff(git_repo)
    answer = post(client, running.pk, secret, diff, git_repo).json()
    ApprovalRequest.objects.get(pk=answer["request"]["id"]).decide(owner, "approve")
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING
    assert post(client, running.pk, secret, diff, git_repo).json()["verdict"] == "allow"
    # A new change to the protected path is another matter.
    (git_repo / "secrets" / "key").write_text("stolen again\n")
    assert post(client, running.pk, secret, real_diff(git_repo), git_repo).json()["verdict"] == "deny"


def test_stop_on_the_stop_request_keeps_the_goal_paused(client, running, secret, git_repo, owner):
    write_protected(git_repo)
    answer = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    ApprovalRequest.objects.get(pk=answer["request"]["id"]).decide(owner, "stop")
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED
    assert ApprovalRequest.objects.get(pk=answer["request"]["id"]).status == RequestStatus.REJECTED


def test_changes_still_there_after_a_person_resumed_without_accepting_them_stop_the_goal_again(
    client, running, secret, git_repo, owner
):
    write_protected(git_repo)
    diff = real_diff(git_repo)
    first = post(client, running.pk, secret, diff, git_repo).json()
    ApprovalRequest.objects.get(pk=first["request"]["id"]).decide(owner, "reject")
    assert post(client, running.pk, secret, diff, git_repo).json()["request"]["id"] == first["request"]["id"]
    running.refresh_from_db()
    running.set_status(GoalStatus.RUNNING, owner, "Resumed on its page.")
    again = post(client, running.pk, secret, diff, git_repo).json()
    assert again["verdict"] == "deny" and again["request"]["id"] != first["request"]["id"]
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED


def test_the_same_allowed_diff_is_recorded_once(client, running, secret, git_repo):
    (git_repo / "app.py").write_text("print('bye')\n")
    diff = real_diff(git_repo)
    for _ in range(3):
        assert post(client, running.pk, secret, diff, git_repo).json()["verdict"] == "allow"
    assert GatewayCall.objects.count() == 1


def test_a_lock_file_changed_for_real_stops_too(client, running, secret, git_repo):
    (git_repo / "package-lock.json").write_text("{}\n")
    answer = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    assert answer["verdict"] == "deny" and "package-lock.json" in answer["reason"]


def test_a_goal_that_is_not_running_tells_the_agent_to_stop(client, running, secret, git_repo):
    running.status = GoalStatus.PAUSED
    running.save()
    (git_repo / "app.py").write_text("print('bye')\n")
    answer = post(client, running.pk, secret, real_diff(git_repo), git_repo).json()
    assert answer["verdict"] == "allow" and answer["stop"] is True and "paused" in answer["reason"]


HEADER = "diff --git a/{p} b/{p}\nnew file mode 100644\n--- /dev/null\n+++ b/{p}\n@@ -0,0 +1 @@\n+x\n"


@pytest.mark.parametrize(
    ("diff", "error"),
    [
        pytest.param(HEADER.format(p="../outside.txt"), "climbs out", id="dot-dot"),
        pytest.param(HEADER.format(p="a/../../outside.txt"), "climbs out", id="dot-dot-inside"),
        pytest.param("--- /dev/null\n+++ /etc/passwd\n@@ -0,0 +1 @@\n+x\n", "absolute", id="absolute"),
        pytest.param(HEADER.format(p=".git/hooks/post-checkout"), ".git", id="git-dir"),
        pytest.param(HEADER.format(p="sub/.GIT/config"), ".git", id="git-dir-any-case"),
        pytest.param("rm -rf /\n", "not a diff", id="not-a-diff"),
    ],
)
def test_a_hostile_diff_is_refused_whole(client, running, secret, git_repo, diff, error):
    response = post(client, running.pk, secret, diff, git_repo)
    assert response.status_code == 400 and error in response.json()["error"]
    assert not GatewayCall.objects.exists() and not ApprovalRequest.objects.exists()


SEGMENTS = st.sampled_from(["a", "..", ".", ".git", ".GIT", "secrets", "~", "", "x y", "ä", "..a", ".gitignore"])


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=5), st.booleans())
def test_a_path_a_diff_names_is_judged_only_inside_the_repository(segments, absolute):
    path = ("/" if absolute else "") + "/".join(segments)
    try:
        parsed = changes.read_diff(HEADER.format(p=path))
    except changes.BadChanges:
        return
    for file in parsed.files:
        parts = file.path.split("/")
        assert not file.path.startswith(("/", "~")) and ".." not in parts
        assert ".git" not in [part.lower() for part in parts]
        assert posixpath.normpath(file.path).split("/")[0] != ".."


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        pytest.param({"source": "codex", "cwd": "/x"}, 400, "diff", id="no-diff"),
        pytest.param({"diff": "", "cwd": "/x"}, 400, "source", id="no-source"),
        pytest.param({"diff": 5, "source": "codex", "cwd": "/x"}, 400, "diff", id="diff-not-a-string"),
        pytest.param({"diff": "", "source": "s" * 201, "cwd": "/x"}, 400, "source", id="source-too-long"),
        pytest.param({"diff": "x" * 1024 * 1024, "source": "codex", "cwd": "/x"}, 413, "1024 KB", id="oversized"),
    ],
)
def test_malformed_bodies_are_refused_with_the_field(client, running, secret, body, status, error):
    response = client.post(
        f"/api/v1/goals/{running.pk}/changes", body, content_type="application/json", **bearer(secret)
    )
    assert response.status_code == status and error in response.json()["error"]


def test_a_cwd_outside_the_repository_is_refused(client, running, secret, tmp_path):
    response = post(client, running.pk, secret, "", tmp_path)
    assert response.status_code == 400 and "outside the goal's repository" in response.json()["error"]


def test_tokens_are_checked_like_every_gateway_endpoint(client, running, secret, git_repo, owner, tmp_path):
    other = make_goal(owner, make_git_repo(tmp_path / "other"), title="Another goal")
    body = {"diff": "", "source": "codex", "cwd": str(git_repo)}
    url = f"/api/v1/goals/{running.pk}/changes"
    assert client.post(url, body, content_type="application/json").status_code == 401
    other_secret = AgentToken.issue(other, owner)[1]
    assert client.post(url, body, content_type="application/json", **bearer(other_secret)).status_code == 404
    missing = client.post("/api/v1/goals/999999/changes", body, content_type="application/json", **bearer(secret))
    assert missing.status_code == 404 and "error" in missing.json()

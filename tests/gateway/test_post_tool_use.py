"""Claude Code's PostToolUse, as the HTTP hook posts it: the server sees only the tool's input, so it judges the
files a write, an edit or a visible shell redirection names. A protected path that got through anyway (a call
the PreToolUse hook never saw, a person who said yes at Claude Code's own prompt) pauses the goal, opens a request
for the owner (the stop request of gateway/changes.py, as for a real diff), buzzes the phone and stops Claude Code
with the reason. A script's side effects stay unseen here:
the command hook (tests/clients/test_hook_changes.py) reads the working tree instead."""

import pytest

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from gateway import calls, changes
from gateway.models import AgentToken
from goals.models import GoalStatus
from tests.factories import pre_tool_use

pytestmark = pytest.mark.django_db(transaction=True)  # the hook is an async view: its reads run in another thread


@pytest.fixture
def token(running):
    return AgentToken.issue(running, running.owner, name="claude")


def post_tool_use(client, secret, repo, tool_name, tool_input):
    body = pre_tool_use(repo, tool_name, tool_input, hook_event_name="PostToolUse", tool_response={"success": True})
    response = client.post(
        "/api/v1/hooks/claude", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(
    ("tool_name", "tool_input"),
    [
        pytest.param("Write", {"file_path": "secrets/api.key", "content": "sk-live\n"}, id="write"),
        pytest.param("Edit", {"file_path": "secrets/api.key", "old_string": "a", "new_string": "b"}, id="edit"),
        pytest.param("Bash", {"command": "echo sk-live > secrets/api.key"}, id="visible-redirection"),
    ],
)
def test_a_protected_path_it_can_see_stops_claude_and_pauses_the_goal(
    client, running, token, git_repo, tool_name, tool_input
):
    answer = post_tool_use(client, token[1], git_repo, tool_name, tool_input)
    assert answer["continue"] is False and answer["decision"] == "block"
    assert "Protected path changed: secrets/api.key" in answer["reason"]
    assert answer["stopReason"].startswith("Goalpost: Stop: Protected path changed")
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED
    request = ApprovalRequest.objects.get(goal=running)
    assert request.status == RequestStatus.PENDING and request.from_gateway and request.kind == RequestKind.STOP
    assert request.details["paths"] == ["secrets/api.key"] and request.details["tool"] == tool_name
    assert f"request #{request.pk}" in answer["reason"]


def test_an_allowed_change_answers_nothing(client, running, token, git_repo):
    assert post_tool_use(client, token[1], git_repo, "Write", {"file_path": "notes.md", "content": "x"}) == {}
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING and not ApprovalRequest.objects.exists()


def test_a_scripts_side_effects_go_unseen_over_http(client, running, token, git_repo):
    (git_repo / "secrets").mkdir()
    (git_repo / "secrets" / "api.key").write_text("written by build.sh")
    assert post_tool_use(client, token[1], git_repo, "Bash", {"command": "sh build.sh"}) == {}


def test_a_goal_that_does_not_run_stops_claude_and_opens_nothing(client, running, token, git_repo):
    running.status = GoalStatus.PAUSED
    running.save()
    answer = post_tool_use(client, token[1], git_repo, "Write", {"file_path": "notes.md", "content": "x"})
    assert answer["continue"] is False and "paused" in answer["reason"]
    assert not ApprovalRequest.objects.exists()


def test_the_owners_phone_is_buzzed(running, token, git_repo, fake, eager, django_capture_on_commit_callbacks):
    phone = fake.subscribe(running.owner)
    call = calls.ToolCall(tool="Write", input={"file_path": "secrets/k", "content": "x"}, cwd=str(git_repo))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = changes.judge_tool_input(running, token[0], call)
    assert outcome.stop and outcome.request is not None
    assert phone.endpoint in fake.endpoints()

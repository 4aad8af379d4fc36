"""Claude Code's HTTP hook end to end: its real hook JSON posted to a live daphne, decisions from the "phone"."""

import json
import threading
import time

import pytest
import requests

from approvals.models import ApprovalRequest, RequestStatus
from gateway.models import AgentToken, GatewayCall, GatewaySettings, WhenUnanswered
from goals.models import GoalEvent, GoalStatus
from tests.factories import pre_tool_use
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner, name="claude")[1]


def post_hook(live_url, secret, body, wait=None, timeout=90):
    params = {"wait": wait} if wait is not None else None
    return requests.post(
        f"{live_url}/api/v1/hooks/claude",
        json=body,
        params=params,
        headers={"Authorization": f"Bearer {secret}"},
        timeout=timeout,
    )


def decision(response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    output = response.json()["hookSpecificOutput"]
    assert output["hookEventName"] == "PreToolUse"
    return output["permissionDecision"], output["permissionDecisionReason"]


def test_a_harmless_command_is_allowed(live_url, secret, git_repo):
    body = pre_tool_use(git_repo, "Bash", {"command": "pytest -q", "description": "Run the tests"})
    assert decision(post_hook(live_url, secret, body))[0] == "allow"


def test_a_write_to_a_protected_path_is_denied_with_the_reason(live_url, secret, git_repo):
    body = pre_tool_use(git_repo, "Write", {"file_path": str(git_repo / "secrets/api.key"), "content": "k"})
    verdict, reason = decision(post_hook(live_url, secret, body))
    assert verdict == "deny" and "Protected path changed: secrets/api.key" in reason


def test_a_paused_goal_answers_200_deny_and_stops_claude(live_url, secret, running, git_repo):
    running.status = GoalStatus.PAUSED
    running.save()
    response = post_hook(live_url, secret, pre_tool_use(git_repo, "Bash", {"command": "ls"}))
    verdict, reason = decision(response)
    assert verdict == "deny" and "paused" in reason
    assert response.json()["continue"] is False


def test_a_cwd_outside_the_repository_answers_200_deny(live_url, secret, git_repo, tmp_path):
    body = pre_tool_use(git_repo, "Bash", {"command": "ls"}, cwd=str(tmp_path))
    verdict, reason = decision(post_hook(live_url, secret, body))
    assert verdict == "deny" and "outside the goal's repository" in reason


def weakening_edit(repo) -> dict:
    (repo / "tests").mkdir(exist_ok=True)
    (repo / "tests" / "test_app.py").write_text("def test_x():\n    assert f() == 3\n")
    return pre_tool_use(
        repo,
        "MultiEdit",
        {
            "file_path": str(repo / "tests" / "test_app.py"),
            "edits": [{"old_string": "    assert f() == 3\n", "new_string": "    assert f()\n", "replace_all": False}],
        },
    )


def in_background(function, *args, **kwargs):
    result = {}

    def run():
        result["response"] = function(*args, **kwargs)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def pending_request(goal):
    return ApprovalRequest.objects.filter(goal=goal, status=RequestStatus.PENDING).first()


def test_a_gate_that_asks_waits_for_the_phone_and_answers_its_decision(live_url, secret, running, owner, git_repo):
    thread, result = in_background(post_hook, live_url, secret, weakening_edit(git_repo), wait=30)
    request = wait_until(lambda: pending_request(running))
    assert "tests_weakened" in request.gates
    started = time.monotonic()
    request.decide(owner, "approve", comment="the value is random now")
    thread.join(timeout=30)
    verdict, reason = decision(result["response"])
    assert verdict == "allow" and reason == "Approved on the phone by owner: the value is random now"
    assert time.monotonic() - started < 5


def test_a_rejection_on_the_phone_denies(live_url, secret, running, approver, git_repo):
    thread, result = in_background(post_hook, live_url, secret, weakening_edit(git_repo), wait=30)
    wait_until(lambda: pending_request(running)).decide(approver, "reject", comment="keep the assertion")
    thread.join(timeout=30)
    verdict, reason = decision(result["response"])
    assert verdict == "deny" and "keep the assertion" in reason


def test_stop_on_the_phone_denies_and_stops_claude(live_url, secret, running, owner, git_repo):
    thread, result = in_background(post_hook, live_url, secret, weakening_edit(git_repo), wait=30)
    wait_until(lambda: pending_request(running)).decide(owner, "stop")
    thread.join(timeout=30)
    assert decision(result["response"])[0] == "deny"
    assert result["response"].json()["continue"] is False


def test_no_answer_in_time_denies_and_the_retry_joins_the_open_request(live_url, secret, running, owner, git_repo):
    body = weakening_edit(git_repo)
    verdict, reason = decision(post_hook(live_url, secret, body, wait=1))
    request = pending_request(running)
    assert verdict == "deny" and f"request #{request.pk} stays open" in reason
    retry = {**body, "tool_use_id": "toolu_retry"}
    decision(post_hook(live_url, secret, retry, wait=1))
    assert ApprovalRequest.objects.filter(goal=running).count() == 1
    request.decide(owner, "approve")
    assert decision(post_hook(live_url, secret, {**body, "tool_use_id": "toolu_third"}, wait=1))[0] == "allow"


def test_parallel_tool_calls_of_one_session_each_wait_for_their_own_decision(
    live_url, secret, running, owner, git_repo
):
    # Claude Code runs tools in parallel: neither call may supersede the other, each gets its own answer.
    running.risk = "high"
    running.rollback_note = "git revert the branch"
    running.save()
    commands = ["npm run build", "npm run lint", "npm run migrate"]
    calls = [in_background(post_hook, live_url, secret, pre_tool_use(git_repo, "Bash", {"command": c}), wait=30)
             for c in commands]  # fmt: skip
    pending = wait_until(lambda: len(found := list(ApprovalRequest.objects.pending())) == 3 and found)
    by_command = {request.details["command"]: request for request in pending}
    by_command["npm run lint"].decide(owner, "reject", comment="no lint today")
    by_command["npm run build"].decide(owner, "approve")
    by_command["npm run migrate"].decide(owner, "approve", comment="go")
    answers = []
    for thread, result in calls:
        thread.join(timeout=30)
        answers.append(decision(result["response"]))
    assert [verdict for verdict, _ in answers] == ["allow", "deny", "allow"]
    assert "no lint today" in answers[1][1] and answers[2][1].endswith(": go")
    assert not ApprovalRequest.objects.filter(status=RequestStatus.SUPERSEDED).exists()


def test_a_goal_that_falls_back_to_claudes_prompt_answers_ask(live_url, secret, running, git_repo):
    GatewaySettings.objects.create(goal=running, when_unanswered=WhenUnanswered.ASK)
    verdict, reason = decision(post_hook(live_url, secret, weakening_edit(git_repo), wait=1))
    assert verdict == "ask" and "decide here instead" in reason


def test_mcp_tools_are_gated_like_commands(live_url, secret, running, git_repo):
    running.risk = "high"
    running.rollback_note = "revert the branch"
    running.save()
    body = pre_tool_use(git_repo, "mcp__github__create_pull_request", {"title": "Speed up", "base": "main"})
    verdict, _ = decision(post_hook(live_url, secret, body, wait=1))
    assert verdict == "deny"
    assert "wants to use mcp__github__create_pull_request" in pending_request(running).summary


def test_notification_and_stop_go_on_the_timeline_without_counting_as_progress(live_url, secret, running, git_repo):
    notification = {
        "session_id": "9a1c7f0e",
        "transcript_path": "/tmp/t.jsonl",
        "cwd": str(git_repo),
        "hook_event_name": "Notification",
        "message": "Claude needs your permission to use Bash",
        "notification_type": "permission_prompt",
    }
    stop = {
        "session_id": "9a1c7f0e",
        "transcript_path": "/tmp/t.jsonl",
        "hook_event_name": "Stop",
        "stop_hook_active": False,
    }
    response = post_hook(live_url, secret, notification)
    assert response.status_code == 200 and response.json() == {}
    response = post_hook(live_url, secret, stop)  # its check never reported: back to work (tests/gateway/test_stop_hook.py)
    assert response.status_code == 200 and response.json()["decision"] == "block"
    messages = list(GoalEvent.objects.filter(goal=running, kind="agent").values_list("message", flat=True))
    assert "Claude Code: Claude needs your permission to use Bash" in messages
    assert "Claude Code finished its turn." in messages
    running.refresh_from_db()
    assert running.last_progress_at is None


# --- refusals: 200 with a deny, since Claude Code lets the call through on any other answer ----------------------


def post_raw(live_url, data: bytes, headers: dict | None = None):
    return requests.post(
        f"{live_url}/api/v1/hooks/claude?wait=0",
        data=data,
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=30,
    )


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({}, "Authorization: Bearer", id="missing"),
        pytest.param({"Authorization": "Bearer gp_not-a-token"}, "Unknown agent token", id="wrong"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, "Authorization: Bearer", id="not-bearer"),
    ],
)
def test_a_missing_or_wrong_token_is_a_200_deny_with_the_reason(live_url, git_repo, headers, reason):
    response = post_raw(live_url, json.dumps(pre_tool_use(git_repo, "Bash", {"command": "ls"})).encode(), headers)
    verdict, said = decision(response)
    assert verdict == "deny" and reason in said
    assert not GatewayCall.objects.exists()


def test_a_revoked_token_is_a_200_deny_with_the_reason(live_url, running, git_repo):
    token, secret = AgentToken.issue(running)
    token.revoke()
    verdict, reason = decision(post_hook(live_url, secret, pre_tool_use(git_repo, "Bash", {"command": "ls"})))
    assert verdict == "deny" and "revoked" in reason


def test_a_refused_token_on_a_stop_tells_the_person_and_blocks_nothing(live_url, running):
    token, secret = AgentToken.issue(running)
    token.revoke()
    response = post_hook(live_url, secret, {"session_id": "s", "hook_event_name": "Stop", "stop_hook_active": False})
    assert response.status_code == 200 and set(response.json()) == {"systemMessage"}
    assert "revoked" in response.json()["systemMessage"]
    assert not GoalEvent.objects.filter(goal=running, kind="agent").exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"{not json", "Malformed JSON", id="malformed"),
        pytest.param(b"", "Malformed JSON", id="empty"),
        pytest.param(b"[1, 2]", "The body must be a JSON object", id="not-an-object"),
        pytest.param(b'"PreToolUse"', "The body must be a JSON object", id="a-string"),
        pytest.param(b'{"tool_name": "Bash"}', "`hook_event_name` is required", id="not-a-hook-input"),
        pytest.param(b'{"hook_event_name": 7}', "`hook_event_name` must be a non-empty string", id="event-not-a-string"),
        pytest.param(b'{"hook_event_name": "PreToolUse", "tool_input": {}}', "`tool_name` is required", id="no-tool"),
        pytest.param(
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": "ls"}',
            "`tool_input` must be an object",
            id="input-not-an-object",
        ),
        pytest.param(
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls \\u0000"}}',
            "NUL characters",
            id="nul-in-the-input",
        ),
        pytest.param(
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "\\ud800"}}',
            "lone surrogates",
            id="lone-surrogate",
        ),
        pytest.param(
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "\xff"}}',
            "not valid UTF-8",
            id="invalid-utf-8",
        ),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels", id="nested-past-the-recursion-limit"),
        pytest.param(
            b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"a": ' + b"[" * 80 + b"]" * 80 + b"}}",
            "nested deeper than 64 levels",
            id="nested-past-the-depth-limit",
        ),
        pytest.param(b'{"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"n": NaN}}', "NaN", id="nan"),
    ],
)
def test_a_body_it_cannot_use_is_a_200_deny_with_the_reason(live_url, secret, body, reason):
    verdict, said = decision(post_raw(live_url, body, {"Authorization": f"Bearer {secret}"}))
    assert verdict == "deny" and reason in said
    assert not GatewayCall.objects.exists()


@pytest.mark.parametrize("size", [1024 * 1024 + 1, 3 * 1024 * 1024], ids=["over-the-limit", "over-djangos-own"])
def test_an_oversized_body_is_a_200_deny(live_url, secret, git_repo, size):
    body = pre_tool_use(git_repo, "Write", {"file_path": str(git_repo / "big.txt"), "content": ""})
    data = json.dumps(body).encode()
    data = data.replace(b'"content": ""', b'"content": "' + b"x" * (size - len(data)) + b'"')
    assert len(data) == size
    verdict, reason = decision(post_raw(live_url, data, {"Authorization": f"Bearer {secret}"}))
    assert verdict == "deny" and reason == "input too large"


def test_an_oversized_body_without_a_token_is_a_200_deny_too(live_url):
    verdict, reason = decision(post_raw(live_url, b"x" * 3 * 1024 * 1024, {}))
    assert verdict == "deny"


def test_the_wrong_method_is_still_a_json_405(live_url, secret):
    response = requests.get(f"{live_url}/api/v1/hooks/claude", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json() == {"error": "Use POST."}


def test_a_server_error_is_a_200_deny_not_a_500(client, secret, git_repo, monkeypatch):
    from django.db import OperationalError

    from gateway import calls

    def database_gone(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(calls, "propose", database_gone)
    client.raise_request_exception = False
    response = client.post(
        "/api/v1/hooks/claude?wait=0",
        pre_tool_use(git_repo, "Bash", {"command": "ls"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    verdict, reason = decision(response)
    assert verdict == "deny" and "server error" in reason


def test_a_host_name_the_server_does_not_serve_is_a_200_deny_too(client, secret, git_repo):
    response = client.post(
        "/api/v1/hooks/claude?wait=0",
        pre_tool_use(git_repo, "Bash", {"command": "ls"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}", "Host": "evil.example"},
    )
    verdict, reason = decision(response)
    assert verdict == "deny" and "host name it does not serve" in reason
    elsewhere = client.get("/api/v1/goals/1", headers={"Host": "evil.example"})
    assert elsewhere.status_code == 400 and "error" in elsewhere.json()

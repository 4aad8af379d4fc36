"""The real Claude Code (`claude -p`) under Goalpost's hooks, with the settings.json of docs/agents.md exactly, in
the goal's git repository, against a live daphne; only the model API is a fake (a scripted local server).

What a person relies on: an allowed write goes through, a protected path is denied and the model is told why, an
ask waits for the phone's decision and goes on, Goalpost down blocks the call (the command hook), a protected path
written by a command that was allowed stops Claude Code after the fact, and the Stop hook sends Claude back to
work once while the goal's checks fail."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from gateway import calls
from gateway.models import AgentToken
from goals.models import GoalStatus
from tests.factories import run_git
from tests.support.claude_hooks import documented_settings
from tests.support.fakes.anthropic_api import FakeAnthropicAPI, text, tool_use
from tests.support.processes import free_port, wait_until

pytestmark = [pytest.mark.real_agent, pytest.mark.django_db(transaction=True)]

QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}
VENV_BIN = str(Path(sys.executable).parent)  # where `make` installs goalpost-hook
CHECK = "pytest tests/test_dashboard.py"


@pytest.fixture
def secret(running):
    return AgentToken.issue(running, running.owner, name="claude on the test box")[1]


@pytest.fixture
def goalpost(live_url):
    """Goalpost's URL for the hooks: a real daphne on the test database."""
    return live_url


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    path.mkdir()
    return path


def install_settings(repo: Path, kind: str, goalpost_url: str) -> None:
    """docs/agents.md's settings.json, committed in the repository as a team would."""
    (repo / ".claude").mkdir(exist_ok=True)
    (repo / ".claude" / "settings.json").write_text(json.dumps(documented_settings(kind, goalpost_url), indent=2))
    run_git(repo, "add", ".claude")
    run_git(repo, "commit", "-q", "-m", "Goalpost's hooks")


def run_claude(claude_cli, api, repo, home, goalpost_url, secret, goal_id, **env):
    environment = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": api.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-fake-key",
        "GOALPOST_URL": goalpost_url,
        "GOALPOST_TOKEN": secret,
        "GOALPOST_GOAL": str(goal_id),
        "GOALPOST_STATE_DIR": str(home / "goalpost-state"),
        **QUIET,
        **env,
    }
    done = subprocess.run(
        [str(claude_cli), "-p", "Make the dashboard fast", "--output-format", "json"],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    try:
        return done, json.loads(done.stdout)
    except ValueError:
        return done, {}


def tool_results(api) -> list[str]:
    """The text of every tool_result Claude Code sent back to the model, in order, once each."""
    found = []
    for request in api.agent_requests():
        for message in request["json"]["messages"]:
            if message.get("role") != "user" or not isinstance(message.get("content"), list):
                continue
            for block in message["content"]:
                if block.get("type") == "tool_result":
                    content = block.get("content")
                    if isinstance(content, list):
                        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
                    found.append(str(content))
    return list(dict.fromkeys(found))


def transcript(home: Path) -> list[dict]:
    """Claude Code's own record of the session (~/.claude/projects/…/<session>.jsonl): what it showed the person."""
    return [
        json.loads(line)
        for path in sorted((home / ".claude" / "projects").glob("*/*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def user_texts(request: dict) -> str:
    """All the user side said in a turn (Claude Code feeds a hook's feedback to the model there)."""
    return json.dumps([m["content"] for m in request["json"]["messages"] if m.get("role") == "user"])


def commit_build_script(repo: Path) -> None:
    """A script whose side effect the gateway cannot see from its command line: it writes secrets/api.key."""
    (repo / "tools").mkdir()
    (repo / "tools" / "build.sh").write_text("mkdir -p secrets\necho sk-live > secrets/api.key\n")
    run_git(repo, "add", "tools")
    run_git(repo, "commit", "-q", "-m", "a build script")


def passing_check(goal):
    """The goal's check reported passing: the Stop hook lets Claude stop (and asks the owner if it is done)."""
    calls.record_evidence(goal, None, command=CHECK, exit_code=0)


@pytest.mark.parametrize("kind", ["command", "http"])
def test_an_allowed_write_goes_through_and_a_protected_one_is_denied_with_the_reason(
    claude_cli, goalpost, running, secret, git_repo, home, kind
):
    install_settings(git_repo, kind, goalpost)
    passing_check(running)
    with FakeAnthropicAPI() as api:
        api.script(
            [tool_use("Write", {"file_path": str(git_repo / "notes.md"), "content": "plan\n"})],
            [tool_use("Write", {"file_path": str(git_repo / "secrets" / "api.key"), "content": "sk-live\n"})],
            [text("Wrote what I could.")],
        )
        done, result = run_claude(claude_cli, api, git_repo, home, goalpost, secret, running.pk)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (git_repo / "notes.md").read_text() == "plan\n"
    assert not (git_repo / "secrets" / "api.key").exists()
    said = tool_results(api)
    assert any("Protected path changed: secrets/api.key" in text for text in said), said
    assert result["result"] == "Wrote what I could."
    # Its check passes as last reported: at its stop, "done" goes to the owner's phone and Claude may stop.
    done_request = ApprovalRequest.objects.get(goal=running, kind=RequestKind.DONE)
    assert done_request.status == RequestStatus.PENDING and len(api.agent_requests()) == 3


def test_an_ask_waits_for_the_phone_and_then_goes_on(claude_cli, goalpost, running, secret, git_repo, home):
    running.risk = "high"  # every write asks a person
    running.save()
    install_settings(git_repo, "command", goalpost)
    passing_check(running)

    def phone():
        wait_until(lambda: ApprovalRequest.objects.filter(goal=running, status=RequestStatus.PENDING).exists(), 120)
        request = ApprovalRequest.objects.get(goal=running, status=RequestStatus.PENDING)
        request.decide(running.owner, "approve", comment="go ahead", device="test phone")

    deciding = threading.Thread(target=phone)
    deciding.start()
    with FakeAnthropicAPI() as api:
        api.script(
            [tool_use("Write", {"file_path": str(git_repo / "notes.md"), "content": "approved plan\n"})],
            [text("Done after approval.")],
        )
        done, result = run_claude(claude_cli, api, git_repo, home, goalpost, secret, running.pk)
    deciding.join(timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (git_repo / "notes.md").read_text() == "approved plan\n"
    request = ApprovalRequest.objects.filter(goal=running, kind="step").get()
    assert request.status == RequestStatus.APPROVED and request.details["tool"] == "Write"


def test_goalpost_down_blocks_the_call_with_the_command_hook(claude_cli, running, secret, git_repo, home):
    down = f"http://127.0.0.1:{free_port()}"
    install_settings(git_repo, "command", down)
    with FakeAnthropicAPI() as api:
        api.script(
            [tool_use("Write", {"file_path": str(git_repo / "notes.md"), "content": "unjudged\n"})],
            [text("Could not write.")],
        )
        done, _ = run_claude(claude_cli, api, git_repo, home, down, secret, running.pk)
    assert not (git_repo / "notes.md").exists()
    said = tool_results(api)
    assert any("cannot be reached" in text and "blocked" in text for text in said), said


def test_a_protected_path_written_by_an_allowed_command_stops_claude_after_the_fact(
    claude_cli, goalpost, running, secret, git_repo, home
):
    install_settings(git_repo, "command", goalpost)
    commit_build_script(git_repo)
    with FakeAnthropicAPI() as api:
        api.script(
            [tool_use("Bash", {"command": "sh tools/build.sh", "description": "Build"})],
            [text("Built; carrying on.")],
        )
        done, result = run_claude(claude_cli, api, git_repo, home, goalpost, secret, running.pk)
    assert (git_repo / "secrets" / "api.key").exists()  # the command ran: the gateway could not see through it
    assert result.get("terminal_reason") == "hook_stopped", done.stdout + done.stderr
    assert len(api.agent_requests()) == 1, "Claude Code went on after the stop"
    stops = [entry["attachment"] for entry in transcript(home) if "attachment" in entry]
    stops = [a for a in stops if a.get("type") == "hook_stopped_continuation" and a.get("hookEvent") == "PostToolUse"]
    assert stops and "Protected path changed: secrets/api.key" in stops[0]["message"], stops
    # The goal is stopped as the phone's Stop stops it, and its people have a stop request with the real diff.
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED
    request = ApprovalRequest.objects.get(goal=running, kind=RequestKind.STOP)
    assert request.status == RequestStatus.PENDING and f"#{request.pk}" in stops[0]["message"]
    assert "+sk-live" in request.diff and request.details["tool"] == "Bash"


@pytest.mark.parametrize("kind", ["command", "http"])
def test_the_stop_hook_sends_claude_back_once_while_the_checks_fail(
    claude_cli, goalpost, running, secret, git_repo, home, kind
):
    install_settings(git_repo, kind, goalpost)
    calls.record_evidence(running, None, command=CHECK, exit_code=1, output_tail="E   assert 2.1 < 1.5\n1 failed")
    with FakeAnthropicAPI() as api:
        api.script([text("All done, I think.")], [text("Still failing; stopping here.")])
        done, result = run_claude(claude_cli, api, git_repo, home, goalpost, secret, running.pk)
    assert done.returncode == 0, done.stdout + done.stderr
    turns = api.agent_requests()
    assert len(turns) == 2, [user_texts(turn)[-500:] for turn in turns]
    told = user_texts(turns[1])
    assert "the goal is not done yet" in told and f"`{CHECK}` exited 1" in told and "Budget left" in told
    assert result["result"] == "Still failing; stopping here."
    running.refresh_from_db()
    assert running.status == GoalStatus.RUNNING


def test_a_command_that_fails_after_writing_a_protected_path_is_reported_to_the_model(
    claude_cli, goalpost, running, secret, git_repo, home
):
    # Claude Code sends PostToolUseFailure for a command that exits non-zero, and (2.1.328) ignores
    # `continue: false` there: the model gets the reason as a blocking error, and it is the goal, paused by
    # Goalpost, that stops the next call.
    install_settings(git_repo, "command", goalpost)
    commit_build_script(git_repo)
    with FakeAnthropicAPI() as api:
        api.script(
            [tool_use("Bash", {"command": "sh tools/build.sh; exit 3"})],
            [text("It failed; carrying on.")],
        )
        run_claude(claude_cli, api, git_repo, home, goalpost, secret, running.pk)
    assert (git_repo / "secrets" / "api.key").exists()
    errors = [entry["attachment"] for entry in transcript(home) if "attachment" in entry]
    errors = [a for a in errors if a.get("type") == "hook_blocking_error" and a["hookEvent"] == "PostToolUseFailure"]
    assert errors and "Protected path changed: secrets/api.key" in errors[0]["blockingError"]["blockingError"]
    # The model reads it in its next turn, as a system message after the tool's result.
    told = json.dumps(api.agent_requests()[1]["json"]["messages"])
    assert "hook blocking error" in told and "Protected path changed: secrets/api.key" in told
    running.refresh_from_db()
    assert running.status == GoalStatus.PAUSED
    assert ApprovalRequest.objects.filter(goal=running, kind=RequestKind.STOP, status=RequestStatus.PENDING).exists()

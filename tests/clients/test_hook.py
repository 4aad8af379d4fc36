"""`goalpost-hook`, the command hook: hook JSON on stdin, decision JSON on stdout, exit 2 (a block) when Goalpost
cannot answer."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goalpost_client import hook
from tests.factories import pre_tool_use
from tests.support.processes import free_port

HOOK = Path(sys.executable).parent / "goalpost-hook"


def run_hook(stdin: dict | bytes, **env: str) -> subprocess.CompletedProcess:
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    clean = {key: value for key, value in os.environ.items() if not key.startswith("GOALPOST_")}
    return subprocess.run([str(HOOK)], input=data, capture_output=True, env={**clean, **env}, timeout=120)


def test_the_console_script_is_installed_with_the_package():
    assert HOOK.exists(), "make installs goalpost-hook with the client distribution (clients/)"


@pytest.mark.django_db(transaction=True)
def test_it_prints_goalposts_decision_and_exits_0(live_url, running, agent_token, git_repo):
    secret = agent_token[1]
    allowed = run_hook(pre_tool_use(git_repo, "Bash", {"command": "ls"}), GOALPOST_URL=live_url, GOALPOST_TOKEN=secret)
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
    denied = run_hook(
        pre_tool_use(git_repo, "Write", {"file_path": str(git_repo / "secrets/k"), "content": ""}),
        GOALPOST_URL=live_url,
        GOALPOST_TOKEN=secret,
    )
    assert denied.returncode == 0
    output = json.loads(denied.stdout)["hookSpecificOutput"]
    assert output["permissionDecision"] == "deny" and "Protected path" in output["permissionDecisionReason"]


@pytest.mark.django_db(transaction=True)
def test_a_revoked_token_is_denied_with_the_servers_reason(live_url, agent_token, git_repo):
    # Goalpost answers a refused token with a deny (200), which the hook passes on: the call is blocked either way.
    token, secret = agent_token
    token.revoke()
    result = run_hook(pre_tool_use(git_repo, "Bash", {"command": "ls"}), GOALPOST_URL=live_url, GOALPOST_TOKEN=secret)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)["hookSpecificOutput"]
    assert output["permissionDecision"] == "deny" and "revoked" in output["permissionDecisionReason"]


def test_it_fails_closed_when_goalpost_cannot_be_reached(git_repo):
    url = f"http://127.0.0.1:{free_port()}"
    result = run_hook(pre_tool_use(git_repo, "Bash", {"command": "ls"}), GOALPOST_URL=url, GOALPOST_TOKEN="gp_x")
    assert result.returncode == 2 and result.stdout == b""
    assert b"cannot be reached" in result.stderr and b"blocked" in result.stderr


@pytest.mark.parametrize(
    ("stdin", "env", "code", "message"),
    [
        pytest.param(
            b"not json", {"GOALPOST_URL": "http://x", "GOALPOST_TOKEN": "t"}, 2, "not a JSON object", id="bad-stdin"
        ),
        pytest.param({"hook_event_name": "PreToolUse"}, {"GOALPOST_TOKEN": "t"}, 2, "set GOALPOST_URL", id="no-url"),
        pytest.param(
            {"hook_event_name": "PreToolUse"}, {"GOALPOST_URL": "http://x"}, 2, "set GOALPOST_TOKEN", id="no-token"
        ),
        pytest.param(
            {"hook_event_name": "PreToolUse"},
            {"GOALPOST_URL": "ftp://x", "GOALPOST_TOKEN": "t"},
            2,
            "must start with http",
            id="not-http",
        ),
        pytest.param(
            {"hook_event_name": "Stop"}, {"GOALPOST_TOKEN": "t"}, 1, "set GOALPOST_URL", id="stop-never-blocks"
        ),
    ],
)
def test_what_it_cannot_do_is_said_on_stderr_with_claude_codes_exit_codes(stdin, env, code, message):
    data = stdin if isinstance(stdin, bytes) else json.dumps(stdin).encode()
    exit_code, out, err = hook.run(data, env)
    assert (exit_code, out) == (code, "") and message in err

"""`goalpost-hook` on PostToolUse: the working tree's real change posted to `/api/v1/goals/{goal}/changes` (the
shared contract), Claude Code stopped and told why when Goalpost denies it, and stopped too when the change
cannot be read or reported (the tool already ran: failing closed means stopping the agent)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_git_repo, pre_tool_use, run_git
from tests.support.changes_contract import ChangesContract
from tests.support.processes import free_port

HOOK = Path(sys.executable).parent / "goalpost-hook"


@pytest.fixture
def goalpost():
    with ChangesContract() as front:
        yield front


@pytest.fixture
def repo(tmp_path):
    return make_git_repo(tmp_path / "repo", {"app.py": "print('hello')\n", "secrets/.keep": ""})


def run_hook(hook_input: dict, env: dict) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("GOALPOST_", "GIT_"))}
    return subprocess.run(
        [str(HOOK)], input=json.dumps(hook_input).encode(), capture_output=True, env={**clean, **env}, timeout=60
    )


def post_tool_use(repo, tool_name, tool_input, tool_response=None) -> dict:
    return pre_tool_use(
        repo,
        tool_name,
        tool_input,
        hook_event_name="PostToolUse",
        tool_response=tool_response or {"stdout": "", "stderr": "", "interrupted": False},
    )


@pytest.fixture
def env(goalpost, tmp_path):
    return {
        "GOALPOST_URL": goalpost.url,
        "GOALPOST_TOKEN": "gp_test",
        "GOALPOST_GOAL": "12",
        "GOALPOST_STATE_DIR": str(tmp_path / "state"),
    }


def test_an_allowed_change_is_posted_with_the_contracts_fields_and_lets_claude_go_on(goalpost, repo, env):
    (repo / "app.py").write_text("print('bye')\n")
    result = run_hook(post_tool_use(repo, "Bash", {"command": "./build.sh"}), env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {}
    path, headers, body = goalpost.received[-1]
    assert path == "/api/v1/goals/12/changes" and headers["Authorization"] == "Bearer gp_test"
    assert body["source"] == "claude-code" and body["cwd"] == str(repo) and body["tool"] == "Bash"
    assert body["session_id"] and body["tool_use_id"].startswith("toolu_")
    assert "-print('hello')\n+print('bye')\n" in body["diff"]


def test_a_protected_path_written_by_an_allowed_command_stops_claude_with_the_reason(goalpost, repo, env):
    (repo / "secrets" / "api.key").write_text("sk-live\n")  # what `./build.sh` did behind the gateway's back
    result = run_hook(post_tool_use(repo, "Bash", {"command": "./build.sh"}), env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["continue"] is False and answer["decision"] == "block"
    assert "Protected path changed: secrets/api.key" in answer["reason"]
    assert answer["stopReason"].startswith("Goalpost: Protected path changed")


def test_the_baseline_is_the_commit_of_the_first_call_so_a_commit_hides_nothing(goalpost, repo, env):
    assert run_hook(pre_tool_use(repo, "Bash", {"command": "ls"}, tool_use_id="toolu_1"), env).returncode in (0, 2)
    (repo / "secrets" / "api.key").write_text("sk-live\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "tidy up")
    answer = json.loads(run_hook(post_tool_use(repo, "Bash", {"command": "git commit -am tidy"}), env).stdout)
    assert answer["continue"] is False and "secrets/api.key" in answer["reason"]


def test_goalpost_base_names_the_baseline(goalpost, repo, env):
    run_git(repo, "checkout", "-q", "-b", "work")
    (repo / "secrets" / "api.key").write_text("sk-live\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "on the branch")
    answer = json.loads(run_hook(post_tool_use(repo, "Write", {"file_path": "x"}), {**env, "GOALPOST_BASE": "main"}).stdout)
    assert answer["continue"] is False


def test_no_change_posts_nothing(goalpost, repo, env):
    result = run_hook(post_tool_use(repo, "Bash", {"command": "ls"}), env)
    assert result.returncode == 0 and json.loads(result.stdout) == {} and goalpost.received == []


@pytest.mark.parametrize(
    ("change_env", "said"),
    [
        pytest.param({"GOALPOST_URL": f"http://127.0.0.1:{free_port()}"}, "cannot be reached", id="goalpost-down"),
        pytest.param({"GOALPOST_GOAL": ""}, "set GOALPOST_GOAL", id="no-goal"),
    ],
)
def test_it_fails_closed_by_stopping_claude(goalpost, repo, env, change_env, said):
    (repo / "app.py").write_text("print('bye')\n")
    result = run_hook(post_tool_use(repo, "Bash", {"command": "ls"}), {**env, **change_env})
    assert result.returncode == 0
    answer = json.loads(result.stdout)
    assert answer["continue"] is False and said in answer["reason"] and "Stopped to be safe" in answer["reason"]


def test_a_cwd_outside_git_stops_claude(goalpost, tmp_path, env):
    (tmp_path / "plain").mkdir()
    answer = json.loads(run_hook(post_tool_use(tmp_path / "plain", "Bash", {"command": "ls"}), env).stdout)
    assert answer["continue"] is False and "cannot read what changed" in answer["reason"]

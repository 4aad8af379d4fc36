"""The fake Anthropic Messages API (tests/support/fakes/anthropic_api.py) holds up against the real Claude Code."""

import json
import subprocess

import pytest

from tests.support.fakes.anthropic_api import FakeAnthropicAPI, Turn, Usage, error, text, tool_use

pytestmark = pytest.mark.real_agent

QUIET = {"DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def run_claude(claude_cli, api, cwd, home, **env):
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(home), "ANTHROPIC_BASE_URL": api.base_url, **QUIET, **env}
    done = subprocess.run(
        [str(claude_cli), "-p", "Write hello.txt", "--output-format", "json", "--permission-mode", "acceptEdits"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, json.loads(done.stdout)


def test_the_real_claude_completes_a_turn_with_a_tool_call_against_the_fake(claude_cli, tmp_path):
    worktree, home = tmp_path / "work", tmp_path / "home"
    worktree.mkdir(), home.mkdir()
    with FakeAnthropicAPI() as api:
        api.script(
            Turn(
                [tool_use("Write", {"file_path": str(worktree / "hello.txt"), "content": "hi\n"})], Usage(7, 3, 11, 13)
            ),
            Turn([text("Wrote hello.txt.")], Usage(5, 2, 0, 17)),
        )
        done, result = run_claude(claude_cli, api, worktree, home, ANTHROPIC_API_KEY="sk-ant-fake-key")

    assert done.returncode == 0, done.stdout + done.stderr
    assert (result["is_error"], result["result"]) == (False, "Wrote hello.txt.")
    assert (worktree / "hello.txt").read_text() == "hi\n"
    turns = api.agent_requests()
    assert len(turns) == 2 and all(r["headers"].get("x-api-key") == "sk-ant-fake-key" for r in turns)
    assert turns[0]["json"]["stream"] is True
    assert set(api.declared_tool("Write")["input_schema"]["required"]) == {"file_path", "content"}
    # The tool's result went back to the model in the second turn.
    assert any(block.get("type") == "tool_result" for block in turns[1]["json"]["messages"][-1]["content"])
    # With non-essential traffic off, the agent's turns are all it sends.
    assert [r["path"].split("?")[0] for r in api.requests] == ["/v1/messages", "/v1/messages"]


def test_an_error_answer_reaches_the_client_as_its_message(claude_cli, tmp_path):
    with FakeAnthropicAPI() as api:
        api.script(error(401, "authentication_error", "invalid x-api-key"))
        # Claude Code retries even a 401 ten times with backoff (three minutes) unless told not to.
        done, result = run_claude(
            claude_cli, api, tmp_path, tmp_path, ANTHROPIC_API_KEY="sk-ant-wrong", CLAUDE_CODE_MAX_RETRIES="0"
        )

    assert (done.returncode, result["is_error"], result["subtype"]) == (1, True, "success")
    assert (result["api_error_status"], result["result"]) == (401, "Invalid API key · Fix external API key")
    assert len(api.requests) == 1

import json
import os
import re
import tomllib

import pytest

from goals.agents.base import LOG_LIMIT, AgentError, ProcessOutput
from goals.agents.command import (
    CODEX_KEY_VARIABLE,
    CommandAgent,
    Provider,
    parse_aider,
    parse_codex,
    write_codex_home,
)
from tests.factories import make_agent_context
from tests.support.processes import wait_until_gone


@pytest.fixture
def step(worktree, fake_bin, tmp_path):
    """Run a command agent in the worktree with the fakes on PATH; returns (result, recorded call)."""
    record = tmp_path / "record.json"

    def run_step(agent_settings: dict, scenario: str = "success", **changes):
        env = {
            "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_SCENARIO": scenario,
            "FAKE_RECORD": str(record),
            "FAKE_PIDS": str(tmp_path / "pids.json"),
        }
        ctx = make_agent_context(worktree, env=env, **changes)
        result = CommandAgent(agent_settings).run_step(ctx)
        return result, json.loads(record.read_text())

    return run_step


# Codex's happy paths run the real client: tests/agents/test_codex_managed.py. The fake codex here plays only
# what the real one cannot be made to print: malformed, huge or hostile output.

CODEX_ARGV_CASES = [
    pytest.param([], True, ["--dangerously-bypass-approvals-and-sandbox"], id="in-goalposts-box-codexs-own-is-off"),
    pytest.param([], False, ["--sandbox", "workspace-write"], id="unsandboxed-codex-keeps-its-own"),
    pytest.param(["--sandbox", "read-only"], True, ["--sandbox", "read-only"], id="staffs-flag-in-the-box"),
    pytest.param(["--full-auto"], False, ["--full-auto"], id="staffs-flag-unsandboxed"),
]


@pytest.mark.parametrize("args, boxed, expected", CODEX_ARGV_CASES)
def test_codex_argv_chooses_which_sandbox_isolates(args, boxed, expected):
    argv = CommandAgent({"preset": "codex", "args": args}).argv("the prompt", [], boxed=boxed)
    assert argv[:5] == ["codex", "exec", "--json", "--skip-git-repo-check", "--ephemeral"]
    assert argv[5:-1] == expected
    assert argv[-1] == "the prompt"


def test_codex_gets_the_provider_in_its_home_and_the_key_in_a_variable(step, tmp_path):
    home = tmp_path / "agent-home"
    home.mkdir()
    provider = {"base_url": "http://10.0.0.5:8080/v1", "api_key": "sk-never-written-1234"}
    _, call = step({"preset": "codex", "provider": provider}, home=home)
    assert {"CODEX_HOME", CODEX_KEY_VARIABLE} <= set(call["env"])
    config = tomllib.loads((home / "config.toml").read_text())
    assert config["model_provider"] == "goalpost"
    assert config["model_providers"]["goalpost"] == {
        "name": "Goalpost profile", "base_url": "http://10.0.0.5:8080/v1", "wire_api": "responses",
        "env_key": CODEX_KEY_VARIABLE,
    }
    assert "sk-never-written" not in (home / "config.toml").read_text()
    assert (home / "config.toml").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("planted", ["symlink", "folder"])
def test_a_config_the_agent_planted_in_its_home_is_replaced_never_followed(tmp_path, planted):
    home, victim = tmp_path / "home", tmp_path / "victim.txt"
    home.mkdir()
    victim.write_text("precious\n")
    if planted == "symlink":
        (home / "config.toml").symlink_to(victim)
    else:
        (home / "config.toml").mkdir()
        (home / "config.toml" / "inner").symlink_to(victim)
    write_codex_home(home, Provider("http://127.0.0.1:9/v1", "k"))
    assert victim.read_text() == "precious\n"
    assert not (home / "config.toml").is_symlink() and (home / "config.toml").is_file()
    assert "127.0.0.1:9" in (home / "config.toml").read_text()


def _codex_output(*events: dict, returncode: int = 0) -> ProcessOutput:
    return ProcessOutput(returncode, "\n".join(json.dumps(event) for event in events), "")


# Events as codex 0.169.0 printed them against tests/support/fakes/responses_api.py.
_STARTED = {"type": "turn.started"}
_USAGE = {"input_tokens": 3000, "cached_input_tokens": 2300, "cache_write_input_tokens": 0, "output_tokens": 300,
          "reasoning_output_tokens": 130}
_DONE = {"type": "turn.completed", "usage": _USAGE}
_MESSAGE = {"type": "item.completed", "item": {"id": "item_1", "type": "agent_message", "text": "Changed it."}}
_RECONNECT = {"type": "error", "message": "Reconnecting... 1/5 (stream disconnected before completion: stream closed "
              "before response.completed)"}
_FAILED_ADD = {"type": "item.completed", "item": {"id": "item_0", "type": "file_change", "status": "failed",
               "changes": [{"path": "/w/app.py/notes.txt", "kind": "add"}]}}


@pytest.mark.parametrize(
    "events, tokens",
    [
        pytest.param([_STARTED, _MESSAGE, _DONE], 3300, id="cached-and-reasoning-counted-once"),
        pytest.param([_STARTED, _RECONNECT, _MESSAGE, _DONE], 3300, id="a-reconnect-is-a-retry"),
        pytest.param([_STARTED, {"type": "error", "message": "stream error"}, _MESSAGE, _DONE], 3300,
                     id="an-error-a-completed-turn-follows"),
    ],
)
def test_codex_runs_that_completed_pass(events, tokens):
    result = parse_codex(_codex_output(*events))
    assert result.tokens == tokens and result.summary == "Changed it."


@pytest.mark.parametrize(
    "events, reason",
    [
        pytest.param([_STARTED, _FAILED_ADD, _MESSAGE, _DONE], "codex reported a failed file change: add /w/app.py/notes.txt",
                     id="a-failed-file-change"),
        pytest.param([_STARTED, _RECONNECT, {"type": "error", "message": "We're out of capacity."}],
                     "codex failed: We're out of capacity.", id="an-error-never-got-past"),
        pytest.param([_STARTED, _RECONNECT, {"type": "turn.failed", "error": {"message": "exceeded retry limit"}}],
                     "codex failed: exceeded retry limit", id="retries-ran-out"),
    ],
)
def test_codex_runs_that_did_not_complete_fail(events, reason):
    with pytest.raises(AgentError, match=re.escape(reason)):
        parse_codex(_codex_output(*events))


def test_codex_huge_output_is_capped(step):
    result, _ = step({"preset": "codex"}, "huge")
    assert result.tokens == 24763 + 122  # input (cached within it) + output
    assert result.summary.startswith("Changed the greeting")
    assert len(result.log) <= LOG_LIMIT + 100


@pytest.mark.parametrize(
    "scenario, reason",
    [
        pytest.param("turn_failed", "codex failed: stream error: exceeded retry limit, last status: 429", id="a-failed-turn"),
        pytest.param("error_event", "codex failed: unexpected status 401 Unauthorized", id="an-error-event"),
        pytest.param("exit_nonzero", "codex exited with status 1: Error: Not logged in", id="a-non-zero-exit"),
        pytest.param("garbage", "codex printed no JSON events .*: <html>502 Bad Gateway</html>", id="garbage-output"),
        pytest.param("no_turn_end", "codex stopped before its turn completed", id="no-completed-turn"),
        pytest.param("edit_outside", "codex changed files outside the worktree: /tmp/elsewhere/settings.py$", id="an-edit-outside"),
        pytest.param("symlink_escape", "symlink leading outside the worktree: etc-link -> /etc", id="a-symlink-out"),
    ],
)
def test_codex_failures_are_agent_errors(step, worktree, scenario, reason):
    with pytest.raises(AgentError, match=reason) as error:
        step({"preset": "codex"}, scenario)
    assert not error.value.permanent
    assert not (worktree / "etc-link").is_symlink()


def test_claude_edits_the_worktree_and_reports(step, worktree):
    result, call = step({"preset": "claude"})
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert result.summary == "Changed the greeting in app.py to hi."
    assert result.tokens == 12 + 234 + 3456 + 7890  # input, output, cache creation and cache read, once each
    assert result.cost_usd == pytest.approx(0.0421)
    assert result.done
    assert result.reported_bugs == ("README still says hello",)
    argv = call["argv"][1:]
    assert argv[0] == "-p" and argv[1].startswith("You are working on one step")
    assert argv[2:] == ["--output-format", "json", "--allowedTools", "Bash,Edit,MultiEdit,Write,NotebookEdit,Read,"
                        "Glob,Grep,LS,TodoWrite"]


def test_claude_verbose_output_is_read_too(step):
    result, _ = step({"preset": "claude"}, "verbose")
    assert result.tokens == 11592


def test_claude_permission_args_replace_the_default(step):
    _, call = step({"preset": "claude", "args": ["--permission-mode", "plan", "--max-turns", "8"]})
    assert call["argv"][-6:] == ["--output-format", "json", "--permission-mode", "plan", "--max-turns", "8"]


@pytest.mark.parametrize(
    "scenario, reason",
    [
        pytest.param("is_error", r"claude failed: API Error: 529 Overloaded — what to do: the model API failed",
                     id="is-error"),
        pytest.param("max_turns", r"claude failed \(error_max_turns\)", id="out-of-turns"),
        pytest.param("error_text_as_success", r"claude failed: Not logged in · Please run /login — what to do: set the "
                     r"profile's API key", id="the-clients-error-as-a-successful-result"),
        pytest.param("during_execution", r"claude failed \(error_during_execution\)", id="error-during-execution"),
        pytest.param("garbage", "claude printed no JSON result .*: Welcome to Claude Code", id="garbage-output"),
        pytest.param("exit_nonzero", "claude exited with status 1: Invalid API key", id="a-non-zero-exit"),
    ],
)
def test_claude_failures_are_agent_errors(step, scenario, reason):
    with pytest.raises(AgentError, match=reason):
        step({"preset": "claude"}, scenario)


def test_aider_edits_the_worktree_and_reports(step, worktree):
    result, call = step({"preset": "aider"})
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert result.summary == "The greeting in app.py now says hi."
    assert result.tokens == 1200 + 345
    assert result.cost_usd == pytest.approx(0.01)
    assert result.reported_bugs == ("the test for the CLI is skipped on Windows",)
    assert not result.done
    argv = call["argv"][1:]
    assert argv[:3] == ["--yes-always", "--no-auto-commits", "--no-git"]
    assert argv[-3] == "--message" and argv[-2].startswith("You are working on one step")
    assert argv[-1] == "app.py"  # the file the objective names, so aider may edit it


def test_aider_retries_add_up(step):
    result, _ = step({"preset": "aider"}, "two_replies")
    assert result.tokens == 2400 + 1100 + 140 + 1_200_000 + 345
    assert result.cost_usd == pytest.approx(0.0153)
    assert result.summary == "Retrying with the right format."


@pytest.mark.parametrize(
    "scenario, reason",
    [
        pytest.param("no_reply", "aider never got a reply from the model: litellm.AuthenticationError", id="no-model-reply"),
        pytest.param("exit_nonzero", "aider exited with status 2: Error: Read-only file system", id="a-non-zero-exit"),
    ],
)
def test_aider_failures_are_agent_errors(step, scenario, reason):
    with pytest.raises(AgentError, match=reason):
        step({"preset": "aider"}, scenario)


@pytest.mark.parametrize(
    "line, tokens, cost",
    [
        pytest.param("Tokens: 345 sent, 12 received.", 357, None, id="plain-numbers-no-cost"),
        pytest.param("Tokens: 1.2k sent, 345 received. Cost: $0.01 message, $0.02 session.", 1545, 0.01, id="k-suffix"),
        pytest.param("Tokens: 2.5M sent, 1.5k received. Cost: $7.50 message, $9.00 session.", 2_501_500, 7.5, id="m-suffix"),
        pytest.param("Tokens: 12,345 sent, 1,000 received. Cost: $0.10 message, $0.10 session.", 13_345, 0.1, id="thousands-separators"),
        pytest.param(
            "Tokens: 4.4k sent, 2.0k cache write, 1.1k cache hit, 304 received. Cost: $0.03 message, $0.05 session.",
            4400 + 2000 + 304,
            0.03,
            id="cache-writes-count-cache-hits-do-not",
        ),
    ],
)
def test_aider_token_lines(line, tokens, cost):
    result = parse_aider(ProcessOutput(0, f"Done the edit.\n{line}\n", ""))
    assert (result.tokens, result.cost_usd) == (tokens, cost)
    assert result.summary == "Done the edit."


def test_a_custom_command_gets_the_prompt_in_place(step, worktree, fake_bin):
    result, call = step({"preset": "custom", "command": [str(fake_bin / "tool"), "--task={prompt}", "{prompt}"]})
    assert call["argv"][1].startswith("--task=You are working on one step")
    assert call["argv"][2].startswith("You are working on one step")
    assert (worktree / "app.py").read_text() == "print('hi')\n"
    assert result.summary == "Edited app.py.\nThe greeting is now hi."
    assert result.plan == "1. Edit app.py\n2. Run python app.py"
    assert result.tokens == 0


def test_a_custom_command_that_fails_is_an_agent_error(step, fake_bin):
    with pytest.raises(AgentError, match="the command exited with status 3: fatal: model quota exhausted"):
        step({"command": [str(fake_bin / "tool"), "{prompt}"]}, "exit_nonzero")


@pytest.mark.parametrize("preset", ["codex", "claude", "aider"])
def test_a_hung_agent_and_its_children_are_stopped_at_the_timeout(step, tmp_path, preset):
    with pytest.raises(AgentError, match=f"{preset} timed out after 1.5 s") as error:
        step({"preset": preset, "timeout_s": 1.5}, "hang")
    assert not error.value.permanent
    for pid in json.loads((tmp_path / "pids.json").read_text()):
        assert wait_until_gone(pid)


def test_the_agent_sees_only_the_environment_it_is_given(step, monkeypatch):
    monkeypatch.setenv("GOALPOST_SECRET_KEY", "server-secret")
    _, call = step({"preset": "codex"})
    assert "GOALPOST_SECRET_KEY" not in call["env"]
    assert "FAKE_SCENARIO" in call["env"]


def test_the_agent_runs_inside_the_sandbox_wrapper(step, fake_bin, tmp_path):
    marker = tmp_path / "wrapped.json"
    result, call = step({"preset": "codex", "executable": str(fake_bin / "codex")}, wrap=lambda argv: [str(fake_bin / "wrapper"), str(marker), *argv])
    wrapped = json.loads(marker.read_text())
    assert wrapped[0] == str(fake_bin / "codex")
    assert wrapped[1:3] == ["exec", "--json"]
    assert result.done


def test_a_missing_executable_is_a_permanent_error(step, tmp_path):
    with pytest.raises(AgentError, match="codex was not found") as error:
        step({"preset": "codex", "executable": str(tmp_path / "nowhere" / "codex")})
    assert error.value.permanent


@pytest.mark.parametrize(
    "agent_settings, reason",
    [
        pytest.param({}, "choose a preset", id="no-preset"),
        pytest.param({"preset": "cursor"}, "choose a preset", id="an-unknown-preset"),
        pytest.param({"preset": "codex", "args": "--model x"}, "args must be a list of strings", id="args-as-one-string"),
        pytest.param({"preset": "codex", "executable": ""}, "executable must be a path", id="an-empty-executable"),
        pytest.param({"preset": "codex", "command": ["x"]}, "for the custom preset only", id="a-command-for-a-preset"),
        pytest.param({"preset": "custom"}, "must be a list of strings", id="custom-without-command"),
        pytest.param({"preset": "custom", "command": []}, "the custom command is empty", id="an-empty-command"),
        pytest.param({"preset": "custom", "command": ["agent", "--go"]}, "put \"{prompt}\"", id="no-prompt-placeholder"),
        pytest.param({"preset": "codex", "timeout_s": 0}, "timeout_s must be a positive number", id="a-zero-timeout"),
        pytest.param({"preset": "codex", "timeout": 5}, "Unknown command agent setting 'timeout'", id="a-misspelt-setting"),
    ],
)
def test_bad_settings_are_permanent_errors(agent_settings, reason):
    with pytest.raises(AgentError, match=reason) as error:
        CommandAgent(agent_settings)
    assert error.value.permanent


def test_a_sandbox_helper_that_fails_is_a_permanent_error(step):
    def broken_wrap(argv):
        raise RuntimeError("bwrap is not installed")

    with pytest.raises(AgentError, match="The sandbox could not wrap codex: bwrap is not installed") as error:
        step({"preset": "codex"}, wrap=broken_wrap)
    assert error.value.permanent


def test_an_environment_that_cannot_be_passed_is_an_agent_error(worktree, fake_bin):
    ctx = make_agent_context(worktree, env={"PATH": str(fake_bin), "BROKEN": None})
    with pytest.raises(AgentError, match="codex could not start"):
        CommandAgent({"preset": "codex"}).run_step(ctx)

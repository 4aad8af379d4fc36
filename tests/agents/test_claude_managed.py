"""Managed Claude Code, for real: the real `claude -p` from npm, run by the real loop (`manage.py run_goal`) in
the real bubblewrap sandbox, against the local fake of the Anthropic Messages API (tests/support/fakes/
anthropic_api.py). A step's truth is the worktree's git diff; a client that says it failed is a failed step that
says what to do."""

import json
import os
import shutil
import subprocess
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from goals import sandbox
from goals.models import AgentProfile, Goal, GoalStatus, StepStatus
from tests.factories import goal_worktree, registered_repository
from tests.support.fakes.anthropic_api import FakeAnthropicAPI, Turn, Usage, error, text, tool_use
from tests.support.sandbox import folder_outside_tmp, require_sandbox

pytestmark = [pytest.mark.real_agent, pytest.mark.django_db(transaction=True)]

KEY = "sk-ant-api03-goalpost-test-" + "k" * 24


@pytest.fixture(scope="module")
def claude_in_reach(claude_cli):
    """The real claude where the sandbox user may run it (the npm cache sits under /root, which it may not
    enter): a hard link (or copy) in a folder outside /tmp, as staff would install it under /usr/local/bin."""
    require_sandbox()
    folder = folder_outside_tmp() / f"goalpost-claude-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    target, real = folder / "claude", Path(os.path.realpath(claude_cli))
    try:
        os.link(real, target)
    except OSError:
        shutil.copy2(real, target)
    target.chmod(0o755)
    yield target
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def api():
    with FakeAnthropicAPI() as server:
        yield server


@pytest.fixture(autouse=True)
def worktrees(settings, tmp_path):
    settings.GOALPOST_WORKTREE_ROOT = tmp_path / "worktrees"
    return Path(settings.GOALPOST_WORKTREE_ROOT)


def claude_goal(owner, repo: Path, executable: Path, **profile) -> Goal:
    """A running goal whose agent is the claude preset with ``profile``'s settings (the README's fields)."""
    agent = AgentProfile.objects.create(
        name=f"Claude Code {uuid.uuid4().hex[:6]}",
        adapter="command",
        preset="claude",
        executable=str(executable),
        **profile,
    )
    agent.full_clean()
    return Goal.objects.create(
        owner=owner,
        title="Greet",
        objective="Write hello.txt",
        repository=registered_repository(repo, users=[owner]),
        base_branch="main",
        agent_profile=agent,
        status=GoalStatus.RUNNING,
    )


def run_one_step(goal: Goal):
    out = StringIO()
    call_command("run_goal", goal.pk, "--max-steps", "1", stdout=out, stderr=StringIO())
    goal.refresh_from_db()
    return goal.steps.get()


def worktree_of(goal: Goal) -> Path:
    return goal_worktree(goal.pk)


def test_a_step_that_writes_a_file_passes_with_the_real_diff(owner, git_repo, claude_in_reach, api):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
    path = str(worktree_of(goal) / "hello.txt")
    api.script(
        Turn([text("Writing it."), tool_use("Write", {"file_path": path, "content": "hello\n"})], Usage(30, 7, 11, 13)),
        Turn(
            [tool_use("Bash", {"command": "echo from-bash >> hello.txt", "description": "Append a line"})],
            Usage(40, 5, 0, 50),
        ),
        # The agent's account claims another file; the step shows what the worktree really holds.
        Turn([text("Created hello.txt and notes.md.\nSTATUS: done")], Usage(50, 9, 0, 60)),
    )

    step = run_one_step(goal)

    assert step.status != StepStatus.FAILED, step.error
    assert "+hello" in step.diff and "+from-bash" in step.diff
    assert [f["path"] for f in step.files] == ["hello.txt"]
    assert step.tokens == (30 + 7 + 11 + 13) + (40 + 5 + 50) + (50 + 9 + 60)
    assert step.summary.startswith("Created hello.txt")
    # The Write's input followed the schema Claude Code declared, and the key reached the API as x-api-key.
    assert set(api.declared_tool("Write")["input_schema"]["required"]) == {"file_path", "content"}
    assert {r["headers"].get("x-api-key") for r in api.agent_requests()} == {KEY}
    assert len(api.agent_requests()) == 3
    assert len(api.requests) == 3  # no telemetry, update check or start-up probe: the model API's turns only


def test_the_key_reaches_the_api_and_is_stored_nowhere(owner, git_repo, claude_in_reach, api):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
    api.script(
        Turn([tool_use("Bash", {"command": "ls -a $HOME $HOME/.claude > home.txt", "description": "List home"})]),
        Turn([text("Done.")]),
    )

    step = run_one_step(goal)

    assert step.status != StepStatus.FAILED, step.error
    assert {r["headers"].get("x-api-key") for r in api.agent_requests()} == {KEY}
    assert [f["path"] for f in step.files] == ["home.txt"]
    stored = json.dumps(
        [step.diff, step.summary, step.error, step.agent_log, list(goal.events.values_list())], default=str
    )
    assert KEY not in stored
    assert not any(KEY in p.read_text(errors="replace") for p in worktree_of(goal).rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "leak",
    [
        pytest.param(
            lambda path: tool_use("Bash", {"command": "env > env.txt", "description": "Save the env"}),
            id="the-environment-dumped-by-a-command",
        ),
        # A model API may echo the key back; the model then writes it down.
        pytest.param(
            lambda path: tool_use("Write", {"file_path": path, "content": f"key={KEY}\n"}),
            id="the-key-written-by-the-model",
        ),
    ],
)
def test_a_step_that_puts_the_key_into_the_worktree_is_refused(owner, git_repo, claude_in_reach, api, leak):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
    api.script(Turn([leak(str(worktree_of(goal) / "leak.txt"))]), Turn([text("Done.")]))

    step = run_one_step(goal)

    assert step.status == StepStatus.FAILED
    assert "contain the agent profile's API key" in step.error
    assert KEY not in step.diff + step.error + step.agent_log
    assert not (worktree_of(goal) / "leak.txt").exists() and not (worktree_of(goal) / "env.txt").exists()
    assert not step.commit_sha  # nothing of it was committed


def test_the_readme_setup_without_a_key_is_a_failed_step_that_says_what_to_do(owner, git_repo, claude_in_reach, api):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url)

    step = run_one_step(goal)

    assert step.status == StepStatus.FAILED
    assert step.error.startswith("claude failed: Not logged in · Please run /login") and "success" not in step.error
    assert "set the profile's API key" in step.error
    assert api.agent_requests() == []  # it never got as far as the model


@pytest.mark.parametrize(
    ("answer", "message", "advice"),
    [
        pytest.param(
            error(401, "authentication_error", "invalid x-api-key"),
            "Invalid API key",
            "set the profile's API key",
            id="401",
        ),
        pytest.param(
            error(429, "rate_limit_error", "Number of requests has exceeded your rate limit"),
            "429",
            "limiting requests",
            id="429",
        ),
        pytest.param(
            error(500, "api_error", "Internal server error"), "API Error: 500", "failed on its side", id="500"
        ),
        pytest.param(
            error(529, "overloaded_error", "Overloaded"), "529 Overloaded", "failed on its side", id="overloaded"
        ),
    ],
)
def test_an_api_error_is_a_failed_step_with_the_clients_message(
    owner, git_repo, claude_in_reach, api, answer, message, advice
):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
    api.script(answer)

    step = run_one_step(goal)

    assert step.status == StepStatus.FAILED
    assert message in step.error and advice in step.error, step.error
    assert len(api.agent_requests()) == 3  # the first try and the two retries Goalpost allows


def test_egress_goes_to_the_profiles_model_api_only(owner, git_repo, claude_in_reach, api):
    with FakeAnthropicAPI() as elsewhere:
        goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
        command = f"curl -sS -m 5 -o /dev/null -w '%{{http_code}}' {elsewhere.base_url}/v1/messages > net.txt 2>&1"
        api.script(Turn([tool_use("Bash", {"command": command, "description": "x"})]), Turn([text("Done.")]))

        step = run_one_step(goal)

    assert len(api.agent_requests()) == 2  # the model API, through the sandbox's proxy
    assert elsewhere.requests == []
    assert "+403" in step.diff  # the proxy refused the other host


def test_the_sandbox_the_step_ran_in_is_claudes_only_boundary(owner, git_repo, claude_in_reach, api):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY)
    api.script(
        Turn(
            [
                tool_use(
                    "Bash",
                    {
                        "command": "id -u > who.txt; cat /etc/shadow >> who.txt 2>&1; echo $HOME >> who.txt",
                        "description": "x",
                    },
                )
            ]
        ),
        Turn([text("Done.")]),
    )

    step = run_one_step(goal)

    assert f"+{sandbox.identity().uid}" in step.diff
    assert "Permission denied" in step.diff
    assert f"+{sandbox.BOX_HOME}" in step.diff  # its config dir lives there, outside the worktree
    assert ".claude" not in step.diff


def test_the_real_client_is_what_the_profile_runs(claude_in_reach):
    done = subprocess.run([str(claude_in_reach), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "Claude Code" in done.stdout


def test_the_key_may_come_from_a_variable_of_the_workers_environment(
    owner, git_repo, claude_in_reach, api, monkeypatch
):
    monkeypatch.setenv("GOALPOST_TEST_ANTHROPIC_KEY", KEY)
    goal = claude_goal(
        owner, git_repo, claude_in_reach, base_url=api.base_url, api_key_env="GOALPOST_TEST_ANTHROPIC_KEY"
    )
    api.script(Turn([text("Nothing to change.\nSTATUS: done")]))

    step = run_one_step(goal)

    assert step.status != StepStatus.FAILED, step.error
    assert [r["headers"].get("x-api-key") for r in api.agent_requests()] == [KEY]


def test_a_model_api_that_is_down_is_a_failed_step_that_names_the_base_url(owner, git_repo, claude_in_reach):
    with FakeAnthropicAPI() as stopped:
        base_url = stopped.base_url
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=base_url, api_key=KEY)

    step = run_one_step(goal)

    assert step.status == StepStatus.FAILED
    assert step.error.startswith(f"claude failed (API status 502): API Error: 502 could not connect to {base_url[7:]}")
    assert "what to do: check the profile's base URL" in step.error


def test_unsandboxed_its_config_is_the_goals_own_and_outside_the_worktree(owner, git_repo, claude_in_reach, api):
    goal = claude_goal(owner, git_repo, claude_in_reach, base_url=api.base_url, api_key=KEY, run_unsandboxed=True)
    api.script(
        Turn([tool_use("Bash", {"command": "echo $CLAUDE_CONFIG_DIR > where.txt", "description": "x"})]),
        Turn([text("Done.")]),
    )

    step = run_one_step(goal)

    config = worktree_of(goal).parent / f".goal-{goal.pk}.claude"
    assert step.status != StepStatus.FAILED, step.error
    assert f"+{config}" in step.diff and [f["path"] for f in step.files] == ["where.txt"]
    assert any(config.rglob("*.jsonl"))  # its session was kept there

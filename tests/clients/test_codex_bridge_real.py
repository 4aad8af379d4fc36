"""The Codex bridge against the real `codex app-server` (Codex CLI from npm, pinned in pyproject.toml), whose
model is a local fake of the Responses API scripted to call tools, through a live daphne: the turns kept going
until the owner's done review, what a command really wrote judged after the fact, and the command form app-server
v2 sends (`/bin/bash -lc '…'`, one string) judged like any command."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestKind, RequestStatus
from gateway.models import AgentReport, AgentToken, GatewayCall
from goals.models import GoalStatus
from tests.support import agent_clients
from tests.support.codex_home import codex_home
from tests.support.fakes.responses_api import ResponsesAPI, function_call, message, shell
from tests.support.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_agent]

CHECK = "test -f hello.txt"


GOAL_CONTINUATION = '<codex_internal_context source="goal">'


@pytest.fixture
def goal(running):
    """The running goal (secrets/** protected) whose check Codex can pass: hello.txt exists."""
    running.evidence = [{"kind": "command", "command": CHECK, "expect_exit": 0, "description": ""}]
    running.save()
    return running


def start_bridge(live_url, goal, repo, codex_cli, api: ResponsesAPI, home: Path, *extra) -> subprocess.Popen:
    secret = AgentToken.issue(goal, name="codex bridge")[1]
    home, key_variable = codex_home(home, api.base_url)
    env = agent_clients.node_env({**os.environ, "CODEX_HOME": str(home), key_variable: "sk-local-fake"})
    argv = [sys.executable, "-m", "goalpost_client.codex_bridge", "--url", live_url, "--token", secret]
    argv += ["--goal", str(goal.pk), "--cwd", str(repo), *extra, "--", str(codex_cli), "app-server"]
    return subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(bridge: subprocess.Popen, timeout: float = 120) -> str:
    try:
        _, err = bridge.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        bridge.kill()
        _, err = bridge.communicate()
        raise AssertionError(f"the bridge did not end:\n{err}") from None
    assert bridge.returncode == 0, err
    return err


def pending_done_review(goal) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(goal=goal, kind=RequestKind.DONE, status=RequestStatus.PENDING).first()


def test_two_turns_then_the_done_review_then_done(live_url, goal, owner, git_repo, codex_cli, tmp_path):
    with ResponsesAPI(
        shell("echo hello > hello.txt"),
        message("I wrote hello.txt."),
        # Codex's goal is still active: Codex starts the second turn by itself.
        shell(CHECK),
        function_call("update_goal", {"status": "complete"}),
        message("Done: hello.txt exists and the check passes."),
    ) as api:
        bridge = start_bridge(live_url, goal, git_repo, codex_cli, api, tmp_path / "codex-home")
        try:
            review = wait_until(lambda: pending_done_review(goal), 90)
        finally:
            if bridge.poll() is not None:
                print(bridge.stderr.read())
        assert "Done: hello.txt exists and the check passes." in review.summary
        assert [check["command"] for check in review.evidence] == [CHECK]
        review.decide(owner, "approve")
        err = finish(bridge)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE, err
    assert (git_repo / "hello.txt").read_text() == "hello\n"
    [check] = AgentReport.objects.filter(goal=goal).exclude(command="")
    assert check.passed and CHECK in check.command
    turns = [request for request in api.requests if request.path.endswith("/responses")]
    assert len(turns) == 5
    first_prompt = str(turns[0].body["input"])
    assert goal.title in first_prompt and CHECK in first_prompt  # the contract is the first turn's prompt
    assert GOAL_CONTINUATION in str(turns[2].body["input"])  # the second turn is Codex's own continuation
    assert GatewayCall.objects.filter(goal=goal).count() >= 2  # each command went through the gates first
    assert not GatewayCall.objects.filter(goal=goal).exclude(verdict="allow").exists()


def test_the_documented_config_is_what_codex_reads(codex_cli, tmp_path):
    """docs/agents.md's config.toml, with Codex's strict config check: every setting in it is one Codex knows."""
    with ResponsesAPI() as api:
        home, key_variable = codex_home(tmp_path / "codex-home", api.base_url)
        env = agent_clients.node_env({**os.environ, "CODEX_HOME": str(home), key_variable: "sk-local-fake"})
        shown = subprocess.run(
            [str(codex_cli), "app-server", "--strict-config", "--print-startup-config"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert shown.returncode == 0, shown.stderr


def test_a_rejected_done_review_starts_a_turn_with_what_is_missing(
    live_url, goal, owner, git_repo, codex_cli, tmp_path
):
    with ResponsesAPI(
        shell(CHECK),  # fails: there is no hello.txt yet
        function_call("update_goal", {"status": "complete"}),
        message("Done, I think."),
        # The check failed, so the bridge starts another turn itself (without troubling the owner).
        shell("echo hello > hello.txt"),
        shell(CHECK),
        function_call("update_goal", {"status": "complete"}),
        message("Done now."),
        # The owner says no: the bridge starts a turn with the comment.
        message("Added."),
        function_call("update_goal", {"status": "complete"}),
        message("Done."),
    ) as api:
        bridge = start_bridge(live_url, goal, git_repo, codex_cli, api, tmp_path / "codex-home")
        review = wait_until(lambda: pending_done_review(goal), 90)
        review.decide(owner, "reject", comment="Say hello in the README too.")
        second = wait_until(lambda: pending_done_review(goal), 90)
        assert any("Say hello in the README too." in str(request.body) for request in api.requests)
        second.decide(owner, "approve")
        finish(bridge)
    texts = [str(request.body.get("input")) for request in api.requests if request.path.endswith("/responses")]
    failing_turn = next(text for text in texts if "Checks still failing" in text)
    assert CHECK in failing_turn and "Token budget left" in failing_turn
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE


def test_an_approved_command_that_writes_a_protected_path_stops_the_goal(live_url, goal, git_repo, codex_cli, tmp_path):
    # The repository's own script writes the protected path: the command's words name none, so it is allowed.
    (git_repo / "gen.py").write_text("import os\nos.makedirs('secrets', exist_ok=True)\nopen('secrets/key', 'w')\n")
    subprocess.run(["git", "-C", str(git_repo), "add", "gen.py"], check=True)
    subprocess.run(["git", "-C", str(git_repo), "commit", "-qm", "gen"], check=True)
    with ResponsesAPI(shell("python3 gen.py"), message("Generated."), message("Going on.")) as api:
        bridge = start_bridge(live_url, goal, git_repo, codex_cli, api, tmp_path / "codex-home")
        err = finish(bridge, timeout=90)
    assert (git_repo / "secrets" / "key").exists()  # the command was allowed: its words name no protected path
    goal.refresh_from_db()
    assert goal.status == GoalStatus.PAUSED
    stop = ApprovalRequest.objects.get(goal=goal, status=RequestStatus.PENDING)
    assert "secrets/key" in stop.diff
    assert "secrets/key" in err and "stopped:" in err


def test_the_command_form_app_server_sends_for_a_protected_path_is_refused(
    live_url, goal, git_repo, codex_cli, tmp_path
):
    with ResponsesAPI(shell("mkdir -p secrets && echo k > secrets/key"), message("Could not write it.")) as api:
        bridge = start_bridge(live_url, goal, git_repo, codex_cli, api, tmp_path / "codex-home", "--one-turn")
        finish(bridge, timeout=90)
    [call] = GatewayCall.objects.filter(goal=goal)
    assert call.verdict == "deny" and "secrets/key" in call.reason
    assert not (git_repo / "secrets" / "key").exists()

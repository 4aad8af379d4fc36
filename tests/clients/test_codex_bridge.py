"""The Codex bridge against a fake `codex app-server` that speaks the real JSON-RPC messages, through a live
daphne: approvals answered by the gates and the phone, the goal's budget set, checks and usage reported."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, RequestStatus
from gateway.models import AgentReport, AgentToken
from goalpost_client.codex_bridge import prompt_for, remaining_tokens
from goals.models import GoalStatus
from tests.support.fakes import CODEX_APP_SERVER
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def start_bridge(live_url, goal, repo, scenario, log: Path, *, no_goals=False, one_turn=True) -> subprocess.Popen:
    secret = AgentToken.issue(goal, name="codex")[1]
    env = {
        **os.environ,
        "FAKE_CODEX_SCENARIO": json.dumps(scenario),
        "FAKE_CODEX_LOG": str(log),
        **({"FAKE_CODEX_NO_GOALS": "1"} if no_goals else {}),
    }
    argv = [
        sys.executable,
        "-m",
        "goalpost_client.codex_bridge",
        "--url",
        live_url,
        "--token",
        secret,
        "--goal",
        str(goal.pk),
    ]
    argv += ["--cwd", str(repo), *(["--one-turn"] if one_turn else []), "--", sys.executable, str(CODEX_APP_SERVER)]
    return subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(bridge: subprocess.Popen) -> str:
    _, err = bridge.communicate(timeout=90)
    assert bridge.returncode == 0, err.decode()
    return err.decode()


def received(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def decisions(log: Path) -> dict[int, str]:
    return {m["id"]: m["result"]["decision"] for m in received(log) if isinstance(m.get("id"), int) and m["id"] >= 1000}


def test_gates_answer_v2_and_older_approval_requests(live_url, running, git_repo, tmp_path):
    log = tmp_path / "received.jsonl"
    scenario = [
        {"kind": "command", "command": "pytest -q", "cwd": str(git_repo)},
        {
            "kind": "fileChange",
            "changes": [{"path": str(git_repo / "secrets/token"), "kind": {"type": "add"}, "diff": "x\n"}],
        },
        {"kind": "execCommand", "command": ["bash", "-lc", "ls -la"], "cwd": str(git_repo)},
        {"kind": "applyPatch", "fileChanges": {str(git_repo / "docs/notes.md"): {"add": {"content": "hi\n"}}}},
        {"kind": "applyPatch", "fileChanges": {"secrets/a.pem": {"type": "add", "content": "k"}}},
    ]
    finish(start_bridge(live_url, running, git_repo, scenario, log))
    assert decisions(log) == {1001: "accept", 1002: "decline", 1003: "approved", 1004: "approved", 1005: "denied"}
    assert not ApprovalRequest.objects.exists()


def test_the_goal_and_its_token_budget_go_to_thread_goal_set(live_url, running, git_repo, tmp_path):
    log = tmp_path / "received.jsonl"
    finish(start_bridge(live_url, running, git_repo, [], log))
    [goal_set, *_] = [m for m in received(log) if m.get("method") == "thread/goal/set"]
    assert goal_set["params"] == {
        "threadId": "thr_fake_1",
        "objective": running.objective,
        "tokenBudget": running.budget_tokens,
    }
    [turn] = [m for m in received(log) if m.get("method") == "turn/start"]
    assert running.objective in turn["params"]["input"][0]["text"]
    [start] = [m for m in received(log) if m.get("method") == "thread/start"]
    assert start["params"] == {"cwd": str(git_repo), "approvalPolicy": "untrusted"}


def test_a_server_without_goals_is_fine(live_url, running, git_repo, tmp_path):
    log = tmp_path / "received.jsonl"
    finish(
        start_bridge(
            live_url,
            running,
            git_repo,
            [{"kind": "command", "command": "ls", "cwd": str(git_repo)}],
            log,
            no_goals=True,
        )
    )
    assert decisions(log) == {1001: "accept"}


@pytest.mark.parametrize(
    ("verdict", "expected", "request_status"),
    [
        ("approve", "accept", RequestStatus.APPROVED),
        ("reject", "decline", RequestStatus.REJECTED),
        ("stop", "cancel", RequestStatus.REJECTED),
    ],
)
def test_a_gate_that_asks_waits_for_the_phone(
    live_url, running, owner, git_repo, tmp_path, verdict, expected, request_status
):
    running.risk = "high"
    running.rollback_note = "revert the branch"
    running.save()
    log = tmp_path / "received.jsonl"
    scenario = [
        {"kind": "command", "command": "make migrate", "cwd": str(git_repo)},
        {"kind": "command", "command": "make deploy", "cwd": str(git_repo)},
    ]
    bridge = start_bridge(live_url, running, git_repo, scenario, log)
    request = wait_until(lambda: ApprovalRequest.objects.filter(goal=running, status=RequestStatus.PENDING).first(), 20)
    assert "Codex wants to run: make migrate" in request.summary
    request.decide(owner, verdict)
    if verdict != "stop":
        wait_until(
            lambda: (
                ApprovalRequest.objects.filter(goal=running, status=RequestStatus.PENDING)
                .exclude(pk=request.pk)
                .first()
            ),
            20,
        ).decide(owner, "approve")
    finish(bridge)
    assert decisions(log)[1001] == expected
    assert ApprovalRequest.objects.get(pk=request.pk).status == request_status
    if verdict == "stop":
        assert 1002 not in decisions(log)  # the turn ended
        running.refresh_from_db()
        assert running.status == GoalStatus.PAUSED


def test_the_goals_checks_and_token_usage_are_reported(live_url, running, git_repo, tmp_path):
    log = tmp_path / "received.jsonl"
    check = running.evidence[0]["command"]
    scenario = [
        {"kind": "tokens", "tokens": 1200},
        {
            "kind": "command",
            "command": check,
            "cwd": str(git_repo),
            "exit_code": 1,
            "output": "E   AssertionError\n1 failed",
        },
        {"kind": "command", "command": "ls", "cwd": str(git_repo), "exit_code": 0},
        {"kind": "tokens", "tokens": 800},
    ]
    finish(start_bridge(live_url, running, git_repo, scenario, log))
    [check_report] = AgentReport.objects.filter(goal=running).exclude(command="")
    assert (check_report.command, check_report.exit_code, check_report.passed) == (check, 1, False)
    assert sum(AgentReport.objects.filter(goal=running).values_list("tokens", flat=True)) == 2000


def test_it_declines_when_goalpost_cannot_be_reached(running, git_repo, tmp_path):
    from goalpost_client.codex_bridge import CodexBridge, GatewayClient

    bridge = CodexBridge(
        [sys.executable, str(CODEX_APP_SERVER)], GatewayClient("http://127.0.0.1:9", "gp_x", running.pk), cwd=str(git_repo)
    )
    assert (
        bridge.judge(
            "Bash",
            {"command": "ls"},
            str(git_repo),
            "c1",
            "t1",
            {"allow": "accept", "deny": "decline", "stop": "cancel"},
        )
        == "decline"
    )


def test_the_prompt_and_budget_come_from_the_goal():
    goal = {
        "title": "Faster dashboard",
        "objective": "Load under 1.5 s",
        "constraints": ["Keep the filters"],
        "evidence": [{"command": "pytest tests/test_dashboard.py", "expect_exit": 0}],
        "budgets": {"tokens": 1000},
        "used": {"tokens": 400},
    }
    assert "- Keep the filters" in prompt_for(goal) and "`pytest tests/test_dashboard.py`" in prompt_for(goal)
    assert remaining_tokens(goal) == 600
    assert remaining_tokens({"budgets": {"tokens": None}}) is None

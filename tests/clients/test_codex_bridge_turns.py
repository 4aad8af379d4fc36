"""The Codex bridge's turns, branch by branch, against the fake app-server (tests/support/fakes/
codex_app_server.py) and a stand-in for Goalpost's API that answers what each branch needs: when it starts another
turn, when it asks for the done review, when it stops; what it posts to /changes and what a stop there does; and
the working tree's real diff, read without running anything the agent planted."""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from goalpost_client.codex_bridge import CONTINUATION_WAIT_S, CodexBridge, shell_body, working_tree_diff
from tests.factories import make_git_repo
from tests.support.fakes import CODEX_APP_SERVER

CHECK = "pytest -q"


class StubGoalpost:
    """Goalpost's API as the bridge calls it (GatewayClient's methods), answering from attributes."""

    def __init__(self, *, status="running", used_tokens=0, decisions=("approved",), changes=None):
        self.status, self.used_tokens = status, used_tokens
        self.decisions = list(decisions)
        self.changes_answer = changes or {"verdict": "allow", "stop": False, "reason": "", "findings": []}
        self.calls: list[tuple] = []
        self.lock = threading.Lock()

    def record(self, *call):
        with self.lock:
            self.calls.append(call)

    def named(self, name: str) -> list[tuple]:
        return [call for call in self.calls if call[0] == name]

    def goal(self):
        self.record("goal")
        return {
            "title": "Greeting",
            "objective": "Say hello",
            "status": self.status,
            "evidence": [{"command": CHECK, "expect_exit": 0}],
            "budgets": {"tokens": 1000, "steps": None, "minutes": None},
            "used": {"tokens": self.used_tokens, "steps": 0, "minutes": 0},
        }

    def propose(self, tool, tool_input, cwd, tool_use_id, session_id):
        self.record("propose", tool, tool_input)
        return {"verdict": "allow", "reason": "No gate fired.", "stop": False, "request": None}

    def changes(self, diff, cwd, session_id="", tool_use_id="", tool=""):
        self.record("changes", diff, tool)
        return self.changes_answer

    def claim_done(self, summary):
        self.record("claim_done", summary)
        return {"verdict": "ask", "reason": "Waiting.", "request": {"id": 7}, "joined": False, "stop": False}

    def decision(self, request_id, wait=25):
        status = self.decisions.pop(0) if self.decisions else "approved"
        self.record("decision", status)
        comment = "Also greet in the README." if status == "rejected" else ""
        return {"status": status, "stop": status == "stop", "comment": comment, "reason": status}

    def evidence(self, command, exit_code, output_tail):
        self.record("evidence", command, exit_code)
        return {}

    def usage(self, tokens):
        self.record("usage", tokens)
        return {}

    def heartbeat(self):
        return {}


def run_bridge(tmp_path, goalpost, turns, *, no_goals=False, cwd=None) -> tuple[int, CodexBridge, list[dict]]:
    log = tmp_path / "received.jsonl"
    env = {**os.environ, "FAKE_CODEX_SCENARIO": json.dumps({"turns": turns}), "FAKE_CODEX_LOG": str(log)}
    if no_goals:
        env["FAKE_CODEX_NO_GOALS"] = "1"
    lines: list[str] = []
    bridge = CodexBridge(
        [sys.executable, str(CODEX_APP_SERVER)],
        goalpost,
        cwd=str(cwd or make_git_repo(tmp_path / "repo")),
        env=env,
        log=lines.append,
    )
    code = bridge.run()
    bridge.log_lines = lines
    return code, bridge, [json.loads(line) for line in log.read_text().splitlines()]


def methods(received, name):
    return [message for message in received if message.get("method") == name]


def check(exit_code, cwd="."):
    return {"kind": "command", "command": f"/bin/bash -lc '{CHECK}'", "cwd": cwd, "exit_code": exit_code}


def test_codex_says_done_with_passing_checks_opens_the_review_and_yes_ends_the_run(tmp_path):
    goalpost = StubGoalpost()
    code, bridge, received = run_bridge(
        tmp_path, goalpost, [[check(0), {"kind": "message", "text": "All green."}, {"kind": "complete"}]]
    )
    assert code == 0 and bridge.done and not bridge.exit_reason
    assert goalpost.named("claim_done") == [("claim_done", "All green.")]
    assert goalpost.named("evidence") == [("evidence", CHECK, 0)]
    assert len(methods(received, "turn/start")) == 1


def test_failing_checks_start_another_turn_saying_what_still_fails(tmp_path):
    goalpost = StubGoalpost()
    turns = [[check(1), {"kind": "complete"}], [check(0), {"kind": "complete"}]]
    code, _, received = run_bridge(tmp_path, goalpost, turns)
    starts = methods(received, "turn/start")
    assert code == 0 and len(starts) == 2
    text = starts[1]["params"]["input"][0]["text"]
    assert f"`{CHECK}`" in text and "Token budget left: 1000." in text
    assert len(goalpost.named("claim_done")) == 1  # only once the check passed
    # Codex's goal is set active again with the new turn.
    assert methods(received, "thread/goal/set")[-1]["params"]["status"] == "active"


def test_a_rejected_review_starts_a_turn_with_the_reviewers_comment(tmp_path):
    goalpost = StubGoalpost(decisions=("pending", "rejected", "approved"))
    # The second turn ends before the bridge sets Codex's goal active again: Codex then goes on by itself.
    turns = [[check(0), {"kind": "complete"}], [], [{"kind": "complete"}]]
    code, _, received = run_bridge(tmp_path, goalpost, turns)
    starts = methods(received, "turn/start")
    assert code == 0 and len(starts) == 2
    assert "The done review said no: Also greet in the README." in starts[1]["params"]["input"][0]["text"]
    assert len(goalpost.named("claim_done")) == 2


def test_a_stop_on_the_done_review_ends_the_run_and_pauses_codexs_goal(tmp_path):
    goalpost = StubGoalpost(decisions=("stop",))
    code, bridge, received = run_bridge(tmp_path, goalpost, [[check(0), {"kind": "complete"}]])
    assert code == 0 and bridge.exit_reason == "stop"
    assert methods(received, "thread/goal/set")[-1]["params"] == {"threadId": "thr_fake_1", "status": "paused"}


@pytest.mark.parametrize(
    ("stub", "reason"),
    [
        (StubGoalpost(status="paused"), "the goal is paused"),
        (StubGoalpost(status="done"), "the goal is done"),
        (StubGoalpost(used_tokens=1000), "the tokens budget is used up (1000 of 1000)"),
    ],
    ids=["paused", "done-elsewhere", "out-of-budget"],
)
def test_between_turns_a_goal_that_stopped_or_ran_out_ends_the_run(tmp_path, stub, reason):
    code, bridge, received = run_bridge(tmp_path, stub, [[check(1), {"kind": "complete"}]])
    assert code == 0 and bridge.exit_reason == reason
    assert len(methods(received, "turn/start")) == 1 and not stub.named("claim_done")
    assert methods(received, "thread/goal/set")[-1]["params"]["status"] == "paused"


def test_a_goal_paused_while_codex_keeps_going_on_its_own_ends_the_run_at_the_turns_end(tmp_path):
    goalpost = StubGoalpost(status="paused")
    started = time.monotonic()
    code, bridge, received = run_bridge(tmp_path, goalpost, [[check(1)]])  # Codex's goal stays active
    assert code == 0 and bridge.exit_reason == "the goal is paused"
    assert time.monotonic() - started < CONTINUATION_WAIT_S  # at once, not after waiting for a continuation
    assert methods(received, "thread/goal/set")[-1]["params"]["status"] == "paused"


def test_without_thread_goals_the_bridge_starts_each_turn_itself(tmp_path):
    goalpost = StubGoalpost()
    turns = [[check(1)], [check(0), {"kind": "message", "text": "Fixed."}]]
    code, bridge, received = run_bridge(tmp_path, goalpost, turns, no_goals=True)
    assert code == 0 and bridge.done and not bridge.goals_supported
    assert len(methods(received, "turn/start")) == 2
    assert goalpost.named("claim_done") == [("claim_done", "Fixed.")]
    assert not [m for m in methods(received, "thread/goal/set") if "status" in m["params"]]


def test_a_commands_real_writes_go_to_changes_and_a_stop_there_interrupts_the_turn(tmp_path):
    repo = make_git_repo(tmp_path / "repo")
    goalpost = StubGoalpost(
        changes={"verdict": "deny", "stop": True, "reason": "secrets/key is protected", "findings": []}
    )
    write = {
        "kind": "command",
        "command": "/bin/bash -lc 'python3 make_key.py'",
        "cwd": str(repo),
        "writes": {"secrets/key": "k\n"},
    }
    turns = [[write, {"kind": "tokens", "tokens": 10}, {"kind": "message", "text": "never reached"}]]
    code, bridge, received = run_bridge(tmp_path, goalpost, turns, cwd=repo)
    [(_, diff, tool)] = goalpost.named("changes")
    assert "diff --git a/secrets/key b/secrets/key\nnew file mode 100644\n" in diff and "+k\n" in diff
    assert tool == "Bash"
    assert code == 0 and bridge.exit_reason == "secrets/key is protected"
    assert methods(received, "turn/interrupt")[0]["params"] == {"threadId": "thr_fake_1", "turnId": "turn_fake_1"}
    assert not goalpost.named("claim_done")


def test_turn_diff_updated_goes_to_changes_once(tmp_path):
    goalpost = StubGoalpost()
    patch = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a\n+b\n"
    turns = [[{"kind": "diff", "diff": patch}, {"kind": "diff", "diff": patch}, check(0), {"kind": "complete"}]]
    run_bridge(tmp_path, goalpost, turns)
    assert [call[1] for call in goalpost.named("changes")] == [patch]


def test_malformed_output_is_skipped_and_the_run_goes_on(tmp_path):
    goalpost = StubGoalpost()
    code, bridge, _ = run_bridge(tmp_path, goalpost, [[{"kind": "garbage"}, check(0), {"kind": "complete"}]])
    assert code == 0 and bridge.done and goalpost.named("claim_done")
    assert any("not JSON" in line for line in bridge.log_lines)
    assert not goalpost.named("changes")  # a diff that is not text is no diff


@pytest.mark.parametrize(
    ("command", "body"),
    [
        ("/bin/bash -lc 'pytest -q'", "pytest -q"),
        (["bash", "-lc", "pytest  -q"], "pytest -q"),
        ("pytest -q", "pytest -q"),
        ("/bin/bash -lc \"echo 'pytest -q'\"", "echo 'pytest -q'"),
        ("/bin/bash -lc 'pytest -q' extra", "/bin/bash -lc 'pytest -q' extra"),
        (42, ""),
    ],
    ids=["app-server-string", "list-form", "bare", "mentions-the-check", "not-only-the-shell", "not-a-command"],
)
def test_the_command_a_shell_runs_is_unwrapped(command, body):
    assert shell_body(command) == body


def test_a_command_that_only_mentions_the_check_proves_nothing(tmp_path):
    goalpost = StubGoalpost(decisions=())
    mention = {"kind": "command", "command": f"/bin/bash -lc \"echo '{CHECK}'\"", "cwd": ".", "exit_code": 0}
    code, _, received = run_bridge(
        tmp_path, goalpost, [[mention, {"kind": "complete"}], [check(0), {"kind": "complete"}]]
    )
    assert goalpost.named("evidence") == [("evidence", CHECK, 0)]  # from the second turn's real check only
    assert len(methods(received, "turn/start")) == 2  # the mention did not count: the check still had to run


# --- the working tree's real diff -------------------------------------------------------------------------------


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_the_diff_shows_changed_new_deleted_and_binary_files_against_the_start(tmp_path):
    repo = make_git_repo(tmp_path / "repo")
    base = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    tracked = sorted(p.name for p in repo.iterdir() if p.is_file())
    (repo / tracked[0]).write_text("changed\n")
    (repo / "new.txt").write_text("new\n")
    (repo / "blob.bin").write_bytes(b"\0\1\2")
    (repo / ".gitignore").write_text("ignored.log\n")
    (repo / "ignored.log").write_text("noise\n")
    diff = working_tree_diff(str(repo), base)
    assert f"diff --git a/{tracked[0]} b/{tracked[0]}" in diff and "+changed\n" in diff
    assert "diff --git a/new.txt b/new.txt\nnew file mode 100644\n--- /dev/null\n+++ b/new.txt\n" in diff
    assert "Binary files /dev/null and b/blob.bin differ" in diff
    assert "ignored.log" not in diff.replace("+ignored.log", "")
    (repo / tracked[0]).unlink()
    assert f"deleted file mode 100644\n--- a/{tracked[0]}\n+++ /dev/null" in working_tree_diff(str(repo), base)


def test_reading_the_diff_runs_nothing_the_agent_planted_in_git_config(tmp_path):
    """The agent writes .git/config and .gitattributes: an fsmonitor, a clean filter, a diff driver, a pager and
    a textconv, each of which would run a program under `git diff`/`git status`. None may run."""
    repo = make_git_repo(tmp_path / "repo")
    base = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    pwned = tmp_path / "pwned"
    payload = f"sh -c 'echo ran >> {pwned}'"
    for key, value in [
        ("core.fsmonitor", payload),
        ("filter.evil.clean", payload),
        ("filter.evil.required", "true"),
        ("diff.evil.command", payload),
        ("diff.evil.textconv", payload),
        ("core.pager", payload),
    ]:
        git(repo, "config", key, value)
    (repo / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (repo / "new.txt").write_text("new\n")
    diff = working_tree_diff(str(repo), base)
    assert "b/new.txt" in diff and "b/.gitattributes" in diff
    assert not pwned.exists()


def test_a_big_file_first_does_not_hide_a_protected_path_behind_the_size_limit(tmp_path):
    repo = make_git_repo(tmp_path / "repo")
    base = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    (repo / "aaa.txt").write_text("x\n" * 600_000)  # 1.2 MB of diff, sorted before secrets/
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key").write_text("k\n")
    diff = working_tree_diff(str(repo), base)
    assert len(json.dumps(diff)) < 1_000_000
    assert "diff --git a/aaa.txt b/aaa.txt" in diff
    assert "diff --git a/secrets/key b/secrets/key\nnew file mode 100644\n" in diff

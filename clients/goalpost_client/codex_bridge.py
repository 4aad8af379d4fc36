"""The Codex bridge: runs `codex app-server` for a goal and answers its approval requests through Goalpost.

Codex's app-server speaks JSON-RPC 2.0 over stdio, one JSON message a line (without the `"jsonrpc"` member). Turn by
turn (checked against the real Codex CLI 0.169.0, docs/agents.md section 3):

1. `initialize`, `initialized`, `thread/start` in the goal's repository (approvalPolicy `untrusted`), then
   `turn/start` with the goal's contract, then `thread/goal/set` with the objective and the remaining token budget.
   While its thread goal is active Codex starts the next turn by itself after each one (a server without goals
   answers "method not found": the bridge starts the turns then).
2. Every approval request goes through the gateway's gates and, where they ask, the phone:
   `item/commandExecution/requestApproval` and `item/fileChange/requestApproval` (the changes come with the item's
   `item/started`): `{"decision": "accept" | "decline" | "cancel"}`; the older `execCommandApproval` and
   `applyPatchApproval`: `{"decision": "approved" | "denied" | "abort"}`. Allowed → accept; denied → decline; a
   person who chose "stop", or a goal that no longer runs → cancel. Goalpost unreachable → decline (fail closed).
3. After the fact: what really changed goes to `POST /goals/{id}/changes` — the diff of `turn/diff/updated`, and,
   since Codex 0.169.0 sent none for the changes we saw (a command's writes never reach it), the working tree's own
   diff against the commit the bridge started from, read after each command or file change completes. An answer
   with `stop` interrupts the turn (`turn/interrupt`), pauses Codex's goal and ends the run with the reason.
4. When a turn ends the bridge reads the goal: not running, or out of budget → Codex's goal is paused and the run
   ends. When Codex says it is done (its goal turns `complete`; without goals, a turn that ends) and the goal's
   checks it ran pass, the bridge asks for the done review (`POST /goals/{id}/done`) and waits for the owner:
   yes → the goal is done and the run ends; no → a new turn says what is still missing (the reviewer's comment,
   the checks still failing, the budget left) and Codex's goal is active again. Checks still failing when Codex
   stops → a new turn with them, without troubling the owner.

The goal's checks that Codex runs are reported as evidence, token usage as usage, any activity as a heartbeat.

Standard library only (goalpost-client: it may run on another machine than Goalpost):
`goalpost-codex-bridge --url URL --token TOKEN --goal ID [--prompt TEXT] [-- codex app-server]` (or
`python -m goalpost_client.codex_bridge …`), or `python manage.py codex_bridge GOAL_ID` next to the server.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from goalpost_client.worktree import ChangeError, change_since, head, toplevel

METHOD_NOT_FOUND = -32601
V2_DECISIONS = {"allow": "accept", "deny": "decline", "stop": "cancel"}
LEGACY_DECISIONS = {"allow": "approved", "deny": "denied", "stop": "abort"}
HEARTBEAT_EVERY_S = 60.0
DECISION_WAIT_S = 25
RESPONSE_TIMEOUT_S = 120.0
OUTPUT_TAIL = 4000
CONTINUATION_WAIT_S = 20.0  # how long an active Codex goal may sit between turns before the bridge decides
# Goalpost's goal states in which an agent may go on working.
WORKING = ("running", "waiting", "stalled")
SHELLS = ("bash", "sh", "zsh")
# Codex's own goal states that end its work without a done claim.
CODEX_GOAL_STOPPED = ("paused", "blocked", "usageLimited", "budgetLimited")


class GatewayError(Exception):
    """Goalpost could not be asked, or refused."""


class GatewayClient:
    """The gateway's JSON API for one goal, with the goal's agent token (urllib only)."""

    def __init__(self, base_url: str, token: str, goal_id: int, timeout: float = DECISION_WAIT_S + 20):
        if not base_url.startswith(("http://", "https://")):
            raise GatewayError(f"The Goalpost URL must start with http:// or https:// (it is {base_url!r}).")
        self.base_url, self.token, self.goal_id, self.timeout = base_url.rstrip("/"), token, goal_id, timeout

    def call(self, method: str, path: str, body: dict | None = None, params: dict | None = None) -> dict:
        url = f"{self.base_url}/api/v1{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "User-Agent": "goalpost-codex-bridge/1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            try:
                reason = json.loads(error.read()).get("error", "")
            except (ValueError, AttributeError):
                reason = ""
            raise GatewayError(f"Goalpost answered HTTP {error.code}: {reason or error.reason}") from error
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise GatewayError(f"Goalpost cannot be reached at {self.base_url}: {error}") from error

    def goal(self) -> dict:
        return self.call("GET", f"/goals/{self.goal_id}")

    def propose(self, tool: str, tool_input: dict, cwd: str, tool_use_id: str, session_id: str) -> dict:
        body = {
            "tool": tool,
            "input": tool_input,
            "cwd": cwd,
            "tool_use_id": tool_use_id,
            "session_id": session_id,
            "agent": "codex",
        }
        return self.call("POST", f"/goals/{self.goal_id}/steps", body)

    def changes(self, diff: str, cwd: str, session_id: str = "", tool_use_id: str = "", tool: str = "") -> dict:
        """What really changed (the shared `/changes` contract): the gates judge the real diff."""
        body = {"diff": diff, "source": "codex", "cwd": cwd}
        body.update(
            {
                key: value
                for key, value in (("session_id", session_id), ("tool_use_id", tool_use_id), ("tool", tool))
                if value
            }
        )
        return self.call("POST", f"/goals/{self.goal_id}/changes", body)

    def claim_done(self, summary: str) -> dict:
        return self.call("POST", f"/goals/{self.goal_id}/done", {"summary": summary[:4000] or "Done."})

    def decision(self, request_id: int, wait: float = DECISION_WAIT_S) -> dict:
        return self.call("GET", f"/requests/{request_id}/decision", params={"wait": wait})

    def evidence(self, command: str, exit_code: int | None, output_tail: str) -> dict:
        body = {"command": command, "exit_code": exit_code, "output_tail": output_tail[-OUTPUT_TAIL:]}
        return self.call("POST", f"/goals/{self.goal_id}/evidence", body)

    def usage(self, tokens: int) -> dict:
        return self.call("POST", f"/goals/{self.goal_id}/usage", {"tokens": tokens})

    def heartbeat(self) -> dict:
        return self.call("POST", f"/goals/{self.goal_id}/heartbeat", {})


def prompt_for(goal: dict) -> str:
    """The turn's instruction from the goal's contract."""
    lines = [f"Goal: {goal.get('title', '')}", "", str(goal.get("objective", "")).strip()]
    constraints = [str(item) for item in goal.get("constraints") or []]
    if constraints:
        lines += ["", "Constraints:", *[f"- {item}" for item in constraints]]
    if goal.get("done_criteria"):
        lines += ["", f"Done when: {goal['done_criteria']}"]
    checks = [check.get("command") for check in goal.get("evidence") or [] if isinstance(check, dict)]
    if checks:
        lines += ["", "Checks that prove it:", *[f"- `{command}`" for command in checks if command]]
    return "\n".join(lines)


def remaining_tokens(goal: dict) -> int | None:
    budget = (goal.get("budgets") or {}).get("tokens")
    if not isinstance(budget, int) or budget <= 0:
        return None
    used = (goal.get("used") or {}).get("tokens") or 0
    return max(1, budget - int(used))


def shell_body(command: object) -> str:
    """The command a shell runs, unwrapped from `/bin/bash -lc '…'` (how app-server v2 sends it, one string) or
    its list form, with its spaces tidied; "" for what is neither a string nor a list of strings."""
    if isinstance(command, str):
        try:
            words = shlex.split(command)
        except ValueError:
            return " ".join(command.split())
    elif isinstance(command, list) and all(isinstance(word, str) for word in command):
        words = command
    else:
        return ""
    if len(words) == 3 and os.path.basename(words[0]) in SHELLS and words[1] in ("-c", "-lc"):
        return " ".join(words[2].split())
    return " ".join(" ".join(words).split()) if isinstance(command, list) else " ".join(command.split())


def out_of_budget(goal: dict) -> str:
    """Which of the goal's budgets is used up ("" when none is): the bridge starts no turn beyond it."""
    budgets, used = goal.get("budgets") or {}, goal.get("used") or {}
    for name in ("tokens", "steps", "minutes"):
        limit, spent = budgets.get(name), used.get(name)
        if isinstance(limit, (int, float)) and limit > 0 and isinstance(spent, (int, float)) and spent >= limit:
            return f"the {name} budget is used up ({spent} of {limit})"
    return ""


def next_turn_prompt(goal: dict, failing: list[str], review: str = "") -> str:
    """A turn after the first: what is still missing, and the budget left."""
    lines = ["The goal is not done yet."]
    if review:
        lines += ["", f"The done review said no: {review}"]
    if failing:
        lines += ["", "Checks still failing (or not run yet):", *[f"- `{command}`" for command in failing]]
    left = remaining_tokens(goal)
    if left is not None:
        lines += ["", f"Token budget left: {left}."]
    lines += ["", "Keep working toward the goal; say so when it is done.", "", prompt_for(goal)]
    return "\n".join(lines)


# --- the working tree's real diff, without running anything the agent planted ---------------------------------


def working_tree_diff(repo: str, base: str) -> str:
    """The working tree against commit `base`, new files included, as a git diff: read as Claude Code's hook reads
    it (goalpost_client.worktree: git only lists and reads objects, links are never followed, and past the API's
    size limit files are listed by path only, so a big file first hides nothing). ChangeError when even the paths
    would not fit."""
    return change_since(repo, base).diff


class CodexBridge:
    """One `codex app-server` child and one thread, its turns kept going until the goal's done review says yes;
    approvals answered through the gateway, what really changed judged after the fact."""

    def __init__(
        self,
        argv: list[str],
        client: GatewayClient,
        *,
        cwd: str,
        prompt: str | None = None,
        approval_policy: str = "untrusted",
        log: Callable[[str], None] | None = None,
        env: dict | None = None,
        one_turn: bool = False,
    ):
        self.argv, self.client, self.cwd, self.env = argv, client, cwd, env
        self.prompt, self.approval_policy, self.one_turn = prompt, approval_policy, one_turn
        self.log = log or (lambda line: print(f"[goalpost-codex] {line}", file=sys.stderr, flush=True))
        self.process: subprocess.Popen | None = None
        self.write_lock = threading.Lock()
        self.messages: queue.Queue = queue.Queue()
        self.responses: dict[int, queue.Queue] = {}
        self.next_id = 0
        self.file_changes: dict[str, list] = {}
        self.thread_id = ""
        self.turn_id = ""  # the turn in progress ("" between turns)
        self.turns = 0
        self.turn_ended = threading.Event()
        self.turn_ended_at = 0.0
        self.turn_end_checked = False
        self.last_total_tokens = 0
        self.last_heartbeat = 0.0
        self.evidence_commands: list[str] = []
        self.expected_exit: dict[str, int] = {}
        self.checks: dict[str, bool] = {}  # the goal's checks Codex ran: passed or not, the last time
        self.goals_supported = False
        self.codex_goal_status = ""
        self.last_message = ""
        self.base = ""  # the commit the working tree is compared with
        self.posted_diff = ""
        self.stopping = threading.Event()
        self.stop_reason = ""
        self.exit_reason = ""
        self.done = False

    # --- the child and its messages ---

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=self.env
        )
        threading.Thread(target=self._read, name="codex-reader", daemon=True).start()

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for raw in self.process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                self.log(f"ignored a line that is not JSON: {raw[:200]!r}")
                continue
            if isinstance(message, dict):
                self.messages.put(message)
        self.messages.put(None)  # the child closed its stdout

    def send(self, message: dict) -> None:
        assert self.process and self.process.stdin
        line = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self.write_lock:
            try:
                self.process.stdin.write(line)
                self.process.stdin.flush()
            except (BrokenPipeError, OSError):
                self.log("codex app-server is gone; could not send")

    def request(self, method: str, params: dict, timeout: float = RESPONSE_TIMEOUT_S) -> dict:
        """Send a request and wait for its response (messages that come meanwhile are handled)."""
        self.next_id += 1
        request_id = self.next_id
        box: queue.Queue = queue.Queue()
        self.responses[request_id] = box
        self.send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while box.empty():
            if time.monotonic() > deadline:
                raise TimeoutError(f"codex app-server did not answer {method} in {timeout:.0f} s")
            if not self.pump(timeout=0.5):
                raise ConnectionError(f"codex app-server exited before answering {method}")
        return box.get()

    def pump(self, timeout: float) -> bool:
        """Handle the next message, if one comes within `timeout`; False once the child is gone."""
        try:
            message = self.messages.get(timeout=timeout)
        except queue.Empty:
            return True
        if message is None:
            return False
        self.dispatch(message)
        return True

    def dispatch(self, message: dict) -> None:
        self._maybe_heartbeat()
        if "method" not in message and "id" in message:
            box = self.responses.pop(message["id"], None) if isinstance(message["id"], int) else None
            if box is not None:
                box.put(message)
            return
        method, params = message.get("method"), message.get("params")
        params = params if isinstance(params, dict) else {}
        if "id" in message:
            # A server request: answer it on its own thread, since the phone may take a while.
            threading.Thread(target=self.answer, args=(message["id"], method, params), daemon=True).start()
        else:
            try:
                self.notice(method, params)
            except (AttributeError, TypeError, ValueError, KeyError) as error:  # a malformed notice is skipped
                self.log(f"ignored a malformed {method}: {error}")

    # --- approvals ---

    def answer(self, request_id, method: str, params: dict) -> None:
        try:
            result = self.approval_result(method, params)
        except Exception as error:  # never leave Codex without an answer
            self.log(f"{method}: {error}; declined")
            result = {"decision": "decline" if "/" in str(method) else "denied"}
        if result is None:
            self.send({"id": request_id, "error": {"code": METHOD_NOT_FOUND, "message": f"{method} is not handled"}})
            return
        self.send({"id": request_id, "result": result})

    def approval_result(self, method: str, params: dict) -> dict | None:
        if method == "item/commandExecution/requestApproval":
            command = params.get("command") or ""
            call = ("Bash", {"command": command}, params.get("cwd"), params.get("itemId"))
            return {"decision": self.judge(*call, params.get("threadId"), V2_DECISIONS)}
        if method == "item/fileChange/requestApproval":
            changes = self.file_changes.get(str(params.get("itemId")), [])
            call = ("apply_patch", {"changes": changes}, params.get("grantRoot") or self.cwd, params.get("itemId"))
            return {"decision": self.judge(*call, params.get("threadId"), V2_DECISIONS)}
        if method == "execCommandApproval":
            call = ("Bash", {"command": params.get("command") or []}, params.get("cwd"), params.get("callId"))
            return {"decision": self.judge(*call, params.get("conversationId"), LEGACY_DECISIONS)}
        if method == "applyPatchApproval":
            tool_input = {"fileChanges": params.get("fileChanges") or {}}
            call = ("apply_patch", tool_input, self.cwd, params.get("callId"))
            return {"decision": self.judge(*call, params.get("conversationId"), LEGACY_DECISIONS)}
        return None

    def judge(self, tool: str, tool_input: dict, cwd, call_id, session, decisions: dict[str, str]) -> str:
        """The gateway's verdict for one call, waiting for the phone where a gate asks; fails closed."""
        try:
            verdict = self.client.propose(
                tool, tool_input, str(cwd or self.cwd), str(call_id or ""), str(session or "")
            )
            outcome = verdict.get("verdict")
            stop = bool(verdict.get("stop"))
            request = verdict.get("request") or {}
            while outcome == "ask" and not self.stopping.is_set():
                answer = self.client.decision(int(request["id"]))
                if answer.get("status") != "pending":
                    outcome, stop = answer.get("decision") or "deny", bool(answer.get("stop"))
                    verdict = answer
        except (GatewayError, KeyError, TypeError, ValueError, AttributeError) as error:
            self.log(f"{tool}: {error}; declined (fail closed)")
            return decisions["deny"]
        if outcome == "ask":  # the bridge is stopping
            return decisions["stop"]
        self.log(f"{tool}: {outcome} — {verdict.get('reason', '')}")
        if stop:
            self.request_stop(str(verdict.get("reason", "") or "Goalpost said stop."))
            return decisions["stop"]
        return decisions["allow"] if outcome == "allow" else decisions["deny"]

    def request_stop(self, reason: str) -> None:
        """Stop the run at the next chance (the main loop interrupts the turn and pauses Codex's goal)."""
        if not self.stop_reason:
            self.stop_reason = reason
        self.stopping.set()

    # --- notifications ---

    def notice(self, method: str, params: dict) -> None:
        item = params.get("item") if isinstance(params.get("item"), dict) else {}
        if method == "item/started" and item.get("type") == "fileChange":
            self.file_changes[str(item.get("id"))] = item.get("changes") or []
        elif method == "item/completed" and item.get("type") == "commandExecution":
            self.report_check(item)
            self.judge_working_tree(params, item, "Bash")
        elif method == "item/completed" and item.get("type") == "fileChange":
            self.judge_working_tree(params, item, "apply_patch")
        elif method == "item/completed" and item.get("type") == "agentMessage":
            self.last_message = str(item.get("text") or "")
        elif method == "turn/diff/updated" and isinstance(params.get("diff"), str):
            self.judge_changes(params["diff"], str(params.get("threadId") or ""), "", "")
        elif method == "thread/tokenUsage/updated":
            self.report_usage(params)
        elif method == "thread/goal/updated":
            goal = params.get("goal") if isinstance(params.get("goal"), dict) else {}
            self.codex_goal_status = str(goal.get("status") or self.codex_goal_status)
        elif method == "turn/started":
            turn = params.get("turn") if isinstance(params.get("turn"), dict) else {}
            self.turn_id = str(turn.get("id") or self.turn_id)
            self.turn_ended.clear()
            self.turn_ended_at = 0.0
            self.turn_end_checked = False
        elif method == "turn/completed":
            turn = params.get("turn") if isinstance(params.get("turn"), dict) else {}
            if turn.get("id") in (None, self.turn_id) or not self.turn_id:
                self.turn_id = ""
                self.turns += 1
                self.turn_ended.set()

    def report_check(self, item: dict) -> None:
        """A command that is exactly one of the goal's checks (unwrapped from the shell Codex runs it in) is
        reported as that check; a command that merely mentions one (`echo 'pytest'`) proves nothing."""
        command, exit_code = shell_body(item.get("command")), item.get("exitCode")
        check = next((check for check in self.evidence_commands if " ".join(check.split()) == command), None)
        if not isinstance(exit_code, int) or check is None:
            return
        self.checks[check] = exit_code == self.expected_exit.get(check, 0)
        try:
            self.client.evidence(check, exit_code, str(item.get("aggregatedOutput") or ""))
        except GatewayError as error:
            self.log(f"could not report the check {check!r}: {error}")

    def judge_working_tree(self, params: dict, item: dict, tool: str) -> None:
        """After a command or a file change: the tree's real diff, whatever the approval thought it would do."""
        if not self.base:
            return
        try:
            diff = working_tree_diff(self.cwd, self.base)
        except (ChangeError, OSError, subprocess.SubprocessError, ValueError) as error:
            # Fail closed, as the hook does: what cannot be read cannot be judged.
            self.request_stop(f"Goalpost could not read what changed in the working tree: {error}")
            return
        self.judge_changes(diff, str(params.get("threadId") or ""), str(item.get("id") or ""), tool)

    def judge_changes(self, diff: str, session: str, item_id: str, tool: str) -> None:
        if not diff.strip() or diff == self.posted_diff:
            return
        self.posted_diff = diff
        try:
            verdict = self.client.changes(diff, self.cwd, session, item_id, tool)
        except GatewayError as error:
            self.log(f"could not have the changes judged: {error}")
            return
        if verdict.get("stop") or verdict.get("verdict") == "deny":
            self.log(f"changes: {verdict.get('verdict')} — {verdict.get('reason', '')}")
        if verdict.get("stop"):
            self.request_stop(str(verdict.get("reason") or "Goalpost stopped the goal for what changed."))

    def report_usage(self, params: dict) -> None:
        usage = params.get("tokenUsage") if isinstance(params.get("tokenUsage"), dict) else {}
        total = (usage.get("total") or {}).get("totalTokens") if isinstance(usage.get("total"), dict) else None
        if not isinstance(total, int) or total <= self.last_total_tokens:
            return
        delta, self.last_total_tokens = total - self.last_total_tokens, total
        try:
            self.client.usage(delta)
        except GatewayError as error:
            self.log(f"could not report token usage: {error}")

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat < HEARTBEAT_EVERY_S:
            return
        self.last_heartbeat = now
        try:
            self.client.heartbeat()
        except GatewayError as error:
            self.log(f"heartbeat failed: {error}")

    # --- the whole run ---

    def run(self) -> int:
        goal = self.client.goal()
        self.evidence_commands = [
            check.get("command")
            for check in goal.get("evidence") or []
            if isinstance(check, dict) and check.get("command")
        ]
        self.expected_exit = {
            str(check["command"]): check.get("expect_exit") if isinstance(check.get("expect_exit"), int) else 0
            for check in goal.get("evidence") or []
            if isinstance(check, dict) and check.get("command")
        }
        self.base = self.starting_commit()
        self.start()
        try:
            self.request(
                "initialize",
                {"clientInfo": {"name": "goalpost_bridge", "title": "Goalpost bridge", "version": "1.0.0"}},
            )
            self.send({"method": "initialized"})
            started = self.request("thread/start", {"cwd": self.cwd, "approvalPolicy": self.approval_policy})
            self.thread_id = str(((started.get("result") or {}).get("thread") or {}).get("id") or "")
            if not self.thread_id:
                raise ConnectionError(f"thread/start failed: {started.get('error')}")
            self.start_turn(self.prompt or prompt_for(goal))
            self.set_goal(goal)
            while not self.done:
                if not self.pump(timeout=1.0):
                    if not self.done and not self.stop_reason:
                        self.exit_reason = "codex app-server exited"
                    break
                self.step()
        except (ConnectionError, TimeoutError, GatewayError) as error:
            self.log(str(error))
            return 1
        finally:
            self.stopping.set()
            self.close()
        if self.exit_reason:
            self.log(f"stopped: {self.exit_reason}")
        return 0

    def starting_commit(self) -> str:
        try:
            return head(toplevel(self.cwd)) or ""
        except ChangeError as error:
            self.log(f"no commit to compare the working tree with ({error}): only turn/diff/updated is judged")
            return ""

    def start_turn(self, text: str) -> None:
        turn = self.request("turn/start", {"threadId": self.thread_id, "input": [{"type": "text", "text": text}]})
        if turn.get("error"):
            raise ConnectionError(f"turn/start failed: {turn['error']}")
        self.turn_id = str(((turn.get("result") or {}).get("turn") or {}).get("id") or "")
        self.turn_ended.clear()

    def step(self) -> None:
        """What to do after the messages so far: stop, wait, or (between turns) ask for the review or go on."""
        if self.stop_reason:
            self.halt(self.stop_reason)
            return
        if self.turn_id or not self.turn_ended.is_set():
            return  # a turn is in progress
        if self.one_turn:
            self.done = True
            return
        if self.goals_supported and self.codex_goal_status == "active" and not self.continuation_overdue():
            # Codex starts its next turn by itself: unless the goal stopped or ran out meanwhile.
            if not self.turn_end_checked:
                self.turn_end_checked = True
                goal = self.client.goal()
                refusal = self.refusal(goal)
                if refusal:
                    self.halt(refusal)
            return
        self.between_turns()

    def continuation_overdue(self) -> bool:
        """Codex's goal is active yet no turn followed (an interrupted turn, say): the bridge decides instead."""
        if not self.turn_ended_at:
            self.turn_ended_at = time.monotonic()
        return time.monotonic() - self.turn_ended_at > CONTINUATION_WAIT_S

    def between_turns(self) -> None:
        """A turn ended and Codex will not start another on its own: decide, from the goal, what comes next."""
        self.turn_ended.clear()
        self.turn_ended_at = 0.0
        goal = self.client.goal()
        refusal = self.refusal(goal)
        if refusal:
            self.halt(refusal)
            return
        if self.goals_supported and self.codex_goal_status in CODEX_GOAL_STOPPED:
            self.halt(f"Codex's goal is {self.codex_goal_status}")
            return
        failing = self.failing_checks()
        if failing:
            self.continue_goal(goal, failing)
            return
        self.ask_for_done_review(goal)

    @staticmethod
    def refusal(goal: dict) -> str:
        """Why the goal takes no more turns ("" when it does): it stopped, or a budget is used up."""
        status = str(goal.get("status") or "")
        if status not in WORKING:
            return f"the goal is {status or 'gone'}"
        return out_of_budget(goal)

    def failing_checks(self) -> list[str]:
        """The goal's checks that failed the last time Codex ran them, or that it never ran."""
        return [check for check in self.evidence_commands if not self.checks.get(check)]

    def ask_for_done_review(self, goal: dict) -> None:
        claim = self.client.claim_done(self.last_message or "Codex says the goal is done.")
        request = claim.get("request") or {}
        if claim.get("verdict") != "ask" or not request.get("id"):
            self.halt(str(claim.get("reason") or "Goalpost refused the done review."))
            return
        self.log(f"done review: {claim.get('reason', '')}")
        while True:
            answer = self.client.decision(int(request["id"]))
            if answer.get("status") != "pending":
                break
            while self.pump(timeout=0):  # keep up with Codex meanwhile
                if self.messages.empty():
                    break
        if answer.get("status") == "approved":
            self.log(f"done: {answer.get('reason', '')}")
            self.exit_reason, self.done = "", True
            return
        if answer.get("stop"):
            self.halt(str(answer.get("reason") or "stopped on the phone"))
            return
        review = str(answer.get("comment") or answer.get("reason") or "")
        self.continue_goal(self.client.goal(), self.failing_checks(), review)

    def continue_goal(self, goal: dict, failing: list[str], review: str = "") -> None:
        self.log(f"turn {self.turns + 1}: the goal is not done yet")
        self.start_turn(next_turn_prompt(goal, failing, review))
        if self.goals_supported and not self.turn_ended.is_set():
            # Active again, so Codex goes on after this turn; a turn that already ended needs no goal to go on.
            self.set_goal(goal, status="active")

    def halt(self, reason: str) -> None:
        """End the run: interrupt the turn in progress and pause Codex's goal so it starts no other."""
        self.done = True
        self.exit_reason = reason
        if self.turn_id:
            with contextlib.suppress(ConnectionError, TimeoutError):
                self.request("turn/interrupt", {"threadId": self.thread_id, "turnId": self.turn_id}, timeout=30)
        if self.goals_supported:
            with contextlib.suppress(ConnectionError, TimeoutError):
                self.request("thread/goal/set", {"threadId": self.thread_id, "status": "paused"}, timeout=30)

    def set_goal(self, goal: dict, status: str | None = None) -> None:
        params = {"threadId": self.thread_id, "objective": str(goal.get("objective") or goal.get("title") or "")}
        budget = remaining_tokens(goal)
        if budget is not None:
            params["tokenBudget"] = budget
        if status:
            params["status"] = status
        answer = self.request("thread/goal/set", params)
        error = answer.get("error")
        if error:
            if error.get("code") != METHOD_NOT_FOUND:
                self.log(f"thread/goal/set failed: {error.get('message')}")
            return
        self.goals_supported = True
        result_goal = (answer.get("result") or {}).get("goal") or {}
        self.codex_goal_status = str(result_goal.get("status") or "active")

    def close(self) -> None:
        process = self.process
        if process is None:
            return
        if process.stdin:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = ["codex", "app-server"]
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :] or command
    parser = argparse.ArgumentParser(prog="goalpost-codex-bridge", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("GOALPOST_URL", ""), help="Goalpost, e.g. http://host:8000")
    parser.add_argument("--token", default=os.environ.get("GOALPOST_TOKEN", ""), help="the goal's agent token")
    parser.add_argument("--goal", type=int, required=True, help="the goal's id")
    parser.add_argument("--cwd", default=os.getcwd(), help="where Codex works: the goal's repository")
    parser.add_argument("--prompt", default=None, help="the turn's instruction (default: from the goal)")
    parser.add_argument("--approval-policy", default="untrusted", help="Codex's approvalPolicy (default untrusted)")
    parser.add_argument(
        "--one-turn", action="store_true", help="one turn, then stop (no done review): to try the gates by hand"
    )
    options = parser.parse_args(args)
    if not options.url or not options.token:
        parser.error("set --url and --token (or GOALPOST_URL and GOALPOST_TOKEN)")
    try:
        client = GatewayClient(options.url, options.token, options.goal)
    except GatewayError as error:
        parser.error(str(error))
    bridge = CodexBridge(
        command,
        client,
        cwd=options.cwd,
        prompt=options.prompt,
        approval_policy=options.approval_policy,
        one_turn=options.one_turn,
    )
    try:
        return bridge.run()
    except GatewayError as error:
        print(f"[goalpost-codex] {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

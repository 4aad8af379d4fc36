"""The Codex bridge: runs `codex app-server` for a goal and answers its approval requests through Goalpost.

Codex's app-server speaks JSON-RPC 2.0 over stdio, one JSON message a line (without the `"jsonrpc"` member). The
bridge starts a thread in the goal's repository, sets the goal's objective and remaining token budget with
`thread/goal/set` (a server without it answers "method not found", which is fine), starts one turn, and answers
every approval request the server sends, through the gateway's gates and, where they ask, the phone:

- `item/commandExecution/requestApproval` and `item/fileChange/requestApproval` (the changes come with the
  item's `item/started`): `{"decision": "accept" | "decline" | "cancel"}`;
- the older `execCommandApproval` and `applyPatchApproval`: `{"decision": "approved" | "denied" | "abort"}`.

Allowed → accept / approved; denied → decline / denied; a person who chose "stop", or a goal that no longer
runs → cancel / abort (the turn ends). Goalpost unreachable → decline: the bridge fails closed. The goal's checks
that Codex runs are reported as evidence, token usage as usage, and any activity as a heartbeat.

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
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

METHOD_NOT_FOUND = -32601
V2_DECISIONS = {"allow": "accept", "deny": "decline", "stop": "cancel"}
LEGACY_DECISIONS = {"allow": "approved", "deny": "denied", "stop": "abort"}
HEARTBEAT_EVERY_S = 60.0
DECISION_WAIT_S = 25
RESPONSE_TIMEOUT_S = 120.0
OUTPUT_TAIL = 4000


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


class CodexBridge:
    """One `codex app-server` child, one thread, one turn; approvals answered through the gateway."""

    def __init__(
        self,
        argv: list[str],
        client: GatewayClient,
        *,
        cwd: str,
        prompt: str | None = None,
        approval_policy: str = "untrusted",
        log: Callable[[str], None] | None = None,
    ):
        self.argv, self.client, self.cwd = argv, client, cwd
        self.prompt, self.approval_policy = prompt, approval_policy
        self.log = log or (lambda line: print(f"[goalpost-codex] {line}", file=sys.stderr, flush=True))
        self.process: subprocess.Popen | None = None
        self.write_lock = threading.Lock()
        self.messages: queue.Queue = queue.Queue()
        self.responses: dict[int, queue.Queue] = {}
        self.next_id = 0
        self.file_changes: dict[str, list] = {}
        self.thread_id = ""
        self.turn_id = ""
        self.last_total_tokens = 0
        self.last_heartbeat = 0.0
        self.evidence_commands: list[str] = []
        self.stopping = threading.Event()
        self.exit_reason = ""

    # --- the child and its messages ---

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
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
        method, params = message.get("method"), message.get("params") or {}
        if "id" in message:
            # A server request: answer it on its own thread, since the phone may take a while.
            threading.Thread(target=self.answer, args=(message["id"], method, params), daemon=True).start()
        else:
            self.notice(method, params)

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
        except (GatewayError, KeyError, TypeError, ValueError) as error:
            self.log(f"{tool}: {error}; declined (fail closed)")
            return decisions["deny"]
        if outcome == "ask":  # the bridge is stopping
            return decisions["stop"]
        self.log(f"{tool}: {outcome} — {verdict.get('reason', '')}")
        if stop:
            self.exit_reason = verdict.get("reason", "")
            return decisions["stop"]
        return decisions["allow"] if outcome == "allow" else decisions["deny"]

    # --- notifications ---

    def notice(self, method: str, params: dict) -> None:
        item = params.get("item") if isinstance(params.get("item"), dict) else {}
        if method == "item/started" and item.get("type") == "fileChange":
            self.file_changes[str(item.get("id"))] = item.get("changes") or []
        elif method == "item/completed" and item.get("type") == "commandExecution":
            self.report_check(item)
        elif method == "thread/tokenUsage/updated":
            self.report_usage(params)
        elif method == "turn/completed":
            turn = params.get("turn") if isinstance(params.get("turn"), dict) else {}
            if not self.turn_id or turn.get("id") in (None, self.turn_id):
                self.stopping.set()

    def report_check(self, item: dict) -> None:
        command = item.get("command") or ""
        if isinstance(command, list):
            command = " ".join(str(word) for word in command)
        exit_code = item.get("exitCode")
        if not isinstance(exit_code, int) or not any(check and check in command for check in self.evidence_commands):
            return
        try:
            self.client.evidence(command, exit_code, str(item.get("aggregatedOutput") or ""))
        except GatewayError as error:
            self.log(f"could not report the check {command!r}: {error}")

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
            self.set_goal(goal)
            text = self.prompt or prompt_for(goal)
            turn = self.request("turn/start", {"threadId": self.thread_id, "input": [{"type": "text", "text": text}]})
            self.turn_id = str(((turn.get("result") or {}).get("turn") or {}).get("id") or "")
            if turn.get("error"):
                raise ConnectionError(f"turn/start failed: {turn['error']}")
            while not self.stopping.is_set():
                if not self.pump(timeout=1.0):
                    break
        except (ConnectionError, TimeoutError, GatewayError) as error:
            self.log(str(error))
            return 1
        finally:
            self.stopping.set()
            self.close()
        if self.exit_reason:
            self.log(f"stopped: {self.exit_reason}")
        return 0

    def set_goal(self, goal: dict) -> None:
        params = {"threadId": self.thread_id, "objective": str(goal.get("objective") or goal.get("title") or "")}
        budget = remaining_tokens(goal)
        if budget is not None:
            params["tokenBudget"] = budget
        answer = self.request("thread/goal/set", params)
        error = answer.get("error")
        if error and error.get("code") != METHOD_NOT_FOUND:
            self.log(f"thread/goal/set failed: {error.get('message')}")

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
    options = parser.parse_args(args)
    if not options.url or not options.token:
        parser.error("set --url and --token (or GOALPOST_URL and GOALPOST_TOKEN)")
    try:
        client = GatewayClient(options.url, options.token, options.goal)
    except GatewayError as error:
        parser.error(str(error))
    bridge = CodexBridge(
        command, client, cwd=options.cwd, prompt=options.prompt, approval_policy=options.approval_policy
    )
    try:
        return bridge.run()
    except GatewayError as error:
        print(f"[goalpost-codex] {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

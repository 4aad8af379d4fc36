"""A fake `codex app-server`: JSON-RPC 2.0 over stdio, one JSON message a line, without the "jsonrpc" member.

It answers initialize, thread/start, thread/goal/set (or "method not found" with FAKE_CODEX_NO_GOALS=1) and
turn/start; then plays the scenario in FAKE_CODEX_SCENARIO (a JSON list) as the real server would: item/started,
an approval request (v2 `item/commandExecution/requestApproval`, `item/fileChange/requestApproval`, or the older
`execCommandApproval`, `applyPatchApproval`), waits for the client's answer, item/completed, token usage, and
finally turn/completed. Everything it received is appended to FAKE_CODEX_LOG, one JSON message a line.
"""

import json
import os
import sys

LOG = os.environ.get("FAKE_CODEX_LOG", "")
THREAD, TURN = "thr_fake_1", "turn_fake_1"


def send(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def receive() -> dict | None:
    line = sys.stdin.readline()
    if not line:
        return None
    message = json.loads(line)
    if LOG:
        with open(LOG, "a") as log:
            log.write(json.dumps(message) + "\n")
    return message


def answer_of(request_id: int) -> dict:
    """Read until the client answers our request `request_id` (requests it sends meanwhile are answered)."""
    while True:
        message = receive()
        if message is None:
            sys.exit(0)
        if message.get("id") == request_id and "method" not in message:
            return message
        if "method" in message and "id" in message:
            send({"id": message["id"], "error": {"code": -32600, "message": "busy with a turn"}})


def handshake() -> None:
    while True:
        message = receive()
        if message is None:
            sys.exit(0)
        method, request_id = message.get("method"), message.get("id")
        if method == "initialize":
            send({"id": request_id, "result": {"userAgent": "fake_codex/0.0.1", "codexHome": "/tmp/fake"}})
        elif method == "thread/start":
            thread = {"id": THREAD, "preview": "", "modelProvider": "openai", "createdAt": 1730910000}
            send({"id": request_id, "result": {"thread": thread}})
            send({"method": "thread/started", "params": {"thread": thread}})
        elif method == "thread/goal/set":
            if os.environ.get("FAKE_CODEX_NO_GOALS"):
                send({"id": request_id, "error": {"code": -32601, "message": "Method not found"}})
            else:
                params = message.get("params", {})
                goal = {**params, "status": "active", "tokensUsed": 0}
                send({"id": request_id, "result": {"goal": goal}})
        elif method == "turn/start":
            send({"id": request_id, "result": {"turn": {"id": TURN, "status": "inProgress", "items": []}}})
            send({"method": "turn/started", "params": {"threadId": THREAD, "turn": {"id": TURN}}})
            return
        elif request_id is not None:
            send({"id": request_id, "error": {"code": -32601, "message": "Method not found"}})


def play(step: dict, number: int) -> str:
    """One approval of the scenario; returns the client's decision."""
    kind, item_id, request_id = step["kind"], f"item_{number}", 1000 + number
    scope = {"threadId": THREAD, "turnId": TURN, "itemId": item_id}
    if kind == "command":
        item = {
            "type": "commandExecution",
            "id": item_id,
            "command": step["command"],
            "cwd": step["cwd"],
            "status": "inProgress",
        }
        send({"method": "item/started", "params": {**scope, "item": item}})
        params = {
            **scope,
            "command": step["command"],
            "cwd": step["cwd"],
            "reason": "needs approval",
            "commandActions": [],
        }
        send({"id": request_id, "method": "item/commandExecution/requestApproval", "params": params})
    elif kind == "fileChange":
        item = {"type": "fileChange", "id": item_id, "changes": step["changes"], "status": "inProgress"}
        send({"method": "item/started", "params": {**scope, "item": item}})
        send({"id": request_id, "method": "item/fileChange/requestApproval", "params": {**scope, "reason": "write"}})
    elif kind == "execCommand":
        params = {
            "conversationId": THREAD,
            "callId": f"call_{number}",
            "command": step["command"],
            "cwd": step["cwd"],
            "parsedCmd": [],
        }
        send({"id": request_id, "method": "execCommandApproval", "params": params})
    elif kind == "applyPatch":
        params = {
            "conversationId": THREAD,
            "callId": f"call_{number}",
            "fileChanges": step["fileChanges"],
            "reason": None,
            "grantRoot": None,
        }
        send({"id": request_id, "method": "applyPatchApproval", "params": params})
    decision = answer_of(request_id).get("result", {}).get("decision")
    send({"method": "serverRequest/resolved", "params": {"threadId": THREAD, "requestId": request_id}})
    if kind == "command":
        accepted = decision == "accept"
        item = {
            "type": "commandExecution",
            "id": item_id,
            "command": step["command"],
            "cwd": step["cwd"],
            "status": ("completed" if step.get("exit_code", 0) == 0 else "failed") if accepted else "declined",
            "exitCode": step.get("exit_code", 0) if accepted else None,
            "aggregatedOutput": step.get("output", "") if accepted else "",
        }
        send({"method": "item/completed", "params": {**scope, "item": item}})
    return decision


def main() -> None:
    handshake()
    steps = json.loads(os.environ.get("FAKE_CODEX_SCENARIO") or "[]")
    total = 0
    status = "completed"
    for number, step in enumerate(steps, start=1):
        if step["kind"] == "tokens":
            total += step["tokens"]
            usage = {
                "total": {"totalTokens": total, "inputTokens": total, "outputTokens": 0},
                "last": {"totalTokens": step["tokens"]},
            }
            send(
                {
                    "method": "thread/tokenUsage/updated",
                    "params": {"threadId": THREAD, "turnId": TURN, "tokenUsage": usage},
                }
            )
            continue
        if play(step, number) in ("cancel", "abort"):
            status = "interrupted"
            break
    send(
        {
            "method": "turn/completed",
            "params": {"threadId": THREAD, "turn": {"id": TURN, "status": status, "items": []}},
        }
    )
    while receive() is not None:  # stay up until the client closes stdin, as the real server does
        pass


if __name__ == "__main__":
    main()

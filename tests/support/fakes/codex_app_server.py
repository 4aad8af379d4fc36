"""A fake `codex app-server` for what the real one cannot be made to send: malformed output, the older approval
requests (`execCommandApproval`, `applyPatchApproval`), a server without thread goals, exact scenarios of
approvals. Everything the bridge does with the real server is tested against the real `codex app-server`
(tests/clients/test_codex_bridge_real.py); the messages here follow what Codex CLI 0.169.0 sent there.

JSON-RPC 2.0 over stdio, one JSON message a line, without the "jsonrpc" member. It answers initialize,
thread/start, thread/goal/set (or "method not found" with FAKE_CODEX_NO_GOALS=1), turn/interrupt and turn/start.
Each turn/start plays the next turn of FAKE_CODEX_SCENARIO (a JSON list of steps for one turn, or
{"turns": [[steps], …]}) as the real server would: item/started, an approval request (v2
`item/commandExecution/requestApproval`, `item/fileChange/requestApproval`, or the older ones), the client's
answer, item/completed, token usage ({"kind": "tokens"}), a diff ({"kind": "diff", "diff": …}), a line that is
not JSON ({"kind": "garbage"}), an agent message ({"kind": "message", "text": …}); then, as Codex does when the
model calls update_goal, its goal turns `complete` ({"kind": "complete"}), and turn/completed. A goal set
`active` on an idle thread starts the next scripted turn by itself, as Codex does. Everything it received is
appended to FAKE_CODEX_LOG, one JSON message a line.
"""

import json
import os
import sys

LOG = os.environ.get("FAKE_CODEX_LOG", "")
THREAD = "thr_fake_1"
state = {"turn": 0, "goal": None, "interrupted": False}


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


def turn_id() -> str:
    return f"turn_fake_{state['turn']}"


def goal_changed(status: str) -> None:
    if state["goal"] is None:
        return
    state["goal"] = {**state["goal"], "status": status}
    send({"method": "thread/goal/updated", "params": {"threadId": THREAD, "turnId": turn_id(), "goal": state["goal"]}})


def answer_request(message: dict) -> None:
    """A client request: answered the way the real server answers it."""
    method, request_id, params = message.get("method"), message.get("id"), message.get("params") or {}
    if method == "initialize":
        send({"id": request_id, "result": {"userAgent": "fake_codex/0.0.1", "codexHome": "/tmp/fake"}})
    elif method == "thread/start":
        thread = {"id": THREAD, "preview": "", "modelProvider": "openai", "createdAt": 1730910000}
        send({"id": request_id, "result": {"thread": thread}})
        send({"method": "thread/started", "params": {"thread": thread}})
    elif method == "thread/goal/set":
        if os.environ.get("FAKE_CODEX_NO_GOALS"):
            send({"id": request_id, "error": {"code": -32601, "message": "Method not found"}})
            return
        state["goal"] = {
            "threadId": THREAD,
            "objective": "",
            "status": "active",
            "tokensUsed": 0,
            **(state["goal"] or {}),
        }
        state["goal"].update({key: value for key, value in params.items() if key != "threadId"})
        send({"id": request_id, "result": {"goal": state["goal"]}})
        send({"method": "thread/goal/updated", "params": {"threadId": THREAD, "turnId": None, "goal": state["goal"]}})
        if params.get("status") == "active" and state["turn"] and not state.get("in_turn"):
            continue_goal()  # as Codex does: a goal made active on an idle thread starts a turn
    elif method == "turn/interrupt":
        state["interrupted"] = True
        send({"id": request_id, "result": {}})
    elif method == "turn/start":
        # Notices the bridge has no use for come first, as with the real server.
        send({"method": "warning", "params": {"threadId": THREAD, "message": "Model metadata not found."}})
        send({"method": "thread/status/changed", "params": {"threadId": THREAD, "status": {"type": "active"}}})
        state["turn"] += 1
        state["interrupted"] = False
        turn = {"id": turn_id(), "status": "inProgress", "items": []}
        send({"id": request_id, "result": {"turn": turn}})
        send({"method": "turn/started", "params": {"threadId": THREAD, "turn": turn}})
        play_turn()
    elif request_id is not None:
        send({"id": request_id, "error": {"code": -32601, "message": "Method not found"}})


def continue_goal() -> None:
    """Codex's own continuation turn (no turn/start): the next scripted turn."""
    state["turn"] += 1
    state["interrupted"] = False
    turn = {"id": turn_id(), "status": "inProgress", "items": []}
    send({"method": "turn/started", "params": {"threadId": THREAD, "turn": turn}})
    play_turn()


def answer_of(request_id: int) -> dict:
    """Read until the client answers our request `request_id` (its own requests meanwhile are answered)."""
    while True:
        message = receive()
        if message is None:
            sys.exit(0)
        if message.get("id") == request_id and "method" not in message:
            return message
        if "method" in message and "id" in message:
            if message["method"] == "turn/start":
                send({"id": message["id"], "error": {"code": -32600, "message": "a turn is in progress"}})
            else:
                answer_request(message)


def turns() -> list[list[dict]]:
    scenario = json.loads(os.environ.get("FAKE_CODEX_SCENARIO") or "[]")
    return scenario["turns"] if isinstance(scenario, dict) else [scenario]


def play(step: dict, number: int) -> str | None:
    """One approval of the scenario; returns the client's decision."""
    kind, item_id, request_id = step["kind"], f"item_{state['turn']}_{number}", 1000 * state["turn"] + number
    scope = {"threadId": THREAD, "turnId": turn_id(), "itemId": item_id}
    if kind == "command":
        item = {"type": "commandExecution", "id": item_id, "command": step["command"], "cwd": step["cwd"]}
        send({"method": "item/started", "params": {**scope, "item": {**item, "status": "inProgress"}}})
        # As 0.169.0 sends it: the kind, when it started, the decisions it offers, an execpolicy amendment.
        params = {
            **scope,
            "kind": "command",
            "startedAtMs": 1796431504954,
            "environmentId": "local",
            "command": step["command"],
            "cwd": step["cwd"],
            "commandActions": [{"type": "unknown", "command": step["command"]}],
            "proposedExecpolicyAmendment": None,
            "availableDecisions": ["accept", "cancel"],
        }
        send({"id": request_id, "method": "item/commandExecution/requestApproval", "params": params})
    elif kind == "fileChange":
        item = {"type": "fileChange", "id": item_id, "changes": step["changes"], "status": "inProgress"}
        send({"method": "item/started", "params": {**scope, "item": item}})
        params = {**scope, "startedAtMs": 1796431799330, "reason": None, "grantRoot": None}
        send({"id": request_id, "method": "item/fileChange/requestApproval", "params": params})
    elif kind == "execCommand":
        params = {"conversationId": THREAD, "callId": f"call_{number}", "command": step["command"], "cwd": step["cwd"]}
        send({"id": request_id, "method": "execCommandApproval", "params": {**params, "parsedCmd": []}})
    elif kind == "applyPatch":
        params = {"conversationId": THREAD, "callId": f"call_{number}", "fileChanges": step["fileChanges"]}
        send(
            {"id": request_id, "method": "applyPatchApproval", "params": {**params, "reason": None, "grantRoot": None}}
        )
    decision = (answer_of(request_id).get("result") or {}).get("decision")
    send({"method": "serverRequest/resolved", "params": {"threadId": THREAD, "requestId": request_id}})
    if kind == "command":
        accepted = decision == "accept"
        if accepted and step.get("writes"):
            for path, content in step["writes"].items():
                os.makedirs(os.path.dirname(os.path.join(step["cwd"], path)) or ".", exist_ok=True)
                with open(os.path.join(step["cwd"], path), "w") as file:
                    file.write(content)
        item = {
            "type": "commandExecution",
            "id": item_id,
            "command": step["command"],
            "cwd": step["cwd"],
            "status": ("completed" if step.get("exit_code", 0) == 0 else "failed") if accepted else "declined",
            "exitCode": step.get("exit_code", 0) if accepted else None,
            "aggregatedOutput": step.get("output", "") if accepted else None,
        }
        send({"method": "item/completed", "params": {**scope, "item": item}})
    return decision


def play_turn() -> None:
    state["in_turn"] = True
    try:
        play_scripted_turn()
    finally:
        state["in_turn"] = False


def play_scripted_turn() -> None:
    scripted = turns()
    steps = scripted[state["turn"] - 1] if state["turn"] <= len(scripted) else []
    total = state.setdefault("tokens", 0)
    status = "completed"
    for number, step in enumerate(steps, start=1):
        kind = step["kind"]
        if kind == "tokens":
            total = state["tokens"] = total + step["tokens"]
            usage = {"total": {"totalTokens": total}, "last": {"totalTokens": step["tokens"]}}
            send(
                {
                    "method": "thread/tokenUsage/updated",
                    "params": {"threadId": THREAD, "turnId": turn_id(), "tokenUsage": usage},
                }
            )
        elif kind == "diff":
            send(
                {
                    "method": "turn/diff/updated",
                    "params": {"threadId": THREAD, "turnId": turn_id(), "diff": step["diff"]},
                }
            )
        elif kind == "garbage":
            sys.stdout.write("this is not JSON\n")
            send({"method": "item/completed", "params": "not an object"})
            send({"method": "turn/diff/updated", "params": {"threadId": THREAD, "diff": 42}})
            sys.stdout.flush()
        elif kind == "message":
            item = {"type": "agentMessage", "id": f"msg_{number}", "text": step["text"]}
            send({"method": "item/completed", "params": {"threadId": THREAD, "turnId": turn_id(), "item": item}})
        elif kind == "complete":
            goal_changed("complete")
        elif play(step, number) in ("cancel", "abort") or state["interrupted"]:
            status = "interrupted"
            break
    send(
        {
            "method": "turn/completed",
            "params": {"threadId": THREAD, "turn": {"id": turn_id(), "status": status, "items": []}},
        }
    )


def main() -> None:
    while True:  # stay up until the client closes stdin, as the real server does
        message = receive()
        if message is None:
            return
        if "method" in message and "id" in message:
            answer_request(message)


if __name__ == "__main__":
    main()

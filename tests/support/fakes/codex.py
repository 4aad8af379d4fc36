"""A fake `codex exec --json`, for what the real Codex cannot be made to print: malformed, huge or hostile output
(garbage lines, a failed turn without a model behind it, a hang, an edit outside the worktree, a planted symlink).

Codex working as it should is tested with the real CLI against tests/support/fakes/responses_api.py
(tests/agents/test_codex_managed.py); this fake's events only follow the shape of the real ones."""

import os
import sys
from pathlib import Path

from common import edit_greeting, emit, hang, record, scenario

USAGE = {"input_tokens": 24763, "cached_input_tokens": 24448, "output_tokens": 122}
MESSAGE = (
    "Changed the greeting in app.py to hi; `python app.py` prints hi.\n"
    "FOLLOW-UP: the logger drops non-ASCII characters\n"
    "DONE"
)


def turn(message: str = MESSAGE, usage: dict = USAGE) -> None:
    emit({"type": "turn.started"})
    emit({"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "**Reading app.py**"}})
    command = {"id": "item_1", "type": "command_execution", "command": "bash -lc 'cat app.py'"}
    emit({"type": "item.started", "item": {**command, "aggregated_output": "", "exit_code": None, "status": "in_progress"}})
    emit({"type": "item.completed", "item": {**command, "aggregated_output": "print('hello')\n", "exit_code": 0, "status": "completed"}})
    edit_greeting()
    changes = [{"path": str(Path("app.py").resolve()), "kind": "update"}]
    emit({"type": "item.completed", "item": {"id": "item_2", "type": "file_change", "changes": changes, "status": "completed"}})
    emit({"type": "item.completed", "item": {"id": "item_3", "type": "todo_list", "items": [{"text": "Edit app.py", "completed": True}]}})
    emit({"type": "item.completed", "item": {"id": "item_4", "type": "mcp_tool_call", "server": "docs", "tool": "search", "status": "completed"}})
    emit({"type": "item.completed", "item": {"id": "item_5", "type": "web_search", "query": "python print"}})
    emit({"type": "item.completed", "item": {"id": "item_6", "type": "error", "message": "stream disconnected; retrying 1/5"}})
    emit({"type": "item.completed", "item": {"id": "item_7", "type": "brand_new_item", "payload": 1}})
    emit({"type": "item.completed", "item": {"id": "item_8", "type": "agent_message", "text": message}})
    emit({"type": "turn.completed", "usage": usage})


def main() -> int:
    record()
    mode = scenario()
    if mode == "hang":
        hang()
    if mode == "exit_nonzero":
        print("Error: Not logged in. Run `codex login`.", file=sys.stderr)
        return 1
    if mode == "garbage":
        print("<html>502 Bad Gateway</html>")
        print('{"type": "thread.started", "thread_id": ')
        print("[1, 2, 3]")
        return 0
    emit({"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"})
    if mode == "turn_failed":
        emit({"type": "turn.started"})
        emit({"type": "turn.failed", "error": {"message": "stream error: exceeded retry limit, last status: 429"}})
        return 1
    if mode == "error_event":
        emit({"type": "error", "message": "unexpected status 401 Unauthorized"})
        return 1
    if mode == "no_turn_end":
        emit({"type": "turn.started"})
        return 0
    if mode == "symlink_escape":
        os.symlink("/etc", "etc-link")
    if mode == "edit_outside":
        emit({"type": "turn.started"})
        changes = [{"path": "/tmp/elsewhere/settings.py", "kind": "add"}, {"path": "app.py", "kind": "update"}]
        emit({"type": "item.completed", "item": {"id": "item_0", "type": "file_change", "changes": changes, "status": "completed"}})
        emit({"type": "turn.completed", "usage": USAGE})
        return 0
    print("WARNING: proceeding, even though we could not update PATH")
    emit({"type": "session.configured", "model": "gpt-5-codex"})
    if mode == "huge":
        chunk = "x" * 1000
        item = {"id": "item_9", "type": "command_execution", "command": "yes", "exit_code": None, "status": "in_progress"}
        for _ in range(20_000):
            emit({"type": "item.updated", "item": {**item, "aggregated_output": chunk}})
    turn()
    if mode == "two_turns":
        turn("Also tidied the docstring.", {"input_tokens": 1000, "cached_input_tokens": 0, "output_tokens": 50})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A fake `claude -p … --output-format json` for malformed and odd output only (garbage, a hang, a non-zero exit,
results the real client seldom gives): it prints one result object and edits app.py. A working Claude Code is the
real one from npm against tests/support/fakes/anthropic_api.py (tests/agents/test_claude_managed.py)."""

import json
import sys

from common import edit_greeting, hang, record, scenario

RESULT = {
    "type": "result",
    "subtype": "success",
    "is_error": False,
    "duration_ms": 2850,
    "duration_api_ms": 4105,
    "num_turns": 4,
    "result": "Changed the greeting in app.py to hi.\nFOLLOW-UP: README still says hello\nSTATUS: done",
    "session_id": "2f1a7c3e-5b8d-4e1f-9a6b-0c2d3e4f5a6b",
    "total_cost_usd": 0.0421,
    "usage": {
        "input_tokens": 12,
        "cache_creation_input_tokens": 3456,
        "cache_read_input_tokens": 7890,
        "output_tokens": 234,
        "server_tool_use": {"web_search_requests": 0},
        "service_tier": "standard",
    },
    "permission_denials": [],
    "uuid": "6c1e0b8a-7d2f-4a3e-8b9c-1d2e3f4a5b6c",
}


def main() -> int:
    record()
    mode = scenario()
    if mode == "hang":
        hang()
    if mode == "exit_nonzero":
        print("Invalid API key · Please run /login", file=sys.stderr)
        return 1
    if mode == "garbage":
        print("Welcome to Claude Code! {not json")
        return 0
    edit_greeting()
    if mode == "is_error":
        print(json.dumps({**RESULT, "is_error": True, "result": "API Error: 529 Overloaded"}))
        return 1
    if mode == "error_text_as_success":  # the client's error as the result, is_error unset
        print(json.dumps({**RESULT, "is_error": False, "result": "Not logged in · Please run /login"}))
        return 0
    if mode == "max_turns":
        print(json.dumps({**RESULT, "subtype": "error_max_turns", "is_error": False, "result": None}))
        return 0
    if mode == "during_execution":
        print(json.dumps({**RESULT, "subtype": "error_during_execution", "is_error": True, "result": ""}))
        return 1
    if mode == "verbose":
        messages = [
            {"type": "system", "subtype": "init", "session_id": RESULT["session_id"], "tools": ["Edit"]},
            {"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text", "text": "Editing."}]}},
            RESULT,
        ]
        print(json.dumps(messages))
        return 0
    print(json.dumps(RESULT))
    return 0


if __name__ == "__main__":
    sys.exit(main())

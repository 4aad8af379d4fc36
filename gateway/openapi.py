"""The agent gateway's API as an OpenAPI 3.1 document, written by hand and served at /api/v1/openapi.json.

Plain data (no Django): tests and the fuzzer load it as it is.
"""

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    text = {
        400: "Malformed JSON or a body the API cannot use; `error` says what.",
        401: "No token, an unknown one, or an expired or revoked one; `error` says which.",
        403: "Another goal's token, or an action a token may never take.",
        404: "No such goal, request or rule.",
        405: "Wrong method.",
    }
    return {str(code): _json(ERROR, text[code]) for code in codes}


GOAL_ID = {"name": "goal_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
TOKEN_AUTH = [{"agentToken": []}]

OPENAPI: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "Goalpost agent gateway",
        "version": "1.0.0",
        "description": (
            "Attach an agent running elsewhere (Claude Code, Codex, a script) to a Goalpost goal: it proposes "
            "each risky tool call, the goal's review gates answer allow, deny or ask, and a person decides "
            "from their phone. Agents authenticate with the goal's token (`Authorization: Bearer <token>`), "
            "created on the goal page or with `python manage.py agent_token GOAL_ID`. A token proposes and "
            'reads for its one goal; it never decides. Errors are `{"error": reason}`; unknown fields in '
            "bodies are ignored."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": TOKEN_AUTH,
    "paths": {
        "/goals/{goal_id}": {
            "get": {
                "operationId": "getGoal",
                "summary": "The goal's contract, status, budgets and what is used",
                "parameters": [GOAL_ID],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Goal"}, "The goal."),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/goals/{goal_id}/steps": {
            "post": {
                "operationId": "proposeStep",
                "summary": "Propose a tool call; the gates answer allow, deny or ask",
                "description": (
                    "`allow`: no gate fired (or an always-allow rule covers the call). `deny`: a gate says stop "
                    "(protected path, lock or generated file, budget used up), the goal is not running, or the "
                    "call writes outside the goal's repository; `stop` is true when the agent should stop "
                    "altogether. `ask`: an approval request is open for the goal's people; wait for it at "
                    "`request.decision_url`. The same call proposed again joins that request, and once it is "
                    "decided answers with its decision."
                ),
                "parameters": [GOAL_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/StepProposal"}}},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/StepVerdict"}, "The gates' verdict."),
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/goals/{goal_id}/evidence": {
            "post": {
                "operationId": "reportEvidence",
                "summary": "Report a check the agent ran: command, exit code, output tail",
                "description": "Failing checks with the same signature several times in a row ask a person.",
                "parameters": [GOAL_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Evidence"}}},
                },
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/EvidenceRecorded"}, "Recorded."),
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/goals/{goal_id}/usage": {
            "post": {
                "operationId": "reportUsage",
                "summary": "Report tokens used since the last report (they count against the token budget)",
                "parameters": [GOAL_ID],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Usage"}}},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/UsageRecorded"}, "The goal's reported total."),
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/goals/{goal_id}/heartbeat": {
            "post": {
                "operationId": "heartbeat",
                "summary": "The agent is alive: a goal silent past the stall limit becomes a stall",
                "parameters": [GOAL_ID],
                "requestBody": {
                    "required": False,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Heartbeat"}, "The goal's status."),
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/goals/{goal_id}/rules": {
            "get": {
                "operationId": "listRules",
                "summary": "The goal's always-allow rules (a token of the goal, or a person who sees it)",
                "parameters": [
                    GOAL_ID,
                    {
                        "name": "all",
                        "in": "query",
                        "required": False,
                        "description": "1 to include revoked rules.",
                        "schema": {"type": "string", "enum": ["0", "1"]},
                    },
                ],
                "security": [{"agentToken": []}, {"session": []}],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["rules"],
                            "properties": {"rules": {"type": "array", "items": {"$ref": "#/components/schemas/Rule"}}},
                        },
                        "The rules.",
                    ),
                    **_errors(401, 403, 404),
                },
            },
            "post": {
                "operationId": "addRule",
                "summary": "Add an always-allow rule (the goal's owner, signed in, with the CSRF token)",
                "description": (
                    "`command_prefix`: a plain command (no shell operators) starting with these words is allowed "
                    "where a gate would ask. `path`: a file change whose every path matches this glob is allowed "
                    "where a gate would ask. A rule never lifts a deny. Agent tokens get 403."
                ),
                "parameters": [GOAL_ID],
                "security": [{"session": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RuleInput"}}},
                },
                "responses": {
                    "201": _json({"$ref": "#/components/schemas/Rule"}, "The rule."),
                    **_errors(400, 401, 403, 404),
                },
            },
        },
        "/goals/{goal_id}/rules/{rule_id}": {
            "delete": {
                "operationId": "revokeRule",
                "summary": "Revoke an always-allow rule (the goal's owner, signed in)",
                "parameters": [
                    GOAL_ID,
                    {"name": "rule_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}},
                ],
                "security": [{"session": []}],
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Rule"}, "The revoked rule."),
                    **_errors(401, 403, 404),
                },
            }
        },
        "/requests/{request_id}/decision": {
            "get": {
                "operationId": "getDecision",
                "summary": "Wait for a person's decision on a request (long-poll, at most 25 s; call again)",
                "parameters": [
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer", "minimum": 1},
                    },
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "Seconds to wait for a decision; 0 answers at once; more than 25 counts as 25.",
                        "schema": {"type": "number", "minimum": 0, "maximum": 25, "default": 0},
                    },
                ],
                "responses": {
                    "200": _json(
                        {"$ref": "#/components/schemas/Decision"},
                        "The request's state: `pending` after the wait (call again), or decided.",
                    ),
                    **_errors(400, 401, 403, 404),
                },
            }
        },
        "/hooks/claude": {
            "post": {
                "operationId": "claudeCodeHook",
                "summary": "Claude Code's hook input, as an HTTP hook sends it",
                "description": (
                    "`PreToolUse` answers Claude Code's decision JSON. When a gate asks for a person, the call "
                    "waits for the phone (default 55 s, `wait` to change it) and answers allow or deny from the "
                    "decision; without an answer in time it denies, saying the request is still open on the "
                    "phone (or answers `ask` where the goal falls back to Claude Code's own prompt), and the "
                    "same call retried joins that request. A call that does not fit the goal's state (paused, "
                    "cwd elsewhere) is answered 200 with deny. `Notification`, `Stop`, `SubagentStop`, "
                    "`SessionStart` and `SessionEnd` go on the goal's timeline and answer `{}`; other events "
                    "answer `{}`."
                ),
                "parameters": [
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "Seconds to wait for the phone before answering (default 55).",
                        "schema": {"type": "number", "minimum": 0, "maximum": 600},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClaudeHookInput"}}},
                },
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/ClaudeHookOutput"}, "The hook's answer."),
                    **_errors(400, 401),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }
        },
    },
    "components": {
        "securitySchemes": {
            "agentToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "The goal's agent token: `Authorization: Bearer gp_…`.",
            },
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "sessionid",
                "description": "A signed-in person's session, with `X-CSRFToken` for changes.",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string", "description": "Why, for a person."}},
            },
            "StepProposal": {
                "type": "object",
                "required": ["tool"],
                "description": "A tool call. Claude Code's `tool_name`/`tool_input` are accepted too.",
                "properties": {
                    "tool": {
                        "type": "string",
                        "description": (
                            "Bash (input `command`), Write (`file_path`, `content`), Edit (`file_path`, "
                            "`old_string`, `new_string`, `replace_all`), MultiEdit (`file_path`, `edits`), "
                            "NotebookEdit (`notebook_path`), apply_patch (`patch`: a unified diff or Codex's "
                            "`*** Begin Patch` format, or `changes`), read-only tools (Read, Grep…: always "
                            "allowed); any other name (an MCP tool) is gated like a command."
                        ),
                        "examples": ["Bash", "Write", "Edit", "MultiEdit", "apply_patch", "mcp__github__create_pr"],
                    },
                    "input": {"type": "object", "description": "The tool's input."},
                    "cwd": {"type": "string", "description": "Where the agent runs: inside the goal's repository."},
                    "session_id": {"type": "string"},
                    "tool_use_id": {"type": "string"},
                    "agent": {"type": "string", "enum": ["claude", "codex", "api"]},
                },
            },
            "Finding": {
                "type": "object",
                "required": ["gate", "severity", "reason"],
                "properties": {
                    "gate": {"type": "string"},
                    "severity": {"type": "string", "enum": ["stop", "approval", "info"]},
                    "reason": {"type": "string"},
                    "path": {"type": ["string", "null"]},
                    "lines": {"type": "array", "items": {"type": "string"}},
                    "kind": {"type": "string"},
                    "data": {"type": "object"},
                },
            },
            "StepVerdict": {
                "type": "object",
                "required": ["verdict", "reason", "findings", "request", "joined", "stop"],
                "properties": {
                    "verdict": {"type": "string", "enum": ["allow", "deny", "ask"]},
                    "reason": {"type": "string"},
                    "findings": {"type": "array", "items": {"$ref": "#/components/schemas/Finding"}},
                    "call": {"type": ["integer", "null"]},
                    "request": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "required": ["id", "status", "decision_url"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "status": {"type": "string"},
                                    "decision_url": {"type": "string"},
                                },
                            },
                        ]
                    },
                    "joined": {"type": "boolean"},
                    "stop": {"type": "boolean"},
                },
            },
            "Decision": {
                "type": "object",
                "required": ["request", "goal", "status", "decision", "stop", "reason"],
                "properties": {
                    "request": {"type": "integer"},
                    "goal": {"type": "integer"},
                    "status": {"type": "string", "enum": ["pending", "approved", "rejected", "expired", "superseded"]},
                    "decision": {"type": ["string", "null"], "enum": ["allow", "deny", None]},
                    "verdict": {"type": ["string", "null"], "enum": ["approve", "reject", "stop", "extend", None]},
                    "stop": {"type": "boolean", "description": "A person chose to stop the goal."},
                    "reason": {"type": "string"},
                    "decided_by": {"type": ["string", "null"]},
                    "comment": {"type": "string"},
                    "decided_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "Evidence": {
                "type": "object",
                "required": ["command", "exit_code"],
                "properties": {
                    "command": {"type": "string"},
                    "exit_code": {"type": ["integer", "null"]},
                    "output_tail": {"type": "string", "description": "The end of the output (20,000 characters kept)."},
                    "name": {"type": "string"},
                    "expected_exit": {"type": "integer", "default": 0},
                    "failing_tests": {"type": "array", "items": {"type": "string"}},
                    "timed_out": {"type": "boolean"},
                    "tokens": {"type": "integer", "minimum": 0},
                },
            },
            "EvidenceRecorded": {
                "type": "object",
                "required": ["id", "passed", "failure_signature"],
                "properties": {
                    "id": {"type": "integer"},
                    "passed": {"type": "boolean"},
                    "failure_signature": {"type": ["string", "null"]},
                },
            },
            "Usage": {
                "type": "object",
                "required": ["tokens"],
                "properties": {"tokens": {"type": "integer", "minimum": 0}},
            },
            "UsageRecorded": {
                "type": "object",
                "required": ["reported_tokens"],
                "properties": {
                    "reported_tokens": {"type": "integer"},
                    "budget_tokens": {"type": ["integer", "null"]},
                },
            },
            "Heartbeat": {
                "type": "object",
                "required": ["goal", "status", "stop", "reason"],
                "properties": {
                    "goal": {"type": "integer"},
                    "status": {"type": "string"},
                    "stop": {"type": "boolean"},
                    "reason": {"type": "string"},
                },
            },
            "Goal": {
                "type": "object",
                "required": ["id", "title", "objective", "status", "budgets", "used"],
                "properties": {
                    "id": {"type": "integer"},
                    "title": {"type": "string"},
                    "objective": {"type": "string"},
                    "constraints": {"type": "array", "items": {"type": "string"}},
                    "done_criteria": {"type": "string"},
                    "status": {"type": "string"},
                    "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                    "protected_paths": {"type": "array", "items": {"type": "string"}},
                    "scope_paths": {"type": "array", "items": {"type": "string"}},
                    "repository": {"type": "string"},
                    "evidence": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"command": {"type": "string"}, "expect_exit": {"type": "integer"}},
                        },
                    },
                    "budgets": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
                    "used": {"type": "object"},
                    "when_unanswered": {"type": "string", "enum": ["deny", "ask"]},
                },
            },
            "RuleInput": {
                "type": "object",
                "required": ["kind", "value"],
                "properties": {
                    "kind": {"type": "string", "enum": ["command_prefix", "path"]},
                    "value": {"type": "string", "minLength": 1, "maxLength": 500},
                },
            },
            "Rule": {
                "type": "object",
                "required": ["id", "kind", "value", "created_at", "revoked_at"],
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"type": "string", "enum": ["command_prefix", "path"]},
                    "value": {"type": "string"},
                    "created_by": {"type": ["string", "null"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "revoked_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
            "ClaudeHookInput": {
                "type": "object",
                "required": ["hook_event_name"],
                "properties": {
                    "hook_event_name": {
                        "type": "string",
                        "examples": ["PreToolUse", "Notification", "Stop"],
                    },
                    "session_id": {"type": "string"},
                    "transcript_path": {"type": "string"},
                    "cwd": {"type": "string"},
                    "permission_mode": {"type": "string"},
                    "tool_name": {"type": "string", "description": "PreToolUse: Bash, Write, Edit, MultiEdit, mcp__…"},
                    "tool_input": {"type": "object"},
                    "tool_use_id": {"type": "string"},
                    "message": {"type": "string", "description": "Notification: what Claude Code says."},
                },
            },
            "ClaudeHookOutput": {
                "type": "object",
                "properties": {
                    "hookSpecificOutput": {
                        "type": "object",
                        "required": ["hookEventName", "permissionDecision", "permissionDecisionReason"],
                        "properties": {
                            "hookEventName": {"type": "string", "const": "PreToolUse"},
                            "permissionDecision": {"type": "string", "enum": ["allow", "deny", "ask"]},
                            "permissionDecisionReason": {"type": "string"},
                        },
                    },
                    "continue": {"type": "boolean"},
                    "stopReason": {"type": "string"},
                },
            },
        },
    },
}

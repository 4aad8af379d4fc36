"""The gateway API's bodies and answers, as pydantic schemas (django-ninja): they check what agents send and
generate the OpenAPI document. Bodies are strict (a number is not a string, true is not 1) and ignore unknown
fields (config.api.Body); answers list every field the views return."""

from __future__ import annotations

from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import AfterValidator

from config.api import Body

INT32 = {"ge": -(2**31), "le": 2**31 - 1}
TOKENS_MAX = 10**12
OUTPUT_TAIL_KEPT = 20_000
FAILING_TESTS_KEPT = 200
FAILING_TEST_CHARS = 500
DATE_TIME = {"json_schema_extra": {"format": "date-time"}}
EXAMPLE_DIFF = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hello')\n+print('hi')\n"


def _tail(text: str | None) -> str | None:
    return text[-OUTPUT_TAIL_KEPT:] if text else text


def _first_tests(tests: list[str] | None) -> list[str]:
    return [test[:FAILING_TEST_CHARS] for test in (tests or [])[:FAILING_TESTS_KEPT]]


# --- bodies ---------------------------------------------------------------------------------------------------


class StepProposal(Body):
    """A tool call the agent is about to make. Claude Code's `tool_name` and `tool_input` are accepted too."""

    tool: str | None = Field(
        None,
        max_length=200,
        description=(
            "Bash (input `command`), Write (`file_path`, `content`), Edit (`file_path`, `old_string`, `new_string`, "
            "`replace_all`), MultiEdit (`file_path`, `edits`), NotebookEdit (`notebook_path`), apply_patch (`patch`: "
            "a unified diff or Codex's `*** Begin Patch` format, or `changes`), read-only tools (Read, Grep…: always "
            "allowed); any other name (an MCP tool) is gated like a command."
        ),
        examples=["Bash", "Write", "Edit", "MultiEdit", "apply_patch", "mcp__github__create_pr"],
    )
    tool_name: str | None = Field(None, max_length=200, description="Claude Code's name for `tool`.")
    input: dict | None = Field(None, description="The tool's input.")
    tool_input: dict | None = Field(None, description="Claude Code's name for `input`.")
    cwd: str | None = Field(None, max_length=4000, description="Where the agent runs: inside the goal's repository.")
    session_id: str | None = Field(None, max_length=200)
    tool_use_id: str | None = Field(None, max_length=200)
    agent: str | None = Field(None, max_length=50, description="claude, codex or api (anything else counts as api).")


class Evidence(Body):
    """A check the agent ran. `exit_code` is required unless `timed_out` is true."""

    command: str | None = Field(None, max_length=10_000, description="The command; required unless `name` is given.")
    name: str | None = Field(None, max_length=200)
    exit_code: int | None = Field(None, **INT32)
    output_tail: Annotated[str | None, AfterValidator(_tail)] = Field(
        None, description=f"The end of the output: longer text keeps its last {OUTPUT_TAIL_KEPT:,} characters."
    )
    expected_exit: int = Field(0, **INT32)
    failing_tests: Annotated[list[str] | None, AfterValidator(_first_tests)] = Field(
        None,
        description=f"The first {FAILING_TESTS_KEPT} are kept, each cut to {FAILING_TEST_CHARS} characters.",
    )
    timed_out: bool = False
    tokens: int = Field(0, ge=0, le=TOKENS_MAX)


class Usage(Body):
    tokens: int = Field(..., ge=0, le=TOKENS_MAX, description="Tokens used since the last report.")


class DoneClaim(Body):
    """The agent says the goal is done, and in a few words what it did."""

    summary: str = Field(
        ..., min_length=1, max_length=4000, description="What the agent did and why it believes the goal is met."
    )


class RuleInput(Body):
    """`command_prefix`: a plain command (no shell operators) starting with these words is allowed where a gate
    would ask. `path`: a file change whose every path matches this glob is allowed where a gate would ask. A rule
    never lifts a deny."""

    kind: Literal["command_prefix", "path"]
    value: str = Field(..., max_length=1000, description="1 to 500 characters once its spaces are tidied.")


class Changes(Body):
    """The real change after a tool call: the working tree's diff against the last approved state."""

    diff: str = Field(
        ...,
        description=(
            "`git diff` of the working tree against the last approved state, new files included (as git shows them "
            "with --no-index or after `git add -N`); empty when nothing changed. Paths are relative to the "
            "repository: absolute paths, `..` and `.git/` are refused. At most the API's 1 MB body."
        ),
        examples=[EXAMPLE_DIFF],
    )
    source: str = Field(..., min_length=1, max_length=200, examples=["claude-code", "codex"])
    cwd: str = Field(..., min_length=1, max_length=4000, description="The repository's working tree (absolute).")
    session_id: str | None = Field(None, max_length=200)
    tool_use_id: str | None = Field(None, max_length=200)
    tool: str | None = Field(None, max_length=200, description="The tool whose call produced the change, e.g. Bash.")


class ClaudeHookInput(Body):
    """Claude Code's hook input, as its HTTP hook posts it (fields of other events are ignored)."""

    hook_event_name: str = Field(..., min_length=1, examples=["PreToolUse", "Notification", "Stop"])
    session_id: str | None = Field(None, max_length=200)
    cwd: str | None = Field(None, max_length=4000)
    tool_name: str | None = Field(None, max_length=200, description="PreToolUse: Bash, Write, Edit, MultiEdit, mcp__…")
    tool_input: dict | None = None
    tool_use_id: str | None = Field(None, max_length=200)
    message: str | None = Field(None, description="Notification: what Claude Code says.")
    notification_type: str | None = Field(None, max_length=50)
    stop_hook_active: bool | None = Field(
        None, description="Stop: true when a Stop hook already sent the agent back to work in this turn."
    )
    tool_response: dict | list | str | None = Field(None, description="PostToolUse: what the tool answered.")


# --- answers --------------------------------------------------------------------------------------------------


class Finding(Schema):
    gate: str
    severity: str
    reason: str
    path: str | None = None
    lines: list[str] = []
    kind: str = ""
    data: dict = {}


class RequestRef(Schema):
    id: int
    status: str
    decision_url: str


class StepVerdict(Schema):
    verdict: Literal["allow", "deny", "ask"]
    reason: str
    findings: list[Finding]
    call: int | None
    request: RequestRef | None
    joined: bool
    stop: bool


class ChangesVerdict(Schema):
    verdict: Literal["allow", "deny"]
    stop: bool = Field(..., description="The goal is stopped (or not running): the agent should stop.")
    reason: str
    findings: list[Finding]
    files: list[str] = Field(..., description="The files the diff changes.")
    request: RequestRef | None = Field(..., description="The stop request a deny opened (or the one it joined).")


class DoneReview(Schema):
    verdict: Literal["deny", "ask"] = Field(..., description="`ask`: the done review is open; `deny`: not now.")
    reason: str
    request: RequestRef | None
    joined: bool = Field(..., description="The done review was open already: this claim joined it.")
    stop: bool


class Decision(Schema):
    request: int
    goal: int
    status: Literal["pending", "approved", "rejected", "expired", "superseded"]
    decision: Literal["allow", "deny"] | None
    verdict: str | None
    stop: bool = Field(..., description="A person chose to stop the goal.")
    reason: str
    decided_by: str | None
    comment: str
    decided_at: str | None = Field(..., **DATE_TIME)


class EvidenceRecorded(Schema):
    id: int
    passed: bool
    failure_signature: str | None


class UsageRecorded(Schema):
    reported_tokens: int
    budget_tokens: int | None


class Heartbeat(Schema):
    goal: int
    status: str
    stop: bool
    reason: str


class Check(Schema):
    command: str
    expect_exit: int | None


class BaselineCheck(Schema):
    name: str
    command: str
    resolved: bool | None = Field(None, description="False: the command names nothing that runs in the sandbox.")
    passed: bool
    exit_code: int | None
    timed_out: bool
    failing_tests: list[str]
    summary: str
    message: str


class Baseline(Schema):
    """The goal's checks run once on its base branch before any agent work (POST /goals/<id>/check-evidence/)."""

    status: Literal["queued", "running", "done", "failed"]
    base_branch: str
    base_sha: str
    headline: str
    checked_at: str = Field(..., **DATE_TIME)
    error: str
    checks: list[BaselineCheck]


class Used(Schema):
    minutes: float
    steps: int
    tokens: int
    approvals: int


class Goal(Schema):
    id: int
    title: str
    objective: str
    constraints: list[str]
    done_criteria: str
    status: str
    risk: Literal["low", "medium", "high"]
    protected_paths: list[str]
    scope_paths: list[str]
    repository: str
    evidence: list[Check]
    baseline: Baseline | None
    budgets: dict[str, int | None]
    used: Used
    when_unanswered: Literal["deny", "ask"]


class Rule(Schema):
    id: int
    kind: Literal["command_prefix", "path"]
    value: str
    created_by: str | None
    created_at: str = Field(..., **DATE_TIME)
    revoked_at: str | None = Field(..., **DATE_TIME)


class Rules(Schema):
    rules: list[Rule]


class HookDecision(Schema):
    hookEventName: Literal["PreToolUse"]  # Claude Code's names, as it reads them
    permissionDecision: Literal["allow", "deny", "ask"]
    permissionDecisionReason: str


class ClaudeHookOutput(Schema):
    """PreToolUse: the decision (and `continue: false` when the agent must stop). Stop: `decision: "block"` with
    the `reason` that sends the agent back to work, or a `systemMessage` saying why it may stop. Other events:
    `{}`, or a `systemMessage` for the person when Goalpost refuses the token."""

    hookSpecificOutput: HookDecision | None = None
    decision: Literal["block"] | None = None
    reason: str | None = None
    continue_: bool | None = Field(None, alias="continue")
    stopReason: str | None = None
    systemMessage: str | None = None

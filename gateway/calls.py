"""The agent gateway: a tool call proposed by an agent running elsewhere → the managed loop's gates → a verdict.

A tool call is judged like a step of the loop, by the same `goals.gates.run_gates`: the files it writes become
a diff (built from the tool input and the file as it is in the goal's repository; a shell command's files are read
by a real shell parser, gateway/shell.py, and a command it cannot read asks on a goal with protected paths), the
checks the agent reported since the last approval become the step's evidence and history, and what the goal used
so far its usage. Blast radius counts the files touched since the last approval, not only this call's.

The verdict is `allow` (no gate asks), `deny` (a gate says stop: a protected path, a budget used up; or the goal
is not running, or the call writes outside the goal's repository) or `ask`: an approval request is opened for
the goal's people, and delivered to their phones by the existing signals. The same call retried joins the
request it opened instead of opening another, and picks up its answer once it is decided. Always-allow rules
turn an `ask` into an `allow`; they never lift a `deny`.
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import json
import logging
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from approvals.models import AGENT_LABELS, ApprovalRequest, RequestKind, RequestOrigin, RequestStatus, Verdict
from config.pubsub import channel_name
from gateway import shell
from gateway.models import AgentReport, AgentToken, GatewayCall, GatewayVerdict, RuleKind
from goals import gates, judge, repopaths
from goals.diffs import DiffError, DiffStats, FileDiff, ParsedDiff, classify_path, parse_diff
from goals.models import Goal, GoalStatus
from goals.workspace import branch_file_reader

log = logging.getLogger(__name__)

ALLOW, DENY, ASK = GatewayVerdict.ALLOW.value, GatewayVerdict.DENY.value, GatewayVerdict.ASK.value

# Tools that change nothing: never gated (a hook matcher usually keeps them away anyway).
READ_ONLY_TOOLS = frozenset(
    {
        "Read",
        "Glob",
        "Grep",
        "LS",
        "NotebookRead",
        "TodoRead",
        "TodoWrite",
        "WebSearch",
        "WebFetch",
        "Task",
        "ExitPlanMode",
        "BashOutput",
        "ListMcpResourcesTool",
        "ReadMcpResourceTool",
    }
)
SHELL_TOOLS = frozenset({"Bash", "shell", "local_shell", "exec_command", "command", "commandExecution"})
FILE_TOOLS = frozenset({"Write", "Edit", "MultiEdit", "NotebookEdit"})
PATCH_TOOLS = frozenset({"apply_patch", "ApplyPatch", "Patch", "patch", "fileChange"})

MAX_FILE_CHARS = 500_000  # a file larger than this is judged by its path only
MAX_DIFF_DETAIL = 50_000  # the diff kept on the approval request for the phone
MAX_INPUT_DETAIL = 4_000  # an MCP tool's input, as JSON, kept on the approval request
MAX_DIRECTORY_FILES = 200
REPORTED_CHECKS = 5  # a request keeps the last checks the agent reported before it asked
MAX_REPORTED_OUTPUT = 4_000  # a directory a command writes counts as its files, this many at most
# A done review approved makes the goal done from any state in which it still works.
DONE_FROM = (GoalStatus.RUNNING, GoalStatus.WAITING, GoalStatus.STALLED)
STOP_STATUSES = {
    GoalStatus.DRAFT: "The goal is a draft: mark it ready and start it on its page first.",
    GoalStatus.READY: "The goal has not started: start it on its page first.",
    GoalStatus.PAUSED: "The goal is paused: resume it on the phone or on its page, then try again.",
    GoalStatus.DONE: "The goal is done: it takes no more steps.",
    GoalStatus.FAILED: "The goal failed: it takes no more steps.",
    GoalStatus.CANCELLED: "The goal was cancelled: it takes no more steps.",
}
STALLED_REASON = "The goal is stalled: answer its stall request on the phone, then try again."


class BadToolCall(ValueError):
    """A tool call the gateway cannot read (a Write without a file_path…); the message says what is missing."""


@dataclass(frozen=True)
class ToolCall:
    """One tool call as an agent proposes it: the tool's name and input, where it runs, who asks."""

    tool: str
    input: dict
    cwd: str = ""
    session_id: str = ""
    tool_use_id: str = ""
    agent: str = "api"  # "claude", "codex" or "api"


@dataclass(frozen=True)
class Proposal:
    """What a tool call would do to the repository: run a command, write files (as a diff), or only read."""

    action: str  # "read", "command", "write" or "other"
    command: str = ""
    diff: ParsedDiff = field(default_factory=lambda: ParsedDiff(files=(), stats=DiffStats.of(())))
    diff_text: str = ""
    outside: tuple[str, ...] = ()  # paths a file tool writes outside the repository
    unreadable: str = ""  # why a shell command could not be read in full ("" when it could)

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(file.path for file in self.diff.files))


# --- reading a tool call (pure: no database) -----------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def repo_relative(raw: str, cwd: str, repo: Path) -> str | None:
    """The repository path a tool's path names (relative to cwd, else the repository), None when outside."""
    if not raw or "\x00" in raw:
        return None
    base = cwd or str(repo)
    absolute = os.path.realpath(os.path.join(os.path.expanduser(base), os.path.expanduser(raw)))
    root = os.path.realpath(repo)
    if absolute == root:
        return None
    if not absolute.startswith(root.rstrip(os.sep) + os.sep):
        return None
    return Path(os.path.relpath(absolute, root)).as_posix()


def inside_repo(cwd: str, repo: Path) -> bool:
    """Whether a working directory is the repository or a directory in it."""
    if not cwd:
        return True
    absolute, root = os.path.realpath(os.path.expanduser(cwd)), os.path.realpath(repo)
    return absolute == root or absolute.startswith(root.rstrip(os.sep) + os.sep)


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def unified_file_diff(path: str, old: str | None, new: str | None) -> str:
    """A git-style diff of one file from its old and new text (None: the file does not exist on that side)."""
    header = [f"diff --git a/{path} b/{path}\n"]
    if old is None:
        header += ["new file mode 100644\n", "--- /dev/null\n", f"+++ b/{path}\n"]
    elif new is None:
        header += ["deleted file mode 100644\n", f"--- a/{path}\n", "+++ /dev/null\n"]
    else:
        header += [f"--- a/{path}\n", f"+++ b/{path}\n"]
    if len(old or "") + len(new or "") > MAX_FILE_CHARS:
        return "".join(header)  # too large to diff quickly: judged by its path
    body = list(difflib.unified_diff(_lines(old or ""), _lines(new or ""), n=3))[2:]
    return "".join(header + body)


def _replacement_hunk(path: str, old_string: str, new_string: str, start: int = 1) -> str:
    """A diff of one edit when the file itself cannot be read: the replaced lines and their replacement."""
    old_lines, new_lines = _lines(old_string), _lines(new_string)
    old_start = start if old_lines else start - 1
    new_start = start if new_lines else start - 1
    hunk = [f"@@ -{old_start},{len(old_lines)} +{new_start},{len(new_lines)} @@\n"]
    hunk += ["-" + line for line in old_lines] + ["+" + line for line in new_lines]
    return "".join(hunk)


def _edits_diff(path: str, old: str | None, edits: list[tuple[str, str, bool]]) -> str:
    """The diff of a list of (old_string, new_string, replace_all) edits applied in order to a file."""
    if old is not None:
        new = old
        for old_string, new_string, replace_all in edits:
            if not old_string or old_string not in new:
                break
            new = new.replace(old_string, new_string, -1 if replace_all else 1)
        else:
            return unified_file_diff(path, old, new)
    header = f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
    hunks, line = [], 1
    for old_string, new_string, _ in edits:
        hunks.append(_replacement_hunk(path, old_string, new_string, line))
        line += max(1, len(_lines(old_string))) + 1
    return header + "".join(hunks)


def read_repo_text(repo: Path, path: str) -> str | None:
    """A repository file's text, None when it is missing, binary or too large to diff."""
    target = repo / path
    try:
        if not target.is_file() or target.stat().st_size > MAX_FILE_CHARS:
            return None
        data = target.read_bytes()
    except OSError:
        return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def command_writes(command: str) -> list[str]:
    """The paths a shell command visibly writes (gateway/shell.py parses it with tree-sitter-bash)."""
    return shell.command_writes(command)


def _expand_directories(paths: list[str], repo: Path) -> list[str]:
    """A directory a command writes (`rm -rf build/`) stands for the files in it, and a glob (`rm *.log`) for
    the files it matches, up to a bound; a pattern that matches nothing stays a pattern for the gates."""
    expanded: list[str] = []
    for path in paths:
        if shell.has_glob(path):
            matches = sorted(glob.glob(path, root_dir=repo))[:MAX_DIRECTORY_FILES]
            expanded += [Path(match).as_posix() for match in matches] or [path]
            continue
        directory = repo / path
        if not directory.is_dir():
            expanded.append(path)
            continue
        files = []
        for root, dirs, names in os.walk(directory):
            dirs[:] = sorted(name for name in dirs if name != ".git")
            files += [Path(root, name).relative_to(repo).as_posix() for name in sorted(names)]
            if len(files) >= MAX_DIRECTORY_FILES:
                break
        expanded += files[:MAX_DIRECTORY_FILES] or [path]
    return expanded


def _shell_command(tool_input: dict) -> str:
    """The command as a script: a string as it is; argv (Codex) as its `bash -lc` script, else its words quoted."""
    command = tool_input.get("command")
    if isinstance(command, list) and command and all(isinstance(word, str) for word in command):
        return shell.argv_script(command) or shlex.join(command)
    if isinstance(command, str) and command.strip():
        return command
    raise BadToolCall("A shell tool call needs `command` (a string or a list of words).")


PATCH_MARKERS = (("*** Add File: ", "add"), ("*** Update File: ", "update"), ("*** Delete File: ", "delete"))


def _codex_patch_to_unified(patch: str) -> str:
    """Codex's `*** Begin Patch` format as a unified diff (paths as written, hunks without line numbers)."""
    out: list[str] = []
    path = kind = None
    body: list[str] = []

    def flush() -> None:
        if path is None:
            return
        if kind == "add":
            out.append(f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n")
            lines = [line[1:] if line.startswith("+") else line for line in body]
            if lines:
                out.append(f"@@ -0,0 +1,{len(lines)} @@\n" + "".join("+" + line + "\n" for line in lines))
        elif kind == "delete":
            out.append(f"diff --git a/{path} b/{path}\ndeleted file mode 100644\n--- a/{path}\n+++ /dev/null\n")
        else:
            out.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n")
            changed = [line for line in body if line[:1] in ("+", "-", " ")]
            if changed:
                old = sum(1 for line in changed if line[:1] in ("-", " "))
                new = sum(1 for line in changed if line[:1] in ("+", " "))
                out.append(f"@@ -1,{old} +1,{new} @@\n" + "".join(line + "\n" for line in changed))

    for line in patch.splitlines():
        for marker, new_kind in PATCH_MARKERS:
            if line.startswith(marker):
                flush()
                path, kind, body = line[len(marker) :].strip(), new_kind, []
                break
        else:
            if line.startswith("*** Move to: ") and path is not None:
                flush()  # judged as a change to both paths
                path, kind, body = line[len("*** Move to: ") :].strip(), "add", []
            elif path is not None and not line.startswith(("*** ", "@@")):
                body.append(line)
    flush()
    return "".join(out)


def _codex_changes_to_unified(changes: object) -> str:
    """Codex app-server file changes (v2 `[{path, kind, diff}]` or the older `{path: {add|update|delete}}`)."""
    texts: list[str] = []
    entries: list[tuple[str, str, str]] = []  # (path, kind, text)
    if isinstance(changes, list):
        for change in changes:
            if not isinstance(change, dict):
                continue
            kind = change.get("kind")
            kind = kind.get("type") if isinstance(kind, dict) else kind
            entries.append((_text(change.get("path")), _text(kind) or "update", _text(change.get("diff"))))
    elif isinstance(changes, dict):
        for path, change in changes.items():
            if not isinstance(change, dict):
                continue
            if "type" in change:
                kind, detail = _text(change.get("type")), change
            else:
                kind = next((key for key in ("add", "update", "delete") if key in change), "update")
                detail = change.get(kind) if isinstance(change.get(kind), dict) else {}
            text = _text(detail.get("unified_diff")) or _text(detail.get("content")) or _text(detail.get("diff"))
            entries.append((_text(path), kind, text))
    for path, kind, text in entries:
        if not path:
            continue
        if kind == "add":
            texts.append(unified_file_diff(path, None, text))
        elif kind == "delete":
            texts.append(unified_file_diff(path, text, None))
        elif text.lstrip().startswith(("---", "diff --git")):
            texts.append(text if text.endswith("\n") else text + "\n")
        else:
            hunks = text if text.lstrip().startswith("@@") else ""
            texts.append(f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n{hunks}")
            if hunks and not hunks.endswith("\n"):
                texts.append("\n")
    return "".join(texts)


def _relocate(diff: ParsedDiff, cwd: str, repo: Path) -> tuple[list[FileDiff], list[str]]:
    """The diff's files with paths made relative to the repository; paths outside it listed apart."""
    inside, outside = [], []
    for file in diff.files:
        path = repo_relative(file.path, cwd, repo)
        old_path = repo_relative(file.old_path, cwd, repo) if file.old_path else None
        if path is None or (file.old_path and old_path is None):
            outside.append(file.path)
            continue
        inside.append(replace(file, path=path, old_path=old_path, category=classify_path(path)))
    return inside, outside


def _parse_or_touch(text: str, paths: list[str]) -> ParsedDiff:
    try:
        parsed = parse_diff(text)
    except DiffError:
        return ParsedDiff.of([FileDiff.by_path(path) for path in paths])
    found = {file.path for file in parsed.files}
    return ParsedDiff.of([*parsed.files, *(FileDiff.by_path(path) for path in paths if path not in found)])


def describe(call: ToolCall, repo: Path, read_text: Callable[[str], str | None] | None = None) -> Proposal:
    """What the tool call would do to the goal's repository. Raises BadToolCall for an input it cannot read."""
    read = read_text or partial(read_repo_text, repo)
    tool, tool_input = call.tool, call.input
    if tool in READ_ONLY_TOOLS:
        return Proposal(action="read")
    if tool in SHELL_TOOLS:
        command = _shell_command(tool_input)
        reading = shell.read_command(command)
        paths = [path for raw in reading.writes if (path := repo_relative(raw, call.cwd, repo))]
        touched = [FileDiff.by_path(path) for path in dict.fromkeys(_expand_directories(paths, repo))]
        return Proposal(action="command", command=command, diff=ParsedDiff.of(touched), unreadable=reading.unreadable)
    if tool in FILE_TOOLS:
        raw = _text(tool_input.get("file_path")) or _text(tool_input.get("notebook_path"))
        if not raw:
            raise BadToolCall(f"A {tool} tool call needs `file_path`.")
        path = repo_relative(raw, call.cwd, repo)
        if path is None:
            return Proposal(action="write", outside=(raw,))
        old = read(path)
        if tool == "Write":
            if not isinstance(tool_input.get("content"), str):
                raise BadToolCall("A Write tool call needs `content` (a string).")
            text = unified_file_diff(path, old, tool_input["content"])
        elif tool == "Edit":
            text = _edits_diff(path, old, [_edit(tool_input)])
        elif tool == "MultiEdit":
            edits = tool_input.get("edits")
            if not isinstance(edits, list) or not edits or not all(isinstance(edit, dict) for edit in edits):
                raise BadToolCall("A MultiEdit tool call needs `edits`: a list of {old_string, new_string}.")
            text = _edits_diff(path, old, [_edit(edit) for edit in edits])
        else:  # NotebookEdit: cells are JSON; the path is what the gates need
            return Proposal(action="write", diff=ParsedDiff.of([FileDiff.by_path(path)]))
        return Proposal(action="write", diff=_parse_or_touch(text, [path]), diff_text=text)
    if tool in PATCH_TOOLS:
        patch = _text(tool_input.get("patch")) or _text(tool_input.get("input")) or _text(tool_input.get("diff"))
        changes = tool_input.get("changes") or tool_input.get("fileChanges")
        if patch.lstrip().startswith("*** Begin Patch"):
            patch = _codex_patch_to_unified(patch)
        elif not patch and changes:
            patch = _codex_changes_to_unified(changes)
        if not patch.strip():
            raise BadToolCall(f"A {tool} tool call needs `patch` (a unified diff) or `changes`.")
        try:
            parsed = parse_diff(patch)
        except DiffError as error:
            raise BadToolCall(f"The patch is not a diff the gates can read: {error}") from error
        inside, outside = _relocate(parsed, call.cwd, repo)
        return Proposal(action="write", diff=ParsedDiff.of(inside), diff_text=patch, outside=tuple(outside))
    return Proposal(action="other")


def _edit(edit: dict) -> tuple[str, str, bool]:
    old_string, new_string = edit.get("old_string"), edit.get("new_string")
    if not isinstance(old_string, str) or not isinstance(new_string, str):
        raise BadToolCall("An edit needs `old_string` and `new_string` (strings).")
    return old_string, new_string, bool(edit.get("replace_all"))


def call_key(call: ToolCall, repo: Path) -> str:
    """The same tool call, however often retried, has the same key (its id changes between retries)."""
    cwd = os.path.realpath(os.path.expanduser(call.cwd)) if call.cwd else os.path.realpath(repo)
    blob = json.dumps([call.tool, call.input, cwd], sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8", errors="replace")).hexdigest()


def _simple_command(command: str) -> list[str] | None:
    """The words of a command with no shell operators, expansions or redirections; None for anything else."""
    return shell.simple_words(command)


def rule_allows(kind: str, value: str, proposal: Proposal) -> bool:
    """Whether one always-allow rule covers the call: a simple command that starts with the prefix's words,
    or a file change whose every path matches the glob."""
    if kind == RuleKind.COMMAND_PREFIX:
        words, prefix = _simple_command(proposal.command), _simple_command(value)
        return bool(proposal.action == "command" and words and prefix and words[: len(prefix)] == prefix)
    if kind == RuleKind.PATH:
        paths = proposal.paths
        return bool(proposal.action == "write" and paths and all(gates.matches_glob(p, value) for p in paths))
    return False


# --- judging a call (the database) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """The gateway's answer to one proposed call."""

    verdict: str  # allow, deny or ask
    reason: str
    call: GatewayCall | None = None
    request: ApprovalRequest | None = None
    findings: tuple[dict, ...] = ()
    joined: bool = False  # the call joined a request an earlier identical call opened
    stop: bool = False  # the agent should stop altogether: the goal is not running, or a person said stop

    def as_dict(self) -> dict:
        request = self.request
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "findings": list(self.findings),
            "call": self.call.pk if self.call else None,
            "request": (
                {
                    "id": request.pk,
                    "status": request.status,
                    "decision_url": f"/api/v1/requests/{request.pk}/decision",
                }
                if request
                else None
            ),
            "joined": self.joined,
            "stop": self.stop,
        }


def last_approval_at(goal: Goal) -> datetime | None:
    """When a person last approved something for the goal: blast radius and failure streaks count from there."""
    return goal.approval_requests.filter(status=RequestStatus.APPROVED).aggregate(at=Max("decided_at"))["at"]


def _since(queryset, when: datetime | None):
    return queryset.filter(created_at__gt=when) if when else queryset


def touched_since(goal: Goal, when: datetime | None) -> list[str]:
    """Repository paths the goal's allowed calls wrote since `when` (all of them for None)."""
    calls = _since(goal.gateway_calls.filter(verdict=ALLOW), when)
    return sorted({path for paths in calls.values_list("paths", flat=True) for path in paths or ()})


def evidence_result(report: AgentReport) -> gates.EvidenceResult:
    return gates.EvidenceResult(
        name=report.name or report.command[:60] or "evidence",
        command=report.command,
        exit_code=report.exit_code,
        expected_exit=report.expected_exit,
        passed=bool(report.passed),
        failing_tests=tuple(str(test) for test in report.failing_tests or ()),
        output_tail=report.output_tail,
        timed_out=report.timed_out,
    )


def gate_inputs(goal: Goal, proposal: Proposal) -> tuple[gates.Step, gates.History, gates.Usage, gates.Step]:
    """The gates' inputs for one call: (the call as a step, history, usage, the files since the last approval
    as a step for the blast radius)."""

    since = last_approval_at(goal)
    reports = list(_since(goal.agent_reports.filter(passed__isnull=False), since).order_by("created_at", "id")[:200])
    latest = reports[-1:]
    earlier = reports[:-1]
    managed = goal.step_history(2**31)
    history = gates.History(
        failure_signatures=tuple(report.failure_signature or None for report in earlier),
        attempts=tuple(f"{report.command or report.name} → exit {report.exit_code}"[:200] for report in earlier),
        touched_paths=tuple(sorted(set(managed.touched_paths) | set(goal.reported_paths or ()))),
    )
    usage = judge.usage(goal)
    step = gates.Step(diff=proposal.diff, evidence=tuple(evidence_result(report) for report in latest))
    # A call that writes nothing adds nothing to the blast radius, whatever came before it.
    touched = touched_since(goal, since) if proposal.paths else []
    cumulative = [FileDiff.by_path(path) for path in touched if path not in proposal.paths]
    radius = gates.Step(diff=ParsedDiff.of([*proposal.diff.files, *cumulative]))
    return step, history, usage, radius


def unreadable_findings(goal: Goal, proposal: Proposal) -> list[gates.GateFinding]:
    """A command the parser cannot read, on a goal with protected paths, asks a person: it might write one.

    Without protected paths it goes on as any command does (its real diff is still judged after the fact).
    """
    if not proposal.unreadable or not goal.contract().protected_paths:
        return []
    return [
        gates.GateFinding(
            gate="protected_path",
            severity=gates.APPROVAL,
            reason=f"Cannot tell which files the command writes ({proposal.unreadable})"[: gates.REASON_LIMIT],
            data={"why": "unreadable", "unreadable": proposal.unreadable},
        )
    ]


def run_gates_for(goal: Goal, proposal: Proposal) -> list[gates.GateFinding]:
    """The judge's gates over one call; blast radius over the files touched since the last approval."""
    step, history, usage, radius = gate_inputs(goal, proposal)
    file_head = partial(_file_head, Path(goal.repository.source))
    extra = unreadable_findings(goal, proposal)
    return judge.judge(
        goal, step, history=history, usage=usage, file_head=file_head, radius=radius, extra=extra,
        paths=path_rules(goal),
    )  # fmt: skip


def path_rules(goal: Goal) -> repopaths.RepoPaths:
    """The goal's path rules. An agent elsewhere writes into the registered repository's worktree, so detection
    reads the base branch as committed, once, at the goal's first judged call: what the agent writes afterwards
    (a .gitattributes marking tests generated, a new pytest testpaths) never changes its goal's rules."""
    repository = goal.repository
    if "rules" not in (goal.detected_paths or {}) and not repository.is_url:
        rules = repopaths.detect(branch_file_reader(repository.source, goal.base_branch))
        goal.detected_paths = {"sha": "", "branch": goal.base_branch, "rules": rules.as_dict()}
        Goal.objects.filter(pk=goal.pk).update(detected_paths=goal.detected_paths)
    return goal.path_rules()


def _file_head(repo: Path, path: str) -> str:
    return (read_repo_text(repo, path) or "")[:2048]


def _summary(call: ToolCall, proposal: Proposal, token: AgentToken | None) -> str:
    who = AGENT_LABELS.get(call.agent) or (token.name if token else "") or "An agent"
    if proposal.action == "command":
        return f"{who} wants to run: {' '.join(proposal.command.split())}"[:500]
    if proposal.action == "write" and proposal.paths:
        more = len(proposal.paths) - 3
        shown = ", ".join(proposal.paths[:3]) + (f" and {more} more" if more > 0 else "")
        return f"{who} wants to change {shown} ({proposal.diff.summary_line()})"[:500]
    return f"{who} wants to use {call.tool}"[:500]


def record_call(
    goal, token, call, key, proposal, verdict, reason, findings, request=None, summary="", paths=None
) -> GatewayCall:
    """The gateway's record of one call: a proposed tool call (its proposal's paths), or the real changes reported
    after one (`paths`)."""
    return GatewayCall.objects.create(
        goal=goal,
        token=token,
        agent=call.agent[:20],
        session_id=call.session_id[:200],
        tool_use_id=call.tool_use_id[:200],
        tool_name=call.tool[:200],
        call_key=key,
        summary=summary[:500],
        paths=list(paths if paths is not None else proposal.paths if proposal else []),
        findings=list(findings),
        verdict=verdict,
        reason=reason[:1000],
        request=request,
    )


def goal_state_refusal(goal: Goal) -> tuple[str, bool] | None:
    """(reason, stop) when the goal takes no step now, None when it does."""
    if goal.status in STOP_STATUSES:
        return STOP_STATUSES[goal.status], True
    if goal.status == GoalStatus.STALLED:
        return STALLED_REASON, False
    return None


def propose(goal: Goal, call: ToolCall, token: AgentToken | None = None) -> Outcome:
    """Judge one tool call for the goal. Raises BadToolCall for a call it cannot read."""
    # An agent running elsewhere works in the repository's registered path (its source, on that machine).
    repo = Path(goal.repository.source)
    key = call_key(call, repo)
    judge.progress(goal)
    refusal = goal_state_refusal(goal)
    if refusal is not None:
        reason, stop = refusal
        recorded = record_call(goal, token, call, key, None, DENY, reason, ())
        return Outcome(DENY, reason, recorded, stop=stop)
    if not inside_repo(call.cwd, repo):
        reason = f"The agent works in {call.cwd}, outside the goal's repository {goal.repository.source}."
        return Outcome(DENY, reason, record_call(goal, token, call, key, None, DENY, reason, ()))
    proposal = describe(call, repo)
    if proposal.outside:
        reason = f"The call writes outside the goal's repository: {', '.join(proposal.outside[:3])}."
        return Outcome(DENY, reason, record_call(goal, token, call, key, proposal, DENY, reason, ()))
    joined = _join(goal, key)
    if joined is not None:
        return joined
    judge.started(goal)
    summary = _summary(call, proposal, token)
    if proposal.action == "read":
        return Outcome(ALLOW, "Reading changes nothing.", record_call(goal, token, call, key, proposal, ALLOW, "", ()))
    findings = run_gates_for(goal, proposal)
    as_dicts = tuple(finding.as_dict() for finding in findings)
    stops = [finding for finding in findings if finding.severity == gates.STOP]
    if stops:
        reason = "; ".join(finding.reason for finding in stops)
        recorded = record_call(goal, token, call, key, proposal, DENY, reason, as_dicts, summary=summary)
        return Outcome(DENY, reason, recorded, findings=as_dicts, stop=any(f.gate == "budget" for f in stops))
    asking = [finding for finding in findings if finding.severity == gates.APPROVAL]
    if not asking:
        recorded = record_call(goal, token, call, key, proposal, ALLOW, "No gate fired.", as_dicts, summary=summary)
        judge.record_paths(goal, proposal.paths)
        return Outcome(ALLOW, "No gate fired.", recorded, findings=as_dicts)
    # An always-allow rule never covers a command that may write a protected path (`git checkout main`).
    unreadable = any(finding.data.get("why") == "unreadable" for finding in asking)
    rules = () if unreadable else goal.always_allow_rules.active()
    rule = next((rule for rule in rules if rule_allows(rule.kind, rule.value, proposal)), None)
    if rule is not None:
        reason = f"Always allowed by the goal's rule: {rule}."
        recorded = record_call(goal, token, call, key, proposal, ALLOW, reason, as_dicts, summary=summary)
        judge.record_paths(goal, proposal.paths)
        return Outcome(ALLOW, reason, recorded, findings=as_dicts)
    return _ask(goal, token, call, key, proposal, findings, summary)


def _ask(goal, token, call, key, proposal, findings, summary) -> Outcome:
    as_dicts = tuple(finding.as_dict() for finding in findings)
    reasons = "; ".join(finding.reason for finding in findings if finding.severity == gates.APPROVAL)
    details = {
        "agent": call.agent,
        "agent_name": token.name if token else "",
        "tool": call.tool,
        "tool_use_id": call.tool_use_id,
        "command": proposal.command,
        # A tool that is neither a command nor a file change (an MCP tool): its input is what a person judges.
        "input": _input_text(call.input) if proposal.action == "other" else "",
        "paths": list(proposal.paths),
        "cwd": call.cwd,
        "session_id": call.session_id,
    }
    with transaction.atomic():
        # A gateway request never moves the goal to waiting: the agent runs elsewhere and waits on its own.
        request = judge.open_request(
            goal,
            findings,
            kind=RequestKind.STEP,
            summary=f"{summary}. {reasons}",
            details=details,
            origin=RequestOrigin.GATEWAY,
            diff=_diff_detail(proposal.diff_text),
            diff_truncated=len(proposal.diff_text) > MAX_DIFF_DETAIL,
            evidence=reported_checks(goal),
        )
        recorded = record_call(goal, token, call, key, proposal, ASK, reasons, as_dicts, request, summary)
    reason = f"Waiting for a decision on the phone (request #{request.pk}): {reasons}"
    return Outcome(ASK, reason, recorded, request, as_dicts)


def reported_checks(goal: Goal) -> list[dict]:
    """The last checks the agent reported, oldest first: the evidence a person sees beside its request."""
    reports = goal.agent_reports.filter(passed__isnull=False).order_by("-created_at", "-id")[:REPORTED_CHECKS]
    return [
        {
            "name": report.name or report.command or "check",
            "command": report.command,
            "passed": bool(report.passed),
            "timed_out": report.timed_out,
            "exit_code": report.exit_code,
            "expected_exit": report.expected_exit,
            "failing_tests": list(report.failing_tests or []),
            "output_tail": report.output_tail[-MAX_REPORTED_OUTPUT:],
            "output_cut": len(report.output_tail) > MAX_REPORTED_OUTPUT,
        }
        for report in reversed(reports)
    ]


def _diff_detail(text: str) -> str:
    """The diff kept for the phone: whole files only, so a cut diff still parses."""
    if len(text) <= MAX_DIFF_DETAIL:
        return text
    cut = text.rfind("\ndiff --git ", 0, MAX_DIFF_DETAIL)
    return text[: cut + 1] if cut > 0 else text[:MAX_DIFF_DETAIL]


def _input_text(tool_input: dict) -> str:
    text = json.dumps(tool_input, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text[:MAX_INPUT_DETAIL] + ("\n…" if len(text) > MAX_INPUT_DETAIL else "")


def _join(goal: Goal, key: str) -> Outcome | None:
    """The same call retried: wait on the request it opened, or take its answer once it is decided."""
    earlier = (
        goal.gateway_calls.filter(call_key=key, request__isnull=False, consumed_at__isnull=True)
        .select_related("request")
        .order_by("-created_at", "-id")
        .first()
    )
    if earlier is None or earlier.request.status == RequestStatus.SUPERSEDED:
        return None
    outcome = request_outcome(earlier.request_id)
    if outcome is None or outcome.status == RequestStatus.SUPERSEDED:
        return None
    request = ApprovalRequest.objects.get(pk=earlier.request_id)
    if not outcome.settled:
        reason = f"Still waiting for a decision on the phone (request #{request.pk})."
        return Outcome(ASK, reason, earlier, request, tuple(earlier.findings), joined=True)
    consume(earlier.request_id)
    decision = outcome.decision or DENY
    return Outcome(decision, outcome.reason, earlier, request, tuple(earlier.findings), joined=True, stop=outcome.stop)


def consume(request_id: int) -> None:
    """The decided answer reached the agent: the next identical call is judged afresh."""
    GatewayCall.objects.filter(request_id=request_id, consumed_at__isnull=True).update(consumed_at=timezone.now())


# --- what became of a request ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestOutcome:
    """A request's state as an agent reads it: pending, or decided as allow or deny, with who and why."""

    request_id: int
    goal_id: int
    status: str
    decision: str | None  # "allow", "deny", None while pending
    verdict: str | None  # the deciding person's verdict: approve, reject, stop, extend
    stop: bool
    reason: str
    decided_by: str | None = None
    comment: str = ""
    decided_at: datetime | None = None
    expires_at: datetime | None = None  # a pending request's; not part of the answer

    @property
    def settled(self) -> bool:
        return self.status != RequestStatus.PENDING

    @classmethod
    def from_dict(cls, answer: dict) -> RequestOutcome:
        """The outcome back from `as_dict` (as published to the waiting agents' processes)."""
        decided_at = answer.get("decided_at")
        return cls(
            int(answer["request"]),
            int(answer["goal"]),
            str(answer["status"]),
            answer.get("decision"),
            answer.get("verdict"),
            bool(answer.get("stop")),
            str(answer.get("reason") or ""),
            answer.get("decided_by"),
            str(answer.get("comment") or ""),
            datetime.fromisoformat(decided_at) if decided_at else None,
        )

    def as_dict(self) -> dict:
        return {
            "request": self.request_id,
            "goal": self.goal_id,
            "status": self.status,
            "decision": self.decision,
            "verdict": self.verdict,
            "stop": self.stop,
            "reason": self.reason,
            "decided_by": self.decided_by,
            "comment": self.comment,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
        }


def request_outcome(request_id: int) -> RequestOutcome | None:
    """The request's state; an overdue pending request is expired by the goal's rule first."""
    request = ApprovalRequest.objects.filter(pk=request_id).first()
    if request is None:
        return None
    if request.is_pending and request.expires_at <= timezone.now():
        request.expire()
        request.refresh_from_db()
    if request.is_pending:
        return RequestOutcome(
            request.pk, request.goal_id, request.status, None, None, False, "Waiting for a decision.",
            expires_at=request.expires_at,
        )
    decision = request.decisions.select_related("user").order_by("-created_at", "-id").first()
    who = decision.user.get_username() if decision and decision.user else None
    comment = decision.comment if decision else ""
    decided = request.status in (RequestStatus.APPROVED, RequestStatus.REJECTED)
    verdict = decision.verdict if decision and decided else None
    said = f": {comment}" if comment else "."
    if request.status == RequestStatus.APPROVED:
        decision_text, stop, reason = ALLOW, False, f"Approved on the phone by {who or 'someone'}{said}"
    elif request.status == RequestStatus.REJECTED and verdict == Verdict.STOP:
        decision_text, stop = DENY, True
        reason = f"Stopped on the phone by {who or 'someone'}: the goal is paused{said if comment else '.'}"
    elif request.status == RequestStatus.REJECTED:
        decision_text, stop, reason = DENY, False, f"Rejected on the phone by {who or 'someone'}{said}"
    elif request.status == RequestStatus.EXPIRED:
        decision_text, stop = DENY, False
        reason = "Nobody answered in time: the request expired, which denies it."
    else:
        decision_text, stop = DENY, False
        reason = "A newer request replaced this one: propose the call again."
    return RequestOutcome(
        request.pk,
        request.goal_id,
        request.status,
        decision_text,
        verdict,
        stop,
        reason,
        who,
        comment,
        request.decided_at,
    )


# --- telling the waiting agents ------------------------------------------------------------------------------


def settled_channel() -> str:
    """The Redis channel of settled requests, under the channel layer's prefix (GOALPOST_CHANNEL_PREFIX), so the
    processes that share the websocket layer (daphnes, workers, a shell deciding) share this channel too."""
    return channel_name("gateway:settled")


_redis_client = None


def publish_settled(request_id: int) -> bool:
    """Wake the agents waiting on the request: one message, read once per process, carrying the outcome, so no
    waiter reads the database for it. Best effort: a process that missed it reads the database when it resubscribes."""
    global _redis_client
    try:
        import redis

        outcome = request_outcome(request_id)
        message = {"request": request_id, "outcome": outcome.as_dict() if outcome and outcome.settled else None}
        if _redis_client is None:
            _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        _redis_client.publish(settled_channel(), json.dumps(message))
    except Exception:
        log.warning("could not publish the outcome of request %s", request_id, exc_info=True)
        return False
    return True


def announce_settled(sender, request: ApprovalRequest, **kwargs) -> None:
    transaction.on_commit(partial(publish_settled, request.pk), robust=True)


def count_approved_call(sender, request: ApprovalRequest, **kwargs) -> None:
    """A tool call approved on the phone writes its files: they count in the goal's usage from now."""
    if request.from_gateway and request.status == RequestStatus.APPROVED:
        paths = request.details.get("paths") if isinstance(request.details, dict) else None
        judge.record_paths(request.goal, [str(path) for path in paths or () if isinstance(path, str)])


def claim_done(goal: Goal, token: AgentToken | None, summary: str) -> Outcome:
    """The agent says the goal is done: open the done review, the owner's final word (or join the one open).

    Only a person makes a goal done: the agent's word opens the request and nothing else. Its page carries the
    checks the agent reported, so the owner sees what is still failing before saying yes."""
    judge.progress(goal)
    refusal = goal_state_refusal(goal)
    if refusal is not None:
        reason, stop = refusal
        return Outcome(DENY, reason, stop=stop)
    open_review = _pending_done_request(goal)
    if open_review is not None:
        reason = f"The done review is open already (request #{open_review.pk}): wait for it."
        return Outcome(ASK, reason, request=open_review, joined=True)
    agent = token.name if token else "The agent"
    request = open_done_review(goal, token, f"{agent} says the goal is done: {summary}", summary=summary)
    reason = f"Waiting for the owner's final word on the phone (request #{request.pk})."
    return Outcome(ASK, reason, request=request)


def open_done_review(goal: Goal, token: AgentToken | None, title: str, **details: str) -> ApprovalRequest:
    """The done review an agent elsewhere asks for (the bridge's claim, Claude Code's Stop hook): the owner's final
    word, with the checks the agent reported on its page. Only a person makes a goal done."""
    checks = reported_checks(goal)
    comparison = goal.done_comparison(_latest_runs(goal))
    extra = {"baseline": comparison} if comparison else {}
    with transaction.atomic():
        return judge.open_request(
            goal,
            (),
            kind=RequestKind.DONE,
            summary=title[:500],
            details={"agent_name": token.name if token else "", **details, **extra},
            origin=RequestOrigin.GATEWAY,
            evidence=checks,
        )


def _latest_runs(goal: Goal) -> list[dict]:
    """The goal's command checks as the agent last reported each (one never reported counts as failing): the
    "after" of the done review's comparison with the baseline."""
    commands = [str(check.get("command") or "") for check in contract_checks(goal)]
    reports = last_reports(goal, commands)
    return [
        {
            "command": command,
            "name": command,
            "passed": bool(reports[command].passed) if command in reports else False,
            "failing_tests": list(reports[command].failing_tests or []) if command in reports else [],
        }
        for command in commands
    ]


def finish_done_review(sender, request: ApprovalRequest, decision, **kwargs) -> None:
    """A done review an agent asked for, approved: the goal is done (the managed loop does this for its own)."""
    if request.from_gateway and request.kind == RequestKind.DONE and request.status == RequestStatus.APPROVED:
        Goal.objects.get(pk=request.goal_id).set_status(
            GoalStatus.DONE, None, "Done: the final word was yes.", only_from=DONE_FROM
        )


# --- what agents report -------------------------------------------------------------------------------------


def record_evidence(
    goal: Goal,
    token: AgentToken | None,
    *,
    command: str,
    exit_code: int | None,
    output_tail: str = "",
    name: str = "",
    expected_exit: int = 0,
    failing_tests: tuple[str, ...] = (),
    timed_out: bool = False,
    tokens: int = 0,
) -> AgentReport:
    """Keep a check the agent ran; its failure signature feeds the repeated-failure gate."""
    passed = exit_code == expected_exit and not timed_out
    result = gates.EvidenceResult(
        name=name or command[:60],
        command=command,
        exit_code=exit_code,
        expected_exit=expected_exit,
        passed=passed,
        failing_tests=failing_tests,
        output_tail=output_tail,
        timed_out=timed_out,
    )
    signature = gates.failure_signature([result]) or ""
    with transaction.atomic():
        report = AgentReport.objects.create(
            goal=goal,
            token=token,
            name=name[:200],
            command=command,
            exit_code=exit_code,
            expected_exit=expected_exit,
            passed=passed,
            timed_out=timed_out,
            failing_tests=list(failing_tests),
            output_tail=output_tail,
            failure_signature=signature[:500],
            tokens=tokens,
        )
        if tokens:
            judge.record_tokens(goal, tokens)
        else:
            judge.progress(goal)
        outcome = "passed" if passed else f"failed (exit {exit_code})" if not timed_out else "timed out"
        goal.record("evidence", f"Agent check {outcome}: {command or name}"[:500], report=report.pk)
    return report


def record_usage(goal: Goal, token: AgentToken | None, tokens: int) -> int:
    """Add tokens the agent used; returns the goal's reported total."""
    with transaction.atomic():
        AgentReport.objects.create(goal=goal, token=token, name="usage", tokens=tokens)
        return judge.record_tokens(goal, tokens)


def heartbeat(goal: Goal) -> None:
    """The agent is alive and working: the stall detector counts from now."""
    judge.progress(goal)


# --- the Stop hook: an agent elsewhere keeps going until its goal is done ---------------------------------------

MAX_STOP_OUTPUT = 1_500  # the end of a failing check's output, in the reason that sends the agent back to work


@dataclass(frozen=True)
class StopAnswer:
    """What Goalpost says when an agent elsewhere wants to stop: `block` sends it back to work with `reason`."""

    block: bool
    reason: str
    request: ApprovalRequest | None = None


def contract_checks(goal: Goal) -> list[dict]:
    """The goal's command checks (its evidence): what has to pass before the goal can be done."""
    return [check for check in goal.evidence if isinstance(check, dict) and check.get("kind") == "command"]


def last_reports(goal: Goal, commands: list[str]) -> dict[str, AgentReport]:
    """The agent's latest report for each of these commands (a check it never reported is missing)."""
    latest: dict[str, AgentReport] = {}
    for report in goal.agent_reports.filter(command__in=commands, passed__isnull=False).order_by("-created_at", "-id"):
        latest.setdefault(report.command, report)
    return latest


def failing_evidence(goal: Goal) -> list[str]:
    """One line per check of the goal that has not passed yet: never reported, or failing as last reported."""
    checks = contract_checks(goal)
    reports = last_reports(goal, [check.get("command", "") for check in checks])
    lines = []
    for check in checks:
        command = check.get("command", "")
        report = reports.get(command)
        if report is None:
            lines.append(f"`{command}` has not been reported yet: run it and report its result.")
        elif not report.passed:
            what = "timed out" if report.timed_out else f"exited {report.exit_code} (expected {report.expected_exit})"
            line = f"`{command}` {what}"
            if report.failing_tests:
                line += f"; failing: {', '.join(report.failing_tests[:10])}"
            tail = report.output_tail[-MAX_STOP_OUTPUT:].strip()
            lines.append(f"{line}; its output ended:\n{tail}" if tail else line)
    return lines


def budget_left(goal: Goal) -> str:
    """The goal's bounded budgets and what is left of each, e.g. "tokens 38,000 of 50,000; minutes 41 of 60"."""
    usage = goal.usage()
    used = {
        "steps": usage.steps,
        "tokens": usage.tokens,
        "minutes": usage.minutes,
        "approvals": usage.approvals,
        "retries": usage.retries,
        "files_total": usage.files_total,
    }
    parts = [
        f"{max(0, allowed - used[name]):,.0f} of {allowed:,} {gates.BUDGET_LABELS.get(name, name)}"
        for name, allowed in goal.budgets.items()
        if allowed and name in used
    ]
    return "; ".join(parts) or "no budget is bounded"


def _rejected_done(goal: Goal) -> ApprovalRequest | None:
    """The agent's last done request, when the owner said no and the agent reported no check since."""
    last = goal.approval_requests.from_gateway().filter(kind=RequestKind.DONE).order_by("-id").first()
    if last is None or last.status != RequestStatus.REJECTED:
        return None
    if goal.agent_reports.filter(passed__isnull=False, created_at__gt=last.decided_at or last.created_at).exists():
        return None
    return last


def _pending_done_request(goal: Goal) -> ApprovalRequest | None:
    return (
        goal.approval_requests.from_gateway()
        .filter(kind=RequestKind.DONE, status=RequestStatus.PENDING)
        .order_by("-id")
        .first()
    )


def answer_stop(goal: Goal, token: AgentToken | None, *, stop_hook_active: bool, session_id: str = "") -> StopAnswer:
    """Whether an agent elsewhere may stop now (Claude Code's Stop hook).

    It may when the goal does not run (done, paused, stopped…), when a budget is used up, when a done request
    is open for the owner, or when it was already sent back once in this turn (`stop_hook_active`: never a
    loop). When every check of the goal passes as last reported, "done" is the owner's word: a done request
    opens for the phone, and the agent may stop. Otherwise it is sent back to work with the failing evidence
    and the budget left.
    """
    if goal.status != GoalStatus.RUNNING:
        refusal = goal_state_refusal(goal)
        return StopAnswer(False, refusal[0] if refusal else f"The goal is {goal.get_status_display().lower()}.")
    exhausted = goal.exhausted_budget()
    if exhausted is not None:
        return StopAnswer(False, exhausted.reason)
    pending = _pending_done_request(goal)
    if pending is not None:
        return StopAnswer(False, f"Done request #{pending.pk} waits for the owner on the phone.", pending)
    failing = failing_evidence(goal)
    rejected = _rejected_done(goal) if not failing else None
    if rejected is not None:
        said = rejected.decisions.exclude(comment="").order_by("-id").values_list("comment", flat=True).first()
        failing = [f"the owner answered done request #{rejected.pk}: not done yet" + (f": {said}" if said else ".")]
    if not failing:
        request = open_done_review(
            goal,
            token,
            "The agent says the goal is done; every check it reported passed.",
            agent="claude",
            session_id=session_id,
        )
        return StopAnswer(False, f"Every check passes: done request #{request.pk} asks the owner to confirm.", request)
    if stop_hook_active:
        return StopAnswer(False, "Already sent back to work once in this turn; the goal is not done yet.")
    reason = (
        f"Goalpost: the goal is not done yet. Objective: {' '.join(goal.objective.split())[:300]}\n"
        "Not done because:\n- " + "\n- ".join(failing) + f"\nBudget left: {budget_left(goal)}.\n"
        "Keep working: fix what fails, run the checks again and report each one to Goalpost (POST "
        f"$GOALPOST_URL/api/v1/goals/{goal.pk}/evidence with `Authorization: Bearer $GOALPOST_TOKEN` and "
        '{"command": …, "exit_code": …, "output_tail": …}), then stop.'
    )
    return StopAnswer(True, reason)

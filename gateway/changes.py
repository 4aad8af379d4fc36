"""What really changed: the working tree's diff an agent elsewhere reports after a tool call, judged by the gates.

A tool call is judged before it runs from what it proposes (gateway/calls.py), and a command can write files its
command line never names (`./build.sh`, `python -c …`). So the clients also post the real change, after the fact:
Claude Code's command hook (`goalpost-hook`) on PostToolUse, and the Codex bridge from `turn/diff/updated`, send the
working tree's `git diff` against the last approved state to `POST /api/v1/goals/{id}/changes`. The same judge
(`goals/judge.py`) runs the gates over it, as over a step.

- A gate whose verdict is deny (a protected path, a lock or generated file, a budget used up) stops the goal as
  the phone's Stop does (paused), opens a `stop` request for its people with the real diff on its page (pushed like
  any request), and tells the agent to stop, naming the path. The same diff posted again opens no second request.
  Approving that request accepts those changes (the same file changes never stop the goal again) and resumes it.
- Anything else is allowed: the files count in the goal's usage (`judge.record_paths`) and blast radius. A gate
  that would ask (a high-risk goal, a weakened test) is listed in the findings; the call that made the change
  was already judged before it ran.

The diff is hostile input: its size is bounded by the API's body limit, and a path that is absolute, climbs out
with `..`, or names `.git/` refuses the whole report (400).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from approvals.models import ApprovalRequest, RequestKind, RequestOrigin, RequestStatus
from gateway import calls
from gateway.calls import ALLOW, DENY, Proposal
from gateway.models import AgentToken, GatewayCall
from goals import gates, judge
from goals.diffs import DiffError, ParsedDiff, parse_diff
from goals.models import Goal, GoalStatus

CHANGES_TOOL = "changes"  # GatewayCall.tool_name of a reported real change
SOURCES = {"claude-code": "claude", "claude": "claude", "codex": "codex"}
STOPPABLE = (GoalStatus.RUNNING, GoalStatus.WAITING, GoalStatus.STALLED)
MAX_RECORDED_PATHS = 2_000


class BadChanges(ValueError):
    """A report the gateway refuses (400): a diff it cannot read, or a path outside the repository."""


@dataclass(frozen=True)
class Changes:
    """A real change as a client reports it."""

    diff: str
    source: str
    cwd: str
    session_id: str = ""
    tool_use_id: str = ""
    tool: str = ""

    @property
    def agent(self) -> str:
        return SOURCES.get(self.source.strip().lower(), "api")


@dataclass(frozen=True)
class ChangesOutcome:
    verdict: str  # allow or deny
    stop: bool
    reason: str
    findings: tuple[dict, ...] = ()
    files: tuple[str, ...] = ()
    request: ApprovalRequest | None = None

    def as_dict(self) -> dict:
        request = self.request
        return {
            "verdict": self.verdict,
            "stop": self.stop,
            "reason": self.reason,
            "findings": list(self.findings),
            "files": list(self.files),
            "request": (
                {"id": request.pk, "status": request.status, "decision_url": f"/api/v1/requests/{request.pk}/decision"}
                if request
                else None
            ),
        }


def unsafe_path(path: str) -> str:
    """Why a path a reported diff names may not be judged ("" when it may): the repository's files only."""
    if not path or "\x00" in path:
        return "an empty path"
    if path.startswith(("/", "~")) or path[1:3] == ":\\":
        return f"an absolute path ({path[:200]})"
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        return f"a path that climbs out of the repository ({path[:200]})"
    if any(part.lower() == ".git" for part in parts):
        return f"a path inside .git ({path[:200]})"
    return ""


def read_diff(text: str) -> ParsedDiff:
    """The reported diff, parsed and checked path by path; raises BadChanges."""
    try:
        parsed = parse_diff(text)
    except DiffError as error:
        raise BadChanges(f"`diff` is not a diff the gates can read: {error}") from error
    for file in parsed.files:
        for path in (file.path, file.old_path):
            why = unsafe_path(path) if path is not None else ""
            if why:
                raise BadChanges(f"`diff` names {why}: only the repository's own files can be judged.")
    return parsed


def _file_hashes(parsed: ParsedDiff, text: str) -> dict[str, str]:
    """Each file's change as a hash of its diff section: the same change to the same file hashes the same."""
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            current = line
            sections[current] = ""
        if current is not None:
            sections[current] += line
    hashes: dict[str, str] = {}
    for file in parsed.files:
        section = next((body for header, body in sections.items() if header.rstrip().endswith(f"b/{file.path}")), "")
        blob = section or json.dumps([file.path, file.change, [h.header for h in file.hunks]], default=str)
        hashes[file.path] = hashlib.sha256(blob.encode("utf-8", errors="replace")).hexdigest()
    return hashes


def _accepted(goal: Goal) -> set[tuple[str, str]]:
    """(path, change hash) of the changes a person accepted by approving a stop request."""
    accepted: set[tuple[str, str]] = set()
    requests = goal.approval_requests.from_gateway().filter(kind=RequestKind.STOP, status=RequestStatus.APPROVED)
    for details in requests.values_list("details", flat=True):
        hashes = details.get("file_hashes") if isinstance(details, dict) else None
        if isinstance(hashes, dict):
            accepted |= {(str(path), str(digest)) for path, digest in hashes.items()}
    return accepted


def changes_key(text: str) -> str:
    return hashlib.sha256(json.dumps([CHANGES_TOOL, text]).encode("utf-8", errors="replace")).hexdigest()


def judge_changes(goal: Goal, changes: Changes, token: AgentToken | None = None) -> ChangesOutcome:
    """Judge a real change reported for the goal; raises BadChanges for a report it refuses."""
    repo = Path(goal.repository.source)
    if not calls.inside_repo(changes.cwd, repo):
        raise BadChanges(f"`cwd` {changes.cwd[:200]} is outside the goal's repository {goal.repository.source}.")
    parsed = read_diff(changes.diff)
    files = tuple(dict.fromkeys(file.path for file in parsed.files))
    key = changes_key(changes.diff)
    judge.progress(goal)
    with transaction.atomic():
        # One report at a time per goal: the same diff posted twice at once opens one request.
        Goal.objects.select_for_update().filter(pk=goal.pk).first()
        goal.refresh_from_db()
        earlier = goal.gateway_calls.filter(call_key=key, verdict=DENY, request__isnull=False).first()
        # The same diff again: the same answer while its request is open or the goal stays stopped. Once a person
        # resumed the goal without accepting the changes, changes still there stop it again.
        unaccepted = earlier is not None and earlier.request.status != RequestStatus.APPROVED
        if unaccepted and (earlier.request.is_pending or goal.status not in STOPPABLE):
            return ChangesOutcome(DENY, True, earlier.reason, tuple(earlier.findings), files, earlier.request)
        proposal = Proposal(action="write", diff=parsed, diff_text=changes.diff)
        findings = calls.run_gates_for(goal, proposal)
        accepted = _accepted(goal)
        hashes = _file_hashes(parsed, changes.diff)
        stops = [
            finding
            for finding in findings
            if finding.severity == gates.STOP and (finding.path, hashes.get(finding.path or "")) not in accepted
        ]
        as_dicts = tuple(
            finding.as_dict() for finding in findings if finding.severity != gates.STOP or finding in stops
        )
        call = calls.ToolCall(
            changes.tool or CHANGES_TOOL, {}, changes.cwd, changes.session_id, changes.tool_use_id, changes.agent
        )
        pending = _pending_stop(goal, stops, hashes)
        if pending is not None:
            return ChangesOutcome(DENY, True, _stop_reason(stops, pending), as_dicts, files, pending)
        if stops:
            return _stop(goal, token, call, key, changes, proposal, stops, as_dicts, hashes)
        refusal = calls.goal_state_refusal(goal)
        reason = "The real changes break no rule." if refusal is None else refusal[0]
        if not goal.gateway_calls.filter(call_key=key, verdict=ALLOW).exists():  # once per diff
            _record(goal, token, call, key, files, ALLOW, reason, as_dicts)
        judge.record_paths(goal, files)
    return ChangesOutcome(ALLOW, bool(refusal and refusal[1]), reason, as_dicts, files)


def _record(goal, token, call, key, files, verdict, reason, findings, request=None) -> GatewayCall:
    summary = f"Real changes reported: {len(files)} file(s)"
    return calls.record_call(
        goal, token, call, key, None, verdict, reason, findings, request, summary, paths=files[:MAX_RECORDED_PATHS]
    )


def _stop(goal, token, call, key, changes, proposal, stops, as_dicts, hashes) -> ChangesOutcome:
    """Stop the goal as the phone's Stop does, and open the stop request its people see the real diff on."""
    why = "; ".join(finding.reason for finding in stops)
    who = calls.AGENT_LABELS.get(call.agent) or (token.name if token else "") or "An agent"
    paths = [finding.path for finding in stops if finding.path]
    details = {
        "agent": call.agent,
        "agent_name": token.name if token else "",
        "tool": call.tool,
        "tool_use_id": call.tool_use_id,
        "session_id": call.session_id,
        "cwd": changes.cwd,
        "source": changes.source[:200],
        "command": "",
        "input": "",
        "paths": list(proposal.paths[:MAX_RECORDED_PATHS]),
        "file_hashes": {path: hashes[path] for path in paths if path in hashes},
    }
    request = judge.open_request(
        goal,
        stops,
        kind=RequestKind.STOP,
        summary=f"{who} changed what it must not, and the goal is stopped: {why}",
        details=details,
        origin=RequestOrigin.GATEWAY,
        diff=calls._diff_detail(changes.diff),
        diff_truncated=len(changes.diff) > calls.MAX_DIFF_DETAIL,
        evidence=calls.reported_checks(goal),
    )
    goal.set_status(GoalStatus.PAUSED, None, f"Paused: {why}"[:500], only_from=STOPPABLE)
    reason = _stop_reason(stops, request)
    _record(goal, token, call, key, proposal.paths, DENY, reason, as_dicts, request)
    return ChangesOutcome(DENY, True, reason, as_dicts, proposal.paths, request)


def _stop_reason(stops, request: ApprovalRequest) -> str:
    why = "; ".join(finding.reason for finding in stops)
    return (
        f"Stop: {why}. The goal is paused; a person decides on the phone (request #{request.pk}). "
        "Do not undo or work around it."
    )


def _pending_stop(goal: Goal, stops, hashes: dict[str, str]) -> ApprovalRequest | None:
    """The pending stop request that already shows these very changes (a diff that grew around them)."""
    if not stops:
        return None
    wanted = {(finding.path, hashes.get(finding.path or "")) for finding in stops}
    pending = goal.approval_requests.from_gateway().pending().filter(kind=RequestKind.STOP).order_by("-id")
    for request in pending:
        shown = request.details.get("file_hashes") if isinstance(request.details, dict) else None
        if isinstance(shown, dict) and wanted <= {(str(path), str(digest)) for path, digest in shown.items()}:
            return request
    return None


def resume_after_accepted_stop(sender, request: ApprovalRequest, decision, **kwargs) -> None:
    """Approving a stop request accepts the changes it shows: the goal it paused runs again."""
    if request.from_gateway and request.kind == RequestKind.STOP and request.status == RequestStatus.APPROVED:
        request.goal.set_status(
            GoalStatus.RUNNING,
            decision.user,
            "Running again: the stop request was approved, its changes accepted.",
            only_from=(GoalStatus.PAUSED,),
        )


def judge_tool_input(goal: Goal, token: AgentToken | None, call: calls.ToolCall) -> ChangesOutcome | None:
    """A tool call that already ran, judged from its input alone (Claude Code's HTTP PostToolUse hook, which
    cannot see the agent's working tree): the files a write, an edit or a patch names and those a command
    visibly writes, as a real change. What a command changed out of sight (a script, a build) is not in the
    input: only the command hook, which reads the working tree, reports that. None when the input names no file
    (or cannot be read: the PreToolUse hook already refused it)."""
    repo = Path(goal.repository.source)
    try:
        proposal = calls.describe(call, repo, read_text=lambda path: None)
    except calls.BadToolCall:
        return None
    if not proposal.paths or proposal.outside:
        return None
    diff = proposal.diff_text or "".join(calls.unified_file_diff(path, "", "") for path in proposal.paths)
    changes = Changes(
        diff=diff,
        source="claude-code",
        cwd=call.cwd,
        session_id=call.session_id,
        tool_use_id=call.tool_use_id,
        tool=call.tool,
    )
    try:
        return judge_changes(goal, changes, token)
    except BadChanges:
        return None

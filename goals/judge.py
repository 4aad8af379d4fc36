"""One judge for every step, whoever drives it: the managed loop (goals/loop.py) or an agent running elsewhere
through the gateway (gateway/calls.py).

A driver turns what happened into the gates' inputs (a diff, the evidence, the history of earlier attempts) and
hands them here. The judge owns the rest, so both drivers count and say things the same way:
- usage: `Goal.usage()` is the one truth, steps and what agents reported (`record_tokens`, `record_paths`);
- budgets: one finding and one message (`gates.budget_finding`), before a step (`Goal.exhausted_budget`) or in it;
- failure streaks: one count (`gates.failure_streak`), for the gate, the retries budget and failed steps;
- the gates: `judge` runs them over a step with the goal's contract and usage;
- requests: `open_request` opens the request the findings ask for, and puts a managed goal in waiting;
- progress stamps: `progress` and `started`, which the stall detector reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestKind, RequestOrigin, loop_origin
from goals import gates
from goals.models import Goal, GoalStatus
from goals.repopaths import RepoPaths

# --- progress stamps ------------------------------------------------------------------------------------------


def progress(goal: Goal) -> None:
    """Something happened on the goal: the stall detector counts from now."""
    now = timezone.now()
    Goal.objects.filter(pk=goal.pk).update(last_progress_at=now)
    goal.last_progress_at = now


def started(goal: Goal, when=None) -> None:
    """The goal's first step (or first tool call) began: its minutes count from here, once."""
    if goal.started_at is not None:
        return
    when = when or timezone.now()
    Goal.objects.filter(pk=goal.pk, started_at__isnull=True).update(started_at=when)
    goal.started_at = when


# --- usage ------------------------------------------------------------------------------------------------------


def usage(goal: Goal) -> gates.Usage:
    """What the goal has used so far, whoever reported it."""
    return goal.usage()


def record_tokens(goal: Goal, tokens: int) -> int:
    """Count tokens an agent elsewhere reported; returns what agents reported in all. Progress, too."""
    with transaction.atomic():
        Goal.objects.filter(pk=goal.pk).update(
            reported_tokens=F("reported_tokens") + max(0, int(tokens)), last_progress_at=timezone.now()
        )
        goal.reported_tokens = Goal.objects.values_list("reported_tokens", flat=True).get(pk=goal.pk)
    return goal.reported_tokens


def record_paths(goal: Goal, paths: Iterable[str]) -> None:
    """Count files an agent elsewhere wrote (a call allowed, or approved on the phone) in the goal's usage."""
    new = {str(path) for path in paths if path}
    if not new:
        return
    with transaction.atomic():
        current = Goal.objects.select_for_update().values_list("reported_paths", flat=True).get(pk=goal.pk)
        merged = sorted(set(current or ()) | new)
        if len(merged) != len(current or ()):
            Goal.objects.filter(pk=goal.pk).update(reported_paths=merged)
        goal.reported_paths = merged


def usage_with(goal: Goal, *, tokens: int, paths: Iterable[str], history: gates.History) -> gates.Usage:
    """The goal's usage with one more step of the managed loop counted: its tokens and the files it touched."""
    before = usage(goal)
    touched = set(history.touched_paths) | set(goal.reported_paths or ()) | set(paths)
    return gates.Usage(
        minutes=before.minutes,
        steps=before.steps + 1,
        tokens=before.tokens + tokens,
        files_total=max(before.files_total, len(touched)),
        approvals=before.approvals,
        retries=before.retries,
    )


# --- the gates ------------------------------------------------------------------------------------------------


def judge(
    goal: Goal,
    step: gates.Step,
    *,
    history: gates.History,
    usage: gates.Usage,
    file_head: Callable[[str], str] | None = None,
    radius: gates.Step | None = None,
    extra: Iterable[gates.GateFinding] = (),
    paths: RepoPaths | None = None,
) -> list[gates.GateFinding]:
    """The gates over one step, most serious first, with the repository's path rules (``paths``, by default the
    goal's own: `Goal.path_rules()`, staff's settings or what was detected from the base commit).

    ``radius``, when given, is what the blast-radius gate measures instead of the step: an agent elsewhere
    proposes one call at a time, and its blast radius is every file written since a person last approved.
    ``extra`` are findings the driver made itself (a diff too large to read in full).
    """
    contract = goal.contract()
    paths = paths if paths is not None else goal.path_rules()
    findings = list(extra) + gates.run_gates(
        contract, step, history=history, usage=usage, file_head=file_head, paths=paths
    )
    if radius is not None:
        findings = [finding for finding in findings if finding.gate != "blast_radius"]
        if radius.diff.files:
            findings += [
                finding
                for finding in gates.run_gates(
                    contract, radius, history=gates.History(), usage=gates.Usage(), paths=paths
                )
                if finding.gate == "blast_radius"
            ]
    return sorted(findings, key=lambda finding: gates.SEVERITIES.index(finding.severity))


def failed_step_findings(goal: Goal, history: gates.History, signature: str, error: str) -> list[gates.GateFinding]:
    """A failed step is judged too: the same failure K times in a row asks a person, a used-up budget stops."""
    threshold = goal.repeated_failure_threshold
    findings: list[gates.GateFinding] = []
    streak = gates.failure_streak((*history.failure_signatures, signature))
    if streak >= threshold:
        findings.append(
            gates.GateFinding(
                gate="repeated_failure",
                severity=gates.APPROVAL,
                reason=f"Same failure {threshold} times: {error}"[:200],
                data={"attempts": [*history.attempts[-(threshold - 1) :], error[:200]]},
            )
        )
    budget = goal.exhausted_budget()
    if budget is not None:
        findings.append(budget)
    return findings


# --- requests -------------------------------------------------------------------------------------------------


def open_request(
    goal: Goal,
    findings: Iterable[gates.GateFinding],
    *,
    summary: str,
    origin: str | None = None,
    kind: str | None = None,
    step_number: int | None = None,
    plan: str = "",
    details: dict | None = None,
    diff: str = "",
    diff_truncated: bool = False,
    evidence: list[dict] | None = None,
) -> ApprovalRequest:
    """Open the request the findings ask for (or `kind`), and announce it.

    A managed goal then waits for the decision. An agent running elsewhere (`origin="gateway"`) waits on its
    own, so its goal keeps running and its other tool calls go on being judged.
    """
    findings = list(findings)
    kind = kind or gates.request_kind(findings) or RequestKind.STEP
    origin = origin or loop_origin(kind)
    budget = next((finding for finding in findings if finding.gate == "budget"), None)
    details = {**(dict(budget.data) if budget is not None else {}), **(details or {})}
    with transaction.atomic():
        request = ApprovalRequest.open(
            goal,
            kind,
            findings=[finding.as_dict() for finding in findings],
            summary=summary,
            step_number=step_number,
            plan=plan,
            details=details,
            origin=origin,
            diff=diff,
            diff_truncated=diff_truncated,
            evidence=evidence,
        )
        if origin != RequestOrigin.GATEWAY:
            waiting = "the agent says it is done" if kind == RequestKind.DONE else None
            message = f"Waiting: {waiting}." if waiting else f"Waiting: {request.get_kind_display().lower()} request."
            goal.set_status(GoalStatus.WAITING, None, message)
    return request

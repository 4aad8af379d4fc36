"""The done review's second half: the branch and its commits, the evidence before and after, the pull request
description written from the goal's record, and opening that pull request on the repository's forge."""

from __future__ import annotations

import re
from dataclasses import dataclass

from approvals.models import ApprovalRequest, Decision
from goals.forges import Forge, ForgeError
from goals.models import KEPT_STEP_STATUSES, Goal, GoalStatus, Step

PULL_REQUEST_EVENT = "pull_request"
# A line where the agent (or a person) writes the migration note: "Migration note: …", "MIGRATION: …".
MIGRATION_LINE = re.compile(r"^\s*(?:[-*#]+\s*)?migration(?:\s+note)?\s*[:—-]\s*(?P<note>.+)$", re.IGNORECASE)
MIGRATION_PATHS = re.compile(r"(?:^|/)(?:migrations?|alembic|db/migrate|schema)(?:/|\.)", re.IGNORECASE)
TITLE_LIMIT = 200
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#!|<>~])")


def agent_text(text: str, limit: int = 300) -> str:
    """Words the agent wrote, made inert in Markdown: one line, clipped, every Markdown character escaped (no
    heading, link, image or HTML of its own in the description) and @mentions broken, so it pings nobody."""
    line = " ".join(str(text or "").split())[:limit]
    return MARKDOWN_SPECIAL.sub(r"\\\1", line).replace("@", "@\u200b")


class PullRequestRefused(Exception):
    """No pull request was opened; the message says why, for the page."""


@dataclass(frozen=True)
class Description:
    title: str
    body: str


def branch_of(goal: Goal) -> str:
    """The branch the goal's commits are on, pushed to the repository once the done review is approved."""
    return f"goalpost/{goal.pk}"


def kept_steps(goal: Goal) -> list[Step]:
    return list(goal.steps.filter(status__in=KEPT_STEP_STATUSES).order_by("number"))


def after_runs(approval: ApprovalRequest, steps: list[Step]) -> list[dict]:
    """The checks as they stand at the end: the last kept step's runs, or what an agent elsewhere reported."""
    if approval.from_gateway:
        return [check for check in approval.evidence if isinstance(check, dict)]
    return next((list(step.evidence) for step in reversed(steps) if step.evidence), [])


def baseline_of(approval: ApprovalRequest, goal: Goal, after: list[dict]) -> dict:
    """The evidence before the agent's work (the goal's baseline) compared with ``after``: as the request recorded
    it when it opened ("before: 1 failing; after: all 3 pass"), else as the goal's baseline compares now; {} when
    no baseline was taken. The template's slot is ``baseline``."""
    recorded = approval.details.get("baseline") if isinstance(approval.details, dict) else None
    if isinstance(recorded, dict) and recorded.get("line"):
        return recorded
    return dict(goal.done_comparison(after) or {})


def migration_note(texts: list[str], paths: list[str], asked: bool) -> str:
    """The note a reviewer needs before merging: the agent's own "Migration note: …" line when it wrote one; else
    what the changed files say (schema or migration files, or none)."""
    for text in texts:
        for line in str(text or "").splitlines():
            found = MIGRATION_LINE.match(line)
            if found:
                return found.group("note").strip()
    touched = sorted({path for path in paths if MIGRATION_PATHS.search(path)})
    if touched:
        listed = ", ".join(touched[:5]) + (f" and {len(touched) - 5} more" if len(touched) > 5 else "")
        return f"Migration files changed: {listed}. The agent wrote no note: read them before merging."
    if asked:
        return "None needed: no migration or schema files changed (the contract asks for a note; the agent wrote none)."
    return "None needed: no migration or schema files changed."


def _check_line(run: dict) -> str:
    mark = "✓" if run.get("passed") else "✗"
    name = str(run.get("name") or run.get("command") or "check")
    summary = str(run.get("summary") or "").strip()
    return f"- {mark} {agent_text(name, 120)}" + (f" — {agent_text(summary, 200)}" if summary else "")


def _decision_line(decision: Decision) -> str:
    who = decision.user.get_username() if decision.user else "someone"
    request = decision.request
    what = f"step {request.step_number}" if request.step_number else f"the {request.get_kind_display().lower()}"
    line = f"- {who}: {decision.get_verdict_display().lower()} {what} ({request.get_kind_display().lower()} request)"
    return line + (f" — “{agent_text(decision.comment)}”" if decision.comment else "")


def describe(
    goal: Goal, approval: ApprovalRequest, steps: list[Step], after: list[dict], baseline: dict
) -> Description:
    """The pull request's title and Markdown body, from the contract, the steps, the evidence, the decisions
    and the migration note."""
    lines = [goal.objective.strip(), ""]
    if goal.constraints:
        lines += ["**Constraints**", *[f"- {constraint}" for constraint in goal.constraints], ""]
    if goal.done_criteria.strip():
        lines += ["**Done when**", goal.done_criteria.strip(), ""]
    lines.append("## Steps")
    for step in steps:
        sha = f" `{step.commit_sha[:12]}`" if step.commit_sha else ""
        summary = agent_text(step.summary) or "(no summary)"
        lines.append(f"{step.number}. {summary}{sha}")
    if not steps:
        lines.append("No step was kept.")
    lines += ["", "## Evidence"]
    if baseline.get("line"):
        lines.append(f"Before → after: {baseline['line']}.")
    elif baseline.get("headline"):
        lines.append(f"Before: {baseline['headline']}")
    lines += [_check_line(run) for run in after] or ["No checks ran."]
    decisions = Decision.objects.filter(request__goal=goal).select_related("user", "request").order_by("created_at")
    lines += ["", "## Decisions", *([_decision_line(d) for d in decisions] or ["None yet."])]
    paths = sorted({str(f.get("path")) for step in steps for f in step.files if isinstance(f, dict) and f.get("path")})
    texts = [approval.summary, str(approval.details.get("summary") or ""), *[step.summary for step in reversed(steps)]]
    asked = "migration note" in f"{goal.objective}\n{goal.done_criteria}\n{' '.join(goal.constraints)}".lower()
    lines += ["", "## Migration note", agent_text(migration_note(texts, paths, asked), 1000)]
    lines += ["", f"_Opened from Goalpost: goal #{goal.pk}, branch `{branch_of(goal)}`._"]
    return Description(title=goal.title[:TITLE_LIMIT], body="\n".join(lines).strip() + "\n")


def forge_of(goal: Goal) -> Forge | None:
    repository = goal.repository
    if not repository.forge:
        return None
    return Forge(repository.forge, repository.forge_url, repository.forge_project, repository.forge_token)


def opened_pull_request(goal: Goal) -> dict:
    """The pull request Goalpost opened (or found) for the goal: {"url", "number"}, or {}."""
    event = goal.events.filter(kind=PULL_REQUEST_EVENT).order_by("-created_at", "-id").first()
    return {"url": event.data.get("url", ""), "number": event.data.get("number")} if event else {}


def open_refusal(goal: Goal, approval: ApprovalRequest) -> str:
    """Why "Open pull request" cannot be used now, or ""."""
    if approval.from_gateway:
        return "The agent worked elsewhere, on a branch of its own: Goalpost has no branch of this goal to propose."
    repository = goal.repository
    if not repository.forge:
        return "Staff have set no forge on this repository."
    if not (repository.forge_url and repository.forge_project and repository.forge_token):
        return "The repository's forge lacks its API URL, project or token: staff must complete it."
    if goal.status != GoalStatus.DONE:
        return "The branch is pushed once you approve the done review: open the pull request then."
    return ""


def done_review(approval: ApprovalRequest, user) -> dict:
    """What the done review's page shows below the decision."""
    goal = approval.goal
    steps = kept_steps(goal)
    after = after_runs(approval, steps)
    baseline = baseline_of(approval, goal, after)
    repository = goal.repository
    refusal = open_refusal(goal, approval)
    return {
        "branch": "" if approval.from_gateway else branch_of(goal),
        "base_branch": goal.base_branch,
        "commits": [
            {"number": step.number, "sha": step.commit_sha[:12], "summary": " ".join(str(step.summary).split())[:200]}
            for step in steps
            if step.commit_sha
        ],
        "after": after,
        "baseline": baseline,
        "description": describe(goal, approval, steps, after, baseline),
        "forge": repository.get_forge_display() if repository.forge else "",
        "refusal": refusal,
        "can_open": goal.can_decide(user) and not refusal,
        "pull_request": opened_pull_request(goal),
    }


def open_for(approval: ApprovalRequest, user) -> dict:
    """Open the goal's pull request on its forge (or link the one open already) and record it on the goal's trail.

    Raises PullRequestRefused with a message for the page."""
    goal = approval.goal
    if approval.kind != "done":
        raise PullRequestRefused("Only a done review opens a pull request.")
    refused = open_refusal(goal, approval)
    if refused:
        raise PullRequestRefused(refused)
    recorded = opened_pull_request(goal)
    if recorded.get("url"):
        return {**recorded, "existing": True}
    forge = forge_of(goal)
    steps = kept_steps(goal)
    after = after_runs(approval, steps)
    text = describe(goal, approval, steps, after, baseline_of(approval, goal, after))
    try:
        pull = forge.open_pull_request(head=branch_of(goal), base=goal.base_branch, title=text.title, body=text.body)
    except ForgeError as error:
        goal.record("pull_request_failed", f"Could not open the pull request: {error}"[:500], user)
        raise PullRequestRefused(str(error)) from None
    said = "Linked the pull request already open" if pull.existing else "Opened a pull request"
    goal.record(PULL_REQUEST_EVENT, f"{said}: {pull.url}"[:500], user, url=pull.url, number=pull.number)
    return {"url": pull.url, "number": pull.number, "existing": pull.existing}

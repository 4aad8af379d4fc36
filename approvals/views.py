from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field

from django.contrib import messages
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, trigger_client_event

from approvals import briefing, diffview, pull_request
from approvals.models import (
    AGENT_LABELS,
    EXTENDABLE_BUDGETS,
    ApprovalRequest,
    Decision,
    DecisionRefused,
    DecisionResult,
    Verdict,
)
from goals import lint
from goals.models import Goal, GoalStatus, Step

RISK_RANK = {"high": 0, "medium": 1, "low": 2}
# Cards per screen of the inbox; "Show more" fetches the next ones (rendering 200 cards took most of a second).
INBOX_PAGE = 10
OUTPUT_TAIL_CHARS = 4_000
RUNNING_LINKS = 5
# "Next request" picks among the soonest-due pending requests (the inbox's first screens).
NEXT_CANDIDATES = 50
DONE_MESSAGES = {
    Verdict.APPROVE: "Approved",
    Verdict.REJECT: "Rejected",
    Verdict.STOP: "Stopped the goal",
    Verdict.EXTEND: "Budget extended",
}
# (token in the User-Agent, name) pairs, most specific first: Edge and Opera also say "Chrome/".
BROWSERS = (("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
            ("CriOS/", "Chrome"), ("Chrome/", "Chrome"), ("Safari/", "Safari"))  # fmt: skip
SYSTEMS = (("iPhone", "iPhone"), ("iPad", "iPad"), ("Android", "Android"), ("Windows", "Windows"),
           ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))  # fmt: skip


def _get_request_for_user(request: HttpRequest, pk: int) -> ApprovalRequest:
    """The approval request if the user may see its goal; 404 for everyone else, never a hint it exists."""
    requests = ApprovalRequest.objects.visible_to(request.user).select_related("goal", "goal__owner")
    return get_object_or_404(requests, pk=pk)


def goal_risk(goal: Goal) -> str:
    """The risk the rules apply: the declared one, raised to the work type's."""
    return lint.Contract(work_type=goal.work_type, risk=goal.risk).effective_risk


def describe_device(user_agent: str) -> str:
    """A short name for the device a decision came from: "Chrome on Android"."""
    browser = next((name for token, name in BROWSERS if token in user_agent), "")
    system = next((name for token, name in SYSTEMS if token in user_agent), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or user_agent.strip()[:60]


def _steps_for(requests: list[ApprovalRequest]) -> dict[tuple[int, int], Step]:
    """The steps the requests are about, in one query and without their (possibly huge) diffs."""
    keys = {(r.goal_id, r.step_number) for r in requests if r.step_number}
    if not keys:
        return {}
    matches = functools.reduce(operator.or_, (Q(goal_id=goal, number=number) for goal, number in keys))
    steps = Step.objects.filter(matches).only("goal_id", "number", "diff_stats", "evidence")
    return {(step.goal_id, step.number): step for step in steps}


@dataclass
class Card:
    """One pending request as the inbox shows it."""

    request: ApprovalRequest
    risk: str
    reasons: list[str]
    step: Step | None
    approved_by: list[str] = field(default_factory=list)
    you_approved: bool = False
    failing: list[briefing.FailingCheck] = field(default_factory=list)

    @property
    def high_risk(self) -> bool:
        return self.risk == "high"

    @property
    def waiting_for_another(self) -> bool:
        return self.you_approved and len(self.approved_by) < self.request.required_approvals


def _cards(requests: list[ApprovalRequest], user) -> list[Card]:
    steps = _steps_for(requests)
    cards = []
    for approval in requests:
        step = steps.get((approval.goal_id, approval.step_number))
        approvers = []
        for decision in approval.decisions.all():
            if decision.verdict == Verdict.APPROVE and decision.user and decision.user.get_username() not in approvers:
                approvers.append(decision.user.get_username())
        cards.append(
            Card(
                request=approval,
                risk=goal_risk(approval.goal),
                reasons=_reasons(approval.findings),
                step=step,
                failing=briefing.failing_checks(_raw_runs(approval, step)),
                approved_by=approvers,
                you_approved=any(
                    d.user_id == user.pk and d.verdict == Verdict.APPROVE for d in approval.decisions.all()
                ),
            )
        )
    return sorted(
        cards,
        key=lambda card: (RISK_RANK.get(card.risk, 1), card.request.expires_at, card.request.created_at),
    )


def _reasons(findings: list) -> list[str]:
    return [str(f.get("reason", "")) for f in briefing.ordered_findings(findings)]


def _raw_runs(approval: ApprovalRequest, step: Step | None) -> list[dict]:
    """The checks behind the request as stored: its step's runs, or those an agent elsewhere reported."""
    if step is not None:
        return [run for run in step.evidence if isinstance(run, dict)]
    return [check for check in approval.evidence if isinstance(check, dict)] if approval.from_gateway else []


def _pending_for(user):
    return ApprovalRequest.objects.pending().answerable_by(user)


def _inbox_requests(user, offset: int = 0, limit: int = INBOX_PAGE) -> list[ApprovalRequest]:
    decisions = Prefetch("decisions", queryset=Decision.objects.select_related("user"))
    pending = _pending_for(user).filter(expires_at__gt=timezone.now())
    ordered = pending.select_related("goal").prefetch_related(decisions).order_by("expires_at", "created_at", "pk")
    return list(ordered[offset : offset + limit])


def next_request_for(user, after: ApprovalRequest) -> ApprovalRequest | None:
    """The request the person answers next, in the inbox's order (highest risk, then soonest deadline), other than
    the one just decided; None when nothing else waits."""
    candidates = (
        _pending_for(user)
        .filter(expires_at__gt=timezone.now())
        .exclude(pk=after.pk)
        .exclude(decisions__user=user, decisions__verdict=Verdict.APPROVE)  # waits for another approver
        .select_related("goal")
        .order_by("expires_at", "created_at", "pk")[:NEXT_CANDIDATES]
    )
    ranked = sorted(candidates, key=lambda r: (RISK_RANK.get(goal_risk(r.goal), 1), r.expires_at, r.created_at))
    return ranked[0] if ranked else None


def _idle_context(user) -> dict:
    """What the empty inbox says instead: how many goals run, with links."""
    visible = Goal.objects.visible_to(user)
    running = visible.filter(status=GoalStatus.RUNNING)
    count = running.count()
    return {
        "running": list(running[:RUNNING_LINKS]) if count else [],
        "running_count": count,
        "running_more": max(0, count - RUNNING_LINKS),
        "has_goals": bool(count) or visible.exists(),
    }


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """The home page: pending requests the person may answer, most urgent first."""
    try:
        offset = max(0, int(request.GET.get("offset", 0)))
    except ValueError:
        offset = 0
    requests = _inbox_requests(request.user, offset, INBOX_PAGE + 1)
    cards = _cards(requests[:INBOX_PAGE], request.user)
    more = offset + INBOX_PAGE if len(requests) > INBOX_PAGE else None
    context = {"cards": cards, "more_offset": more, **({} if cards or offset else _idle_context(request.user))}
    if request.htmx and offset:
        template = "approvals/inbox.html#more_cards"
    else:
        template = "approvals/inbox.html#inbox_list" if request.htmx else "approvals/inbox.html"
    return render(request, template, context)


def _step_of(approval: ApprovalRequest) -> Step | None:
    if not approval.step_number:
        return None
    return Step.objects.filter(goal_id=approval.goal_id, number=approval.step_number).first()


def _decision_context(approval: ApprovalRequest, user, **extra) -> dict:
    """The decision area: who approved so far, what the person may still do."""
    decisions = list(approval.decisions.select_related("user"))
    approved_by = []
    for decision in decisions:
        name = decision.user.get_username() if decision.user else "someone"
        if decision.verdict == Verdict.APPROVE and name not in approved_by:
            approved_by.append(name)
    overdue = approval.is_pending and approval.expires_at <= timezone.now()
    you_approved = any(d.user_id == user.pk and d.verdict == Verdict.APPROVE for d in decisions)
    budget = approval.details.get("budget") if isinstance(approval.details, dict) else None
    if "checks_failing" not in extra:
        extra["checks_failing"] = bool(briefing.failing_checks(_raw_runs(approval, _step_of(approval))))
    show_next = not approval.is_pending or you_approved
    return {
        "show_next": show_next,
        "next_request": next_request_for(user, after=approval) if show_next else None,
        "approval": approval,
        "goal": approval.goal,
        "risk": goal_risk(approval.goal),
        "decisions": decisions,
        "approved_by": approved_by,
        "you_approved": you_approved,
        "can_decide": approval.is_pending and not overdue and approval.goal.can_decide(user),
        "overdue": overdue,
        "budget_names": [(name, lint.BUDGET_LABELS[name]) for name in EXTENDABLE_BUDGETS],
        "extend_budget": budget if budget in EXTENDABLE_BUDGETS else "steps",
        "budget_label": lint.BUDGET_LABELS.get(budget, "") if isinstance(budget, str) else "",
        "confirming": False,
        "comment": "",
        "refusal": "",
        **extra,
    }


def _meters(goal: Goal) -> list[dict]:
    usage = goal.usage()
    budgets = goal.budgets
    meters = []
    for name, used in (
        ("steps", usage.steps),
        ("tokens", usage.tokens),
        ("minutes", round(usage.minutes)),
        ("files_total", usage.files_total),
        ("approvals", usage.approvals),
        ("retries", usage.retries),
    ):
        allowed = budgets.get(name)
        meters.append(
            {
                "name": name,
                "label": lint.BUDGET_LABELS[name],
                "used": used,
                "allowed": allowed,
                "percent": min(100, round(100 * used / allowed)) if allowed else None,
            }
        )
    return meters


def _evidence(step: Step | None, approval: ApprovalRequest | None = None) -> list[dict]:
    """The checks behind the request: the step's evidence runs, or for a gateway request the checks the agent
    reported before it asked (the ones its gates saw)."""
    if step is None and approval is not None and approval.from_gateway:
        return _reported_evidence(approval)
    runs = []
    for run in step.evidence if step else []:
        output = str(run.get("output") or "")
        runs.append(
            {
                "name": run.get("name") or run.get("command") or "check",
                "command": run.get("command", ""),
                "passed": bool(run.get("passed")),
                "timed_out": bool(run.get("timed_out")),
                "duration_s": run.get("duration_s"),
                "summary": run.get("summary", ""),
                "failing_tests": run.get("failing_tests") or [],
                "output_tail": output[-OUTPUT_TAIL_CHARS:],
                "output_cut": len(output) > OUTPUT_TAIL_CHARS,
            }
        )
    return runs


def _reported_evidence(approval: ApprovalRequest) -> list[dict]:
    """The checks the agent reported before it asked, as the request keeps them."""
    return [
        {
            "name": check.get("name") or check.get("command") or "check",
            "command": check.get("command", ""),
            "passed": bool(check.get("passed")),
            "timed_out": bool(check.get("timed_out")),
            "duration_s": None,
            "summary": f"exit {check.get('exit_code')} (expected {check.get('expected_exit', 0)}), "
            "reported by the agent",
            "failing_tests": check.get("failing_tests") or [],
            "output_tail": str(check.get("output_tail") or "")[-OUTPUT_TAIL_CHARS:],
            "output_cut": bool(check.get("output_cut")),
        }
        for check in approval.evidence
        if isinstance(check, dict)
    ]


@dataclass(frozen=True)
class DiffSource:
    """Where a request's diff lives: its step's commit for the loop, the tool call for a gateway request."""

    text: str
    truncated: bool = False
    files: int | None = None  # the file count recorded with it, which lets one file load without the rest
    recorded: list | None = None  # the step's files (ParsedDiff.compact()), which lay out the page without a parse
    summary: str = ""  # the recorded stats line

    def files_of(self) -> tuple[tuple, str]:
        """The diff's files, indexed from the record when it lines up with the text, else parsed; and the stats
        line. Raises DiffError for a text that is not a readable diff."""
        indexed = diffview.index(self.text, self.recorded)
        if indexed is not None and self.summary:
            return indexed, self.summary
        parsed = diffview.parse(self.text)
        return parsed.files, parsed.summary_line()


def _diff_source(approval: ApprovalRequest, step: Step | None) -> DiffSource:
    if step is not None:
        return DiffSource(step.diff, step.diff_truncated, step.diff_stats.get("files"), step.files,
                          str(step.diff_stats.get("summary") or ""))
    if approval.from_gateway:
        return DiffSource(approval.diff, approval.diff_truncated)
    return DiffSource("")


def _gateway_call(approval: ApprovalRequest) -> dict | None:
    """Who asked and what they want to run, for a request an agent running elsewhere opened."""
    if not approval.from_gateway:
        return None
    details = approval.details
    agent = str(details.get("agent") or "api")
    return {
        "agent": AGENT_LABELS.get(agent, "An agent (API)"),
        "agent_name": str(details.get("agent_name") or ""),
        "tool": str(details.get("tool") or ""),
        "tool_use_id": str(details.get("tool_use_id") or ""),
        "session_id": str(details.get("session_id") or ""),
        "cwd": str(details.get("cwd") or ""),
        "command": str(details.get("command") or ""),
        "input": str(details.get("input") or ""),
        "paths": [str(path) for path in details.get("paths") or []],
    }


def _diff_context(approval: ApprovalRequest, step: Step | None) -> dict:
    """The diff viewer's first load: every file's summary (up to a page of them), a few files rendered."""
    source = _diff_source(approval, step)
    if not source.text.strip():
        return {"files": []}
    try:
        return _diff_files_context(approval, source, *source.files_of())
    except diffview.DiffError:
        pass  # a record that does not match its text: read the diff itself
    try:
        parsed = diffview.parse(source.text)
        return _diff_files_context(approval, source, parsed.files, parsed.summary_line())
    except diffview.DiffError as error:
        return {"files": [], "diff_error": str(error), "raw_diff": source.text[:20_000]}


def _diff_files_context(approval: ApprovalRequest, source: DiffSource, all_files: tuple, stats_line: str) -> dict:
    findings = approval.findings
    marks = [diffview.marks_for_file(file, findings) for file in all_files]
    targets = diffview.finding_targets(all_files, findings, marks)
    inline = diffview.first_load(all_files, {index for index, file_marks in enumerate(marks) if file_marks})
    files = [
        diffview.render_file(file, index, findings)
        if index in inline
        else diffview.summarise(file, index, marked=len(marks[index]))
        for index, file in enumerate(all_files[: diffview.LISTED_FILES])
    ]
    gate_links = {}
    for number, (index, marked) in targets.items():
        gate_links[number] = f"#gate-{number}-{index}" if marked and index in inline else f"#file-{index}"
    return {
        "files": files,
        "more_from": diffview.LISTED_FILES if len(all_files) > diffview.LISTED_FILES else None,
        "stats_line": stats_line,
        "gate_links": gate_links,
        "truncated": source.truncated,
    }


def _findings(approval: ApprovalRequest, gate_links: dict) -> list[dict]:
    numbered = [
        {**finding, "href": gate_links.get(number, "")}
        for number, finding in enumerate(approval.findings)
        if isinstance(finding, dict)
    ]
    return [
        {**finding, "gate_label": str(finding.get("gate") or "gate").replace("_", " ")}
        for finding in briefing.ordered_findings(numbered)
    ]


def _ask(approval: ApprovalRequest, step: Step | None, failing: int, call: dict | None) -> str:
    """The page's headline: what the request asks, in one sentence."""
    if call is not None and approval.kind != "stop":
        what = call["command"] or ", ".join(call["paths"][:3])
        tool = call["tool"] or "a tool"
        return briefing.ask_sentence(
            approval.kind, findings=approval.findings, failing=failing, agent=call["agent"], tool=tool, what=what[:120]
        )
    paths = [str(f.get("path") or "") for f in step.files] if step is not None else []
    return briefing.ask_sentence(
        approval.kind,
        step_number=approval.step_number,
        paths=paths,
        findings=approval.findings,
        failing=failing,
        agent=call["agent"] if call else "",
    )


def _page_context(request: HttpRequest, approval: ApprovalRequest, **decision_extra) -> dict:
    goal = approval.goal
    step = _step_of(approval)
    diff = _diff_context(approval, step)
    failing = briefing.failing_checks(_raw_runs(approval, step))
    call = _gateway_call(approval)
    return {
        **_decision_context(approval, request.user, checks_failing=bool(failing), **decision_extra),
        "step": step,
        "ask": _ask(approval, step, len(failing), call),
        "failing": failing,
        "plan": approval.plan or (step.plan if step else ""),
        "agent_said": step.summary if step and approval.kind == "plan" else "",
        "findings": _findings(approval, diff.get("gate_links", {})),
        "diff": diff,
        "call": call,
        "done_review": pull_request.done_review(approval, request.user) if approval.kind == "done" else None,
        "evidence": _evidence(step, approval),
        "manual_checks": [
            str(check.get("description") or "")
            for check in goal.evidence
            if isinstance(check, dict) and check.get("kind") == "manual"
        ],
        "meters": _meters(goal),
        "events": goal.events.select_related("actor")[:10],
    }


@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """The approval page: the request, its diff and evidence, the contract, and the decision form."""
    approval = _get_request_for_user(request, pk)
    if request.htmx:
        return _decision_area(request, approval)
    return render(request, "approvals/detail.html", _page_context(request, approval))


def _decision_area(request: HttpRequest, approval: ApprovalRequest, **extra) -> HttpResponse:
    """The approval page's decision area, which htmx puts into the page's #decision-slot."""
    return render(request, "approvals/detail.html#decision", _decision_context(approval, request.user, **extra))


def _file_of(approval: ApprovalRequest, index: int):
    source = _diff_source(approval, _step_of(approval))
    if not source.text.strip():
        raise Http404("This request has no diff.")
    try:
        file = diffview.file_at(source.text, index, source.files)
    except diffview.DiffError as error:
        raise Http404("The diff could not be read.") from error
    if file is None:
        raise Http404("No such file in the diff.")
    return file


@require_GET
def request_file(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One file of the diff, rendered on demand (a large one with ?full=1)."""
    approval = _get_request_for_user(request, pk)
    file = _file_of(approval, index)
    view = diffview.render_file(file, index, approval.findings, force=request.GET.get("full") == "1")
    context = {"approval": approval, "goal": approval.goal, "file": view}
    template = "approvals/detail.html#file_body" if request.htmx else "approvals/file.html"
    return render(request, template, context)


@require_GET
def request_files(request: HttpRequest, pk: int) -> HttpResponse:
    """The file list past the first page of a very large diff, a page at a time (?start=N)."""
    approval = _get_request_for_user(request, pk)
    source = _diff_source(approval, _step_of(approval))
    start = request.GET.get("start", "0")
    if not source.text.strip() or not start.isdigit():
        raise Http404("No such files.")
    start = int(start)
    try:
        all_files, _ = source.files_of()
    except diffview.DiffError as error:
        raise Http404("The diff could not be read.") from error
    end = start + diffview.LISTED_FILES
    files = [diffview.summarise(file, start + n) for n, file in enumerate(all_files[start:end])]
    context = {
        "approval": approval,
        "goal": approval.goal,
        "files": files,
        "start": start,
        "more_from": end if end < len(all_files) else None,
    }
    template = "approvals/detail.html#file_sections" if request.htmx else "approvals/files.html"
    return render(request, template, context)


def _extension(data: QueryDict) -> dict[str, int]:
    name = data.get("extend_budget", "")
    amount = data.get("extend_by", "").strip()
    if not amount.isdigit() or int(amount) <= 0:
        raise DecisionRefused("invalid", "Extend the budget by a whole number above 0.")
    return {name: int(amount)}


@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve, reject, stop or extend: a form post and redirect, or a fragment for HTMX.

    From the inbox (``from=inbox``) HTMX gets the card's replacement (nothing once settled); from the approval
    page, the decision area. A refused decision answers 200 with its message in place, so htmx swaps it.
    """
    approval = _get_request_for_user(request, pk)
    if not approval.goal.can_decide(request.user):
        return HttpResponseForbidden("The goal's viewers see its requests; only its owner and approvers decide.")
    from_inbox = request.POST.get("from") == "inbox"
    verdict = request.POST.get("verdict", "")
    comment = request.POST.get("comment", "")
    confirmed = request.POST.get("confirm") == "1"
    if verdict == Verdict.APPROVE and goal_risk(approval.goal) == "high" and not confirmed and approval.is_pending:
        return _ask_to_confirm(request, approval, comment, from_inbox)
    device = request.POST.get("device", "").strip() or describe_device(request.headers.get("user-agent", ""))
    try:
        extend = _extension(request.POST) if verdict == Verdict.EXTEND else None
        result = approval.decide(request.user, verdict, comment=comment, device=device, extend=extend)
    except DecisionRefused as refusal:
        approval.refresh_from_db()
        return _refused(request, approval, refusal, from_inbox, comment)
    return _decided(request, result, from_inbox)


def _detail_url(approval: ApprovalRequest) -> str:
    return reverse("approvals:detail", args=[approval.pk])


def _ask_to_confirm(request: HttpRequest, approval: ApprovalRequest, comment: str, from_inbox: bool) -> HttpResponse:
    """High risk: the first Approve only shows a Confirm approve button; the second carries confirm=1."""
    if request.htmx and from_inbox:
        return HttpResponseClientRedirect(_detail_url(approval) + "#decision")
    if request.htmx:
        return _decision_area(request, approval, confirming=True, comment=comment)
    return render(request, "approvals/detail.html", _page_context(request, approval, confirming=True, comment=comment))


def _refused(
    request: HttpRequest, approval: ApprovalRequest, refusal: DecisionRefused, from_inbox: bool, comment: str
) -> HttpResponse:
    message = str(refusal)
    if not request.htmx:
        messages.error(request, message)
        return redirect("home" if from_inbox else _detail_url(approval))
    if from_inbox:
        context = {"approval": approval, "refusal": message, "oob_count": True}
        response = render(request, "approvals/inbox.html#refused_card", context)
    else:
        response = _decision_area(request, approval, refusal=message, comment=comment, oob_count=True)
    return trigger_client_event(
        response, "approvalRefused", {"id": approval.pk, "code": refusal.code, "message": message}
    )


def _decided(request: HttpRequest, result: DecisionResult, from_inbox: bool) -> HttpResponse:
    approval, decision = result.request, result.decision
    if result.settled:
        message = f"{DONE_MESSAGES[decision.verdict]}: {approval.goal.title}."
    else:
        message = f"Your approval is recorded: {approval.goal.title} waits for a second approver."
    if not request.htmx:
        messages.success(request, message)
        return redirect("home" if from_inbox else _detail_url(approval))
    if from_inbox:
        response = HttpResponse(_inbox_fragment(request, approval, result.settled, message))
    else:
        response = _decision_area(request, approval, done=message, oob_count=True, decided_here=result.settled)
    return trigger_client_event(
        response,
        "approvalDecided",
        {"id": approval.pk, "verdict": decision.verdict, "status": approval.status, "settled": result.settled},
    )


def _inbox_fragment(request: HttpRequest, approval: ApprovalRequest, settled: bool, message: str) -> str:
    """What replaces a card after a decision: nothing once settled, else the card waiting for another approver;
    with the header count, and the empty state once nothing is left."""
    context = {"oob_count": True, "done": message}
    if not settled:
        fresh = ApprovalRequest.objects.select_related("goal").prefetch_related(
            Prefetch("decisions", queryset=Decision.objects.select_related("user"))
        )
        context["card"] = _cards([fresh.get(pk=approval.pk)], request.user)[0]
    if not _pending_for(request.user).exists():
        context.update(_idle_context(request.user), show_empty=True)
    return render_to_string("approvals/inbox.html#decided", context, request=request)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("accept", "") and not request.htmx


@require_POST
def open_pull_request(request: HttpRequest, pk: int) -> HttpResponse:
    """"Open pull request" on a done review: a form post and redirect, the pull-request part of the page for htmx,
    or JSON ({"url", "number", "existing"}; a refusal is 4xx with {"detail": reason})."""
    approval = _get_request_for_user(request, pk)
    if not approval.goal.can_decide(request.user):
        message = "Only the goal's owner and approvers open its pull request."
        return JsonResponse({"detail": message}, status=403) if _wants_json(request) else HttpResponseForbidden(message)
    try:
        opened = pull_request.open_for(approval, request.user)
    except pull_request.PullRequestRefused as refusal:
        message = str(refusal)
        if _wants_json(request):
            return JsonResponse({"detail": message}, status=409)
        if request.htmx:
            return _pull_request_area(request, approval, pr_error=message)
        messages.error(request, message)
        return redirect(_detail_url(approval) + "#pull-request")
    if _wants_json(request):
        return JsonResponse(opened, status=200 if opened["existing"] else 201)
    said = "This pull request was open already" if opened["existing"] else "Pull request opened"
    if request.htmx:
        return _pull_request_area(request, approval, pr_done=said)
    messages.success(request, f"{said}: {opened['url']}")
    return redirect(_detail_url(approval) + "#pull-request")


def _pull_request_area(request: HttpRequest, approval: ApprovalRequest, **extra) -> HttpResponse:
    context = {"approval": approval, "goal": approval.goal,
               "done_review": pull_request.done_review(approval, request.user), **extra}  # fmt: skip
    return render(request, "approvals/detail.html#pull_request", context)

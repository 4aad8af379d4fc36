import os

import redis
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.db.models import Count, Max, Prefetch
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from approvals.models import ApprovalRequest
from config import liveness
from goals import charts, lint, loop, sandbox
from goals.forms import GoalForm, contract_from_data
from goals.models import Goal, GoalNotReady, GoalStatus, WorkerHeartbeat, command_checks
from goals.tasks import enqueue_baseline, enqueue_step

# The goal page links to each pending request, up to this many (an agent elsewhere may have many waiting).
MAX_PENDING_LINKS = 20
LIST_FIELDS = ("constraints", "protected_paths", "scope_paths", "evidence", "network_hosts")


def _get_goal_for_user(request: HttpRequest, pk: int) -> Goal:
    """The goal if the user owns it, approves for it or views it; 404 for everyone else, never a hint it exists."""
    return get_object_or_404(Goal.objects.visible_to(request.user), pk=pk)


@require_GET
def goal_list(request: HttpRequest) -> HttpResponse:
    visible = Goal.objects.visible_to(request.user)
    status = request.GET.get("status", "")
    if status not in GoalStatus.values:
        status = ""
    goals = visible.filter(status=status) if status else visible
    counts = dict(
        Goal.objects.filter(pk__in=visible.values("pk"))
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    tabs = [{"value": "", "label": "All", "count": sum(counts.values())}] + [
        {"value": value, "label": label, "count": counts.get(value, 0)}
        for value, label in GoalStatus.choices
        if counts.get(value) or value == status
    ]
    pending = Prefetch(
        "approval_requests", queryset=ApprovalRequest.objects.pending().order_by("created_at"), to_attr="pending"
    )
    page = list(goals.select_related("owner").annotate(last_step=Max("steps__number")).prefetch_related(pending)[:200])
    for goal in page:
        goal.sentence = goal.status_sentence(pending=goal.pending, last_step=goal.last_step or 0)
    context = {
        "goals": page,
        "status": status,
        "tabs": tabs,
    }
    template = "goals/list.html#goal_list" if request.htmx else "goals/list.html"
    return render(request, template, context)


def _form_with_row_change(request: HttpRequest, goal: Goal | None) -> GoalForm | None:
    """Without JavaScript, Add and Remove row buttons post the whole form: re-render it, save nothing."""
    add = request.POST.get("add_row")
    remove = request.POST.get("remove_row")
    if add not in LIST_FIELDS and not remove:
        return None
    data = request.POST.copy()
    if add == "evidence":
        for suffix, blank in (("kind", "command"), ("text", ""), ("exit", "0")):
            data.appendlist(f"evidence_{suffix}", blank)
    elif add:
        data.appendlist(add, "")
    else:
        field, _, index = remove.partition(":")
        names = [f"evidence_{s}" for s in ("kind", "text", "exit")] if field == "evidence" else [field]
        if field in LIST_FIELDS and index.isdigit():
            for name in names:
                values = data.getlist(name)
                if int(index) < len(values):
                    del values[int(index)]
                data.setlist(name, values)
    return GoalForm(data, instance=goal, owner=goal.owner if goal else request.user)


def _render_form(request: HttpRequest, form: GoalForm, goal: Goal | None, show_errors: bool, status=200):
    contract = contract_from_data(form.data) if form.is_bound else (goal.contract() if goal else None)
    findings = lint.lint(contract) if contract else []
    context = {
        "form": form,
        "goal": goal,
        "show_errors": show_errors,
        "findings": findings,
        "ready": bool(contract) and lint.is_ready(findings),
        "can_mark_ready": goal is None or goal.status in (GoalStatus.DRAFT, GoalStatus.READY),
        # The goal page's baseline panel, shown in place beside the evidence rows (its button posts from here).
        **(_baseline_context(goal, request.user, in_form=True) if goal else {}),
    }
    return render(request, "goals/form.html", context, status=status)


def _save_goal(request: HttpRequest, form: GoalForm, goal: Goal | None) -> HttpResponse:
    created = goal is None
    goal = form.save()
    if created:
        goal.record("created", "Goal written.", request.user)
    else:
        goal.record("edited", "Contract edited.", request.user, fields=form.changed_data)
    findings = goal.lint()
    if goal.status not in (GoalStatus.DRAFT, GoalStatus.READY):
        # A failed goal stays failed until Retry or Resume: saying "ready" here would contradict its status.
        state = goal.get_status_display().lower()
        then = " Retry or Resume it when you are ready." if goal.status == GoalStatus.FAILED else ""
        messages.success(request, f"Saved. The goal is still {state}.{then}")
    elif "mark_ready" in request.POST:
        try:
            goal.mark_ready(request.user)
            messages.success(request, "Saved and ready: the contract passes the linter.")
        except GoalNotReady:
            messages.warning(request, "Saved as a draft: fix the blocking findings to mark it ready.")
    elif goal.status == GoalStatus.READY and not lint.is_ready(findings):
        goal.back_to_draft(request.user, "Back to draft: the edited contract has blocking findings.")
        messages.warning(request, "Back to draft: the edited contract has blocking findings.")
    else:
        messages.success(request, "Saved.")
    return redirect(goal)


def goal_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = _form_with_row_change(request, None)
        if form is not None:
            return _render_form(request, form, None, show_errors=False)
        form = GoalForm(request.POST, owner=request.user)
        if form.is_valid():
            return _save_goal(request, form, None)
        return _render_form(request, form, None, show_errors=True, status=422)
    return _render_form(request, GoalForm(owner=request.user), None, show_errors=False)


def goal_edit(request: HttpRequest, pk: int) -> HttpResponse:
    goal = _get_goal_for_user(request, pk)
    if not goal.can_edit(request.user):
        return HttpResponseForbidden("Only the goal's owner can change its contract.")
    if request.method == "POST":
        form = _form_with_row_change(request, goal)
        if form is not None:
            return _render_form(request, form, goal, show_errors=False)
        form = GoalForm(request.POST, instance=goal, owner=goal.owner)
        if form.is_valid():
            return _save_goal(request, form, goal)
        return _render_form(request, form, goal, show_errors=True, status=422)
    return _render_form(request, GoalForm(instance=goal, owner=goal.owner), goal, show_errors=False)


@require_GET
def goal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    goal = _get_goal_for_user(request, pk)
    findings = goal.lint()
    context = {
        "goal": goal,
        "findings": findings,
        "ready": lint.is_ready(findings),
        "can_edit": goal.can_edit(request.user),
        "approvers": goal.approvers.order_by("username"),
        "viewers": goal.viewers.order_by("username"),
        "path_rules": goal.path_rules().describe(),
        "paths_detected": "rules" in (goal.detected_paths or {}),
        **_live_context(goal, request.user),
        **_baseline_context(goal, request.user),
    }
    template = "goals/detail.html#live" if request.htmx else "goals/detail.html"
    return render(request, template, context)


def _live_context(goal: Goal, user) -> dict:
    """What changes while the goal runs: status, controls, budgets used, the burn-down and the timeline."""
    steps = list(goal.steps.order_by("number"))
    usage = goal.usage()
    budgets = goal.budgets
    meters = [
        {
            "label": label,
            "used": used,
            "allowed": budgets.get(name),
            "unit": unit,
            "percent": min(100, round(100 * used / budgets[name])) if budgets.get(name) else None,
        }
        for name, label, used, unit in (
            ("steps", "Steps", usage.steps, ""),
            ("tokens", "Tokens", usage.tokens, ""),
            ("minutes", "Time", round(usage.minutes), "min"),
            ("files_total", "Files", usage.files_total, ""),
            ("approvals", "Approvals", usage.approvals, ""),
        )
    ]
    rows, touched, kept_files = [], set(), 0
    for step in steps:
        if step.kept:
            touched |= {f.get("path") for f in step.files}
            kept_files = len(touched)
        elapsed = (
            (step.finished_at - goal.started_at).total_seconds() / 60
            if step.finished_at and goal.started_at
            else 0
        )
        rows.append({"tokens": step.tokens, "minutes": elapsed, "files": kept_files})
    can_control = goal.can_edit(user)
    pending = list(goal.approval_requests.pending().order_by("created_at")[:MAX_PENDING_LINKS])
    failed = can_control and goal.status == GoalStatus.FAILED
    return {
        "steps": list(reversed(steps)),
        "meters": meters,
        "chart": charts.burn_down(rows, budgets),
        "chart_budget_y": charts.budget_line_y(),
        "events": goal.events.select_related("actor")[:30],
        # Not "pending_count": that name is the header badge's, the person's total, on every page.
        "pending_requests": pending,
        "status_sentence": goal.status_sentence(pending=pending),
        "sandbox": {
            "available": sandbox.sandbox_available(),
            "reason": sandbox.sandbox_reason(),
            "isolation": (
                "No sandbox for this agent: staff set its profile to run unsandboxed, with the worker's own rights."
                if goal.agent_profile.run_unsandboxed
                else sandbox.describe(loop.box_for(goal, loop.workspace_for(goal), loop.agent_egress(goal)))
            ),
            "own_user": not sandbox.identity().switched,
        },
        "branch": goal.branch,
        "live": goal.status in (GoalStatus.RUNNING, GoalStatus.WAITING, GoalStatus.STALLED),
        "controls": {
            "start": can_control and goal.status == GoalStatus.READY,
            "pause": can_control
            and goal.status in (GoalStatus.RUNNING, GoalStatus.WAITING, GoalStatus.STALLED),
            "resume": can_control and goal.status in (GoalStatus.PAUSED, GoalStatus.STALLED, GoalStatus.FAILED),
            "retry": failed,
            "cancel": can_control and goal.status not in loop.FINAL_STATUSES,
        },
    }


@require_POST
def goal_control(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Start, Pause, Resume and Cancel: a plain post and redirect, or the live panel for HTMX."""
    goal = _get_goal_for_user(request, pk)
    if not goal.can_edit(request.user):
        return HttpResponseForbidden("Only the goal's owner can start, pause, resume or cancel it.")
    try:
        if action == "start":
            loop.start(goal, request.user)
            enqueue_step(goal.pk)
        elif action == "pause":
            loop.pause(goal, request.user)
        elif action == "resume":
            if loop.resume(goal, request.user):
                enqueue_step(goal.pk)
        elif action == "retry":
            if loop.retry(goal, request.user):
                enqueue_step(goal.pk)
        elif action == "cancel":
            loop.cancel(goal, request.user)
        else:
            raise Http404("No such action.")
        messages.success(request, f"Goal {goal.get_status_display().lower()}.")
        refused = ""
    except loop.ControlRefused as error:
        refused = str(error)
        if not request.htmx:  # over htmx the panel itself says why: a message would show up a page later
            messages.error(request, refused)
    if request.htmx:
        goal.refresh_from_db()
        context = {"goal": goal, "control_refused": refused, **_live_context(goal, request.user)}
        return render(request, "goals/detail.html#live", context)
    return redirect(goal)


def _baseline_context(goal: Goal, user, *, in_form: bool = False) -> dict:
    """The evidence baseline panel: the newest baseline of the goal's current checks, and the Check button.
    ``in_form``: the panel sits inside the ticket form, so its button posts a form of its own from outside."""
    baseline = goal.current_baseline()
    lost = baseline is not None and baseline.pending and baseline.created_at < timezone.now() - loop.BASELINE_LOST_AFTER
    return {
        "baseline": baseline,
        "baseline_lost": lost,
        "checking": baseline is not None and baseline.pending and not lost,
        "can_check": goal.can_edit(user) and bool(command_checks(goal.evidence)),
        "in_form": in_form,
    }


@require_http_methods(["GET", "POST"])
def goal_check_evidence(request: HttpRequest, pk: int) -> HttpResponse:
    """POST: run the goal's checks once on its base branch, in the sandbox, as the baseline the done review
    compares against. GET (htmx): the baseline panel, which polls while the check runs.
    ``?from=form``: asked from the ticket form, which shows the panel in place (and gets the post back)."""
    goal = _get_goal_for_user(request, pk)
    in_form = request.GET.get("from") == "form"
    if request.method == "POST":
        if not goal.can_edit(request.user):
            return HttpResponseForbidden("Only the goal's owner can check its evidence.")
        if not command_checks(goal.evidence):
            messages.error(request, "The goal has no command checks to run: add a command you would type first.")
        else:
            baseline = loop.request_baseline(goal, request.user)
            enqueue_baseline(baseline.pk)  # a second message for the same baseline claims nothing
            if not request.htmx:  # the panel itself says "checking…"
                messages.info(request, f"Checking the evidence on {goal.base_branch}…")
    if not request.htmx:
        return redirect(reverse("goals:edit", args=[goal.pk]) + "#baseline" if in_form else goal)
    context = {"goal": goal, **_baseline_context(goal, request.user, in_form=in_form)}
    return render(request, "goals/detail.html#baseline", context)


@require_POST
def goal_mark_ready(request: HttpRequest, pk: int) -> HttpResponse:
    goal = _get_goal_for_user(request, pk)
    if not goal.can_edit(request.user):
        return HttpResponseForbidden("Only the goal's owner can mark it ready.")
    if goal.status != GoalStatus.DRAFT:
        messages.info(request, f"The goal is already {goal.get_status_display().lower()}.")
        return redirect(goal)
    try:
        goal.mark_ready(request.user)
        messages.success(request, "Ready: the contract passes the linter.")
    except GoalNotReady as error:
        blocking = sum(1 for f in error.findings if f.severity == lint.BLOCKING)
        messages.error(request, f"Still a draft: {blocking} blocking finding(s) to fix first.")
    return redirect(goal)


@require_POST
def lint_preview(request: HttpRequest) -> HttpResponse:
    """The live checklist beside the goal form: the findings for what is typed so far."""
    contract = contract_from_data(request.POST)
    findings = lint.lint(contract)
    context = {"findings": findings, "ready": lint.is_ready(findings), "contract": contract}
    return render(request, "goals/form.html#lint_checklist", context)


@require_GET
def new_row(request: HttpRequest, field: str) -> HttpResponse:
    """One blank row for a list field, appended by HTMX."""
    if field not in LIST_FIELDS:
        raise Http404("No such list.")
    partial = "evidence_row" if field == "evidence" else "text_row"
    context = {
        "field": field,
        "row": {"kind": "command", "text": "", "exit": 0} if field == "evidence" else "",
    }
    return render(request, f"goals/form.html#{partial}", context)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Each part of Goalpost: web (this answer), database, Redis, worker (a fresh heartbeat in the database and
    a worker alive now), beat. 200 and "ok" when all are up; 503 otherwise, "degraded" while the web still
    serves (database and Redis up) and "unhealthy" when it cannot. `down` names what is down."""
    children = liveness.launcher_children()
    checks = {"web": {"ok": True, "pid": os.getpid()}, "database": _check_database(), "redis": _check_redis()}
    checks["worker"] = (
        _check_worker(children, redis_up=checks["redis"]["ok"])
        if checks["database"]["ok"]
        else {"ok": False, "error": "database down"}
    )
    checks["beat"] = (
        liveness.component_state("beat", children) if checks["redis"]["ok"] else {"ok": False, "error": "Redis down"}
    )
    down = [name for name, check in checks.items() if not check["ok"]]
    status = "ok" if not down else "unhealthy" if {"database", "redis"} & set(down) else "degraded"
    return JsonResponse({"status": status, "down": down, **checks}, status=200 if not down else 503)


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return {"ok": True, "vendor": connection.vendor}
    except Exception as error:  # any driver error means the database is not usable
        return {"ok": False, "vendor": connection.vendor, "error": str(error)[:200]}


def _check_redis() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
        return {"ok": True}
    except redis.RedisError as error:
        return {"ok": False, "error": str(error)[:200]}
    finally:
        client.close()


def _check_worker(children: dict | None, redis_up: bool) -> dict:
    """The newest heartbeat in the database (a worker took a task off the queue lately) and a worker alive now."""
    newest = WorkerHeartbeat.objects.order_by("-seen_at").first()
    if newest is None:
        return {"ok": False, "error": "no worker has reported yet", "last_heartbeat": None}
    age = (timezone.now() - newest.seen_at).total_seconds()
    ok = age <= settings.WORKER_HEARTBEAT_MAX_AGE.total_seconds()
    result = {
        "ok": ok,
        "last_heartbeat": newest.seen_at.isoformat(),
        "age_s": round(age, 1),
        "worker": newest.hostname,
    }
    if not ok:
        result["error"] = f"last heartbeat {round(age)} s ago"
    if not redis_up:
        return {**result, "ok": False, "error": "Redis down", "alive": []}
    now = liveness.component_state("worker", children)
    result["alive"] = now["alive"]
    if "launcher" in now:
        result["launcher"] = now["launcher"]
    if ok and not now["ok"]:
        result.update(ok=False, error=now["error"])
    return result

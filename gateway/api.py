"""The agent gateway's operations of the JSON API under /api/v1/ (django-ninja; config/api.py has the plumbing,
config/urls.py puts the API together): agents propose steps, wait for decisions, report what they did.

Agents authenticate with their goal's token (`Authorization: Bearer <token>`, AgentTokenAuth): a missing, unknown,
expired or revoked token is 401; on a goal's URL another goal's token gets 404, as an unknown goal does. A token
never decides (no operation here lets it). The operations that wait (the decision long-poll, the Claude Code
hook) are async and hold neither a thread nor a database connection while they wait: they sleep on one Redis
subscription per process, whose message carries the outcome, and read the database (briefly, in the loop's shared
worker threads) when they start, at the request's expiry, and after a gap in the subscription.

Claude Code's hook is the exception to the API's error shape: Claude Code lets a tool call through when its HTTP
hook answers anything but 2xx, so every refusal there (a bad token, a body too large, malformed or not a hook
input) is a 200 deny that says why.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from functools import wraps

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from ninja import Query, Router
from ninja.decorators import decorate_view
from ninja.errors import HttpError
from ninja.responses import Status
from ninja.security.base import AuthBase

from config.api import SignedIn, json_object, refusals
from config.bodies import Unreadable, bad_request, request_json
from config.pubsub import READY_TIMEOUT_S, Listener, per_loop
from gateway import calls as gateway
from gateway import changes, schemas
from gateway.models import AgentToken, AlwaysAllowRule, GatewaySettings, RuleKind, TokenRefused, WhenUnanswered
from goals.models import Goal

log = logging.getLogger(__name__)

DECISION_WAIT_MAX_S = 25.0

router = Router(tags=["gateway"])


def hook_wait_default() -> float:
    return float(getattr(settings, "GOALPOST_HOOK_WAIT_S", 55))


def hook_wait_max() -> float:
    return float(getattr(settings, "GOALPOST_HOOK_WAIT_MAX_S", 600))


# --- the agent's token ----------------------------------------------------------------------------------------


def bearer_secret(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def token_for(secret: str, goal_id: int | None) -> AgentToken:
    """The token for a secret, scoped to a goal when the URL names one; HttpError 401 (or the token's own 403)
    or 404 otherwise."""
    try:
        token = AgentToken.authenticate(secret)
    except TokenRefused as refusal:
        raise HttpError(refusal.status, str(refusal)) from refusal
    if goal_id is not None and token.goal_id != goal_id:
        raise HttpError(404, f"No goal {goal_id}.")  # another goal's answers as an unknown one: no hint it exists
    return token


class AgentTokenAuth(AuthBase):
    """A goal's agent token, `Authorization: Bearer gp_…` (request.auth is the AgentToken, its goal loaded).

    The waiting operations use `waits=True`: the same check, awaited, its database read in the loop's shared
    worker threads. `optional=True` lets a request without a bearer token try the next credential (a session)."""

    openapi_type = "http"
    openapi_scheme = "bearer"
    openapi_description = "The goal's agent token: `Authorization: Bearer gp_…`."

    def __init__(self, *, waits: bool = False, optional: bool = False):
        super().__init__()
        self.is_async = waits
        self.optional = optional

    def __call__(self, request: HttpRequest):
        secret = bearer_secret(request)
        if self.optional and not secret:
            return None
        match = request.resolver_match
        goal_id = match.kwargs.get("goal_id") if match else None
        if self.is_async:
            return in_worker_thread(token_for)(secret, goal_id)
        return token_for(secret, goal_id)


agent_token = AgentTokenAuth()
waiting_agent_token = AgentTokenAuth(waits=True)


def goal_summary(goal: Goal) -> dict:
    usage = goal.usage()
    return {
        "id": goal.pk,
        "title": goal.title,
        "objective": goal.objective,
        "constraints": list(goal.constraints),
        "done_criteria": goal.done_criteria,
        "status": goal.status,
        "risk": goal.contract().effective_risk,
        "protected_paths": list(goal.protected_paths),
        "scope_paths": list(goal.scope_paths),
        "repository": goal.repository.source,
        "evidence": [
            {"command": check.get("command", ""), "expect_exit": check.get("expect_exit", 0)}
            for check in goal.evidence
            if isinstance(check, dict) and check.get("kind") == "command"
        ],
        "baseline": baseline.as_dict() if (baseline := goal.current_baseline()) is not None else None,
        "budgets": goal.budgets,
        "used": {
            "minutes": round(usage.minutes, 1),
            "steps": usage.steps,
            "tokens": usage.tokens,
            "approvals": usage.approvals,
        },
        "when_unanswered": GatewaySettings.for_goal(goal).when_unanswered,
    }


# --- what the agent reads and reports -------------------------------------------------------------------------


@router.get(
    "/goals/{int:goal_id}",
    auth=agent_token,
    response={200: schemas.Goal, **refusals(401, 404)},
    url_name="api_goal",
    operation_id="getGoal",
    summary="The goal's contract, status, budgets and what is used",
)
def goal_detail(request: HttpRequest, goal_id: int) -> dict:
    return goal_summary(request.auth.goal)


@router.post(
    "/goals/{int:goal_id}/steps",
    auth=agent_token,
    response={200: schemas.StepVerdict, **refusals(400, 401, 404, 413)},
    url_name="api_propose_step",
    operation_id="proposeStep",
    summary="Propose a tool call; the gates answer allow, deny or ask",
    description=(
        "`allow`: no gate fired (or an always-allow rule covers the call). `deny`: a gate says stop (protected "
        "path, lock or generated file, budget used up), the goal is not running, or the call writes outside the "
        "goal's repository; `stop` is true when the agent should stop altogether. `ask`: an approval request is "
        "open for the goal's people; wait for it at `request.decision_url`. The same call proposed again joins that "
        "request, and once it is decided answers with its decision."
    ),
)
def propose_step(request: HttpRequest, goal_id: int, proposal: schemas.StepProposal) -> dict:
    agent = proposal.agent if proposal.agent in gateway.AGENT_LABELS else "api"
    call = tool_call_from(proposal.tool or proposal.tool_name, proposal.input or proposal.tool_input, proposal, agent)
    try:
        outcome = gateway.propose(request.auth.goal, call, request.auth)
    except gateway.BadToolCall as error:
        raise HttpError(400, str(error)) from error
    return outcome.as_dict()


@router.post(
    "/goals/{int:goal_id}/changes",
    auth=agent_token,
    response={200: schemas.ChangesVerdict, **refusals(400, 401, 404, 413)},
    url_name="api_report_changes",
    operation_id="reportChanges",
    summary="Report what really changed after a tool call: the working tree's diff, judged by the gates",
    description=(
        "`deny` with `stop: true`: a gate says stop on the real diff (a protected path, a lock or generated file, "
        "a budget used up); the goal is paused as the phone's Stop does, and a stop request with the diff opens "
        "for its people (`request`). The same diff posted again joins that request. `allow`: the files count in "
        "the goal's usage; `stop` is true when the goal is not running."
    ),
)
def report_changes(request: HttpRequest, goal_id: int, body: schemas.Changes) -> dict:
    reported = changes.Changes(
        diff=body.diff,
        source=body.source,
        cwd=body.cwd,
        session_id=body.session_id or "",
        tool_use_id=body.tool_use_id or "",
        tool=body.tool or "",
    )
    try:
        outcome = changes.judge_changes(request.auth.goal, reported, request.auth)
    except changes.BadChanges as error:
        raise HttpError(400, str(error)) from error
    return outcome.as_dict()


def tool_call_from(tool: str | None, tool_input: dict | None, fields, agent: str) -> gateway.ToolCall:
    if not tool or not tool.strip():
        raise HttpError(400, "`tool` is required: the tool's name, e.g. Bash, Write, Edit, MultiEdit, apply_patch.")
    return gateway.ToolCall(
        tool=tool.strip(),
        input=tool_input or {},
        cwd=fields.cwd or "",
        session_id=fields.session_id or "",
        tool_use_id=fields.tool_use_id or "",
        agent=agent,
    )


@router.post(
    "/goals/{int:goal_id}/evidence",
    auth=agent_token,
    response={201: schemas.EvidenceRecorded, **refusals(400, 401, 404, 413)},
    url_name="api_report_evidence",
    operation_id="reportEvidence",
    summary="Report a check the agent ran: command, exit code, output tail",
    description="Failing checks with the same signature several times in a row ask a person.",
)
def report_evidence(request: HttpRequest, goal_id: int, evidence: schemas.Evidence) -> Status:
    if not evidence.command and not evidence.name:
        raise HttpError(400, "`command` is required: the check the agent ran.")
    if evidence.exit_code is None and not evidence.timed_out:
        raise HttpError(400, "`exit_code` is required (or `timed_out`: true).")
    report = gateway.record_evidence(
        request.auth.goal,
        request.auth,
        command=evidence.command or "",
        exit_code=evidence.exit_code,
        output_tail=evidence.output_tail or "",
        name=evidence.name or "",
        expected_exit=evidence.expected_exit,
        failing_tests=tuple(evidence.failing_tests or ()),
        timed_out=evidence.timed_out,
        tokens=evidence.tokens,
    )
    recorded = {"id": report.pk, "passed": report.passed, "failure_signature": report.failure_signature or None}
    return Status(201, recorded)


@router.post(
    "/goals/{int:goal_id}/usage",
    auth=agent_token,
    response={200: schemas.UsageRecorded, **refusals(400, 401, 404, 413)},
    url_name="api_report_usage",
    operation_id="reportUsage",
    summary="Report tokens used since the last report (they count against the token budget)",
)
def report_usage(request: HttpRequest, goal_id: int, usage: schemas.Usage) -> dict:
    total = gateway.record_usage(request.auth.goal, request.auth, usage.tokens)
    return {"reported_tokens": total, "budget_tokens": request.auth.goal.budget_tokens}


@router.post(
    "/goals/{int:goal_id}/heartbeat",
    auth=agent_token,
    response={200: schemas.Heartbeat, **refusals(400, 401, 404, 413)},
    url_name="api_heartbeat",
    operation_id="heartbeat",
    summary="The agent is alive: a goal silent past the stall limit becomes a stall",
    openapi_extra={
        "requestBody": {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    },
)
def heartbeat(request: HttpRequest, goal_id: int) -> dict:
    if request.content_type == "application/json" and request.body.strip():
        json_object(request.body)  # the body is optional (and ignored), but malformed JSON is still an error
    goal = request.auth.goal
    gateway.heartbeat(goal)
    reason, stop = gateway.goal_state_refusal(goal) or ("", False)
    return {"goal": goal.pk, "status": goal.status, "stop": stop, "reason": reason}


@router.post(
    "/goals/{int:goal_id}/done",
    auth=agent_token,
    response={200: schemas.DoneReview, **refusals(400, 401, 404, 413)},
    url_name="api_claim_done",
    operation_id="claimDone",
    summary="The agent says the goal is done: open the done review (the owner's final word)",
    description=(
        "Opens a done request for the goal's people, with the checks the agent reported; wait for it at "
        "`request.decision_url`. Approved: the goal is done. Rejected: the comment says what is still missing; keep "
        "working. A claim while a done review is open joins it. `deny` (with `stop`) when the goal is not running."
    ),
)
def claim_done(request: HttpRequest, goal_id: int, claim: schemas.DoneClaim) -> dict:
    outcome = gateway.claim_done(request.auth.goal, request.auth, claim.summary.strip() or claim.summary)
    answer = outcome.as_dict()
    return {key: answer[key] for key in ("verdict", "reason", "request", "joined", "stop")}


# --- always-allow rules: agents read them, the owner (signed in) changes them ---------------------------------

may_read_rules = [
    AgentTokenAuth(optional=True),
    SignedIn("Send the goal's agent token as `Authorization: Bearer <token>`, or sign in."),
]
owner_signed_in = SignedIn(
    "Sign in first: changing rules needs the owner's login session.",
    tokens_refused="An agent token cannot change the goal's rules: only its owner can, signed in.",
)


def rule_dict(rule: AlwaysAllowRule) -> dict:
    return {
        "id": rule.pk,
        "kind": rule.kind,
        "value": rule.value,
        "created_by": rule.created_by.get_username() if rule.created_by else None,
        "created_at": rule.created_at.isoformat(),
        "revoked_at": rule.revoked_at.isoformat() if rule.revoked_at else None,
    }


def visible_goal(request: HttpRequest, goal_id: int) -> Goal:
    """The goal, for its agent's token or a person who may see it; 404 for anyone else."""
    if isinstance(request.auth, AgentToken):
        return request.auth.goal
    goal = Goal.objects.visible_to(request.auth).filter(pk=goal_id).first()
    if goal is None:
        raise HttpError(404, f"No goal {goal_id}.")
    return goal


def create_rule(goal: Goal, user, kind: str, value: str) -> AlwaysAllowRule:
    """Add an always-allow rule (the same active rule twice is one rule); ValueError saying why not."""
    value = " ".join(value.split()) if kind == RuleKind.COMMAND_PREFIX else value.strip()
    if kind not in RuleKind.values:
        raise ValueError("`kind` must be command_prefix or path.")
    if not value or len(value) > 500:
        raise ValueError("`value` must be 1 to 500 characters.")
    if kind == RuleKind.COMMAND_PREFIX and gateway._simple_command(value) is None:
        raise ValueError("A command prefix is plain words: no shell operators, quotes aside.")
    existing = goal.always_allow_rules.active().filter(kind=kind, value=value).first()
    if existing:
        return existing
    rule = AlwaysAllowRule.objects.create(goal=goal, kind=kind, value=value, created_by=user)
    goal.record("rule", f"Always-allow rule added: {rule}.", user, rule=rule.pk)
    return rule


@router.get(
    "/goals/{int:goal_id}/rules",
    auth=may_read_rules,
    response={200: schemas.Rules, **refusals(400, 401, 404)},
    url_name="api_rules",
    operation_id="listRules",
    summary="The goal's always-allow rules (a token of the goal, or a person who sees it)",
)
def rules(
    request: HttpRequest, goal_id: int, all: bool = Query(False, description="Include revoked rules.")
) -> dict:
    goal = visible_goal(request, goal_id)
    listed = goal.always_allow_rules.all() if all else goal.always_allow_rules.active()
    return {"rules": [rule_dict(rule) for rule in listed.select_related("created_by")]}


def owned_goal(request: HttpRequest, goal_id: int) -> Goal:
    goal = visible_goal(request, goal_id)
    if not goal.can_edit(request.auth):
        raise HttpError(403, "Only the goal's owner can change its rules.")
    return goal


@router.post(
    "/goals/{int:goal_id}/rules",
    auth=owner_signed_in,
    response={201: schemas.Rule, **refusals(400, 401, 403, 404, 413)},
    url_name="api_rules",
    operation_id="addRule",
    summary="Add an always-allow rule (the goal's owner, signed in, with the CSRF token)",
)
def add_rule(request: HttpRequest, goal_id: int, rule: schemas.RuleInput) -> Status:
    try:
        created = create_rule(owned_goal(request, goal_id), request.auth, rule.kind, rule.value)
    except ValueError as error:
        raise HttpError(400, str(error)) from error
    return Status(201, rule_dict(created))


@router.delete(
    "/goals/{int:goal_id}/rules/{int:rule_id}",
    auth=owner_signed_in,
    response={200: schemas.Rule, **refusals(401, 403, 404)},
    url_name="api_rule",
    operation_id="revokeRule",
    summary="Revoke an always-allow rule (the goal's owner, signed in, with the CSRF token)",
)
def revoke_rule(request: HttpRequest, goal_id: int, rule_id: int) -> dict:
    rule = owned_goal(request, goal_id).always_allow_rules.filter(pk=rule_id).first()
    if rule is None:
        raise HttpError(404, f"No rule {rule_id} on goal {goal_id}.")
    rule.revoke(request.auth)
    return rule_dict(rule)


# --- waiting without a thread ---------------------------------------------------------------------------------


def in_worker_thread(function: Callable) -> Callable:
    """Run database work in the loop's shared worker threads and give the connection back at once, so an
    agent that waits between two reads holds no connection (nor a thread of its own)."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            # Connections are per thread: this pool thread's is closed (or back in the pool) at once.
            for connection in connections.all(initialized_only=True):
                connection.close()

    return sync_to_async(run, thread_sensitive=False)


class Waiter:
    """One agent waiting on a request: woken with the outcome the publisher read, or with None to read it itself."""

    __slots__ = ("event", "outcome")

    def __init__(self):
        self.event = asyncio.Event()
        self.outcome: gateway.RequestOutcome | None = None


class SettledWaiters:
    """This process's waiting agents by request, woken by one subscription to the settled channel.

    A decision is published once with its outcome (`gateway.publish_settled`); this process reads it once and
    hands it to the request's waiters, so waiting costs no database read at all. When the subscription was lost
    and is made again, every waiter reads the database once, since a decision may have passed meanwhile.
    """

    def __init__(self):
        self.by_request: dict[int, set[Waiter]] = {}
        self.listener = Listener(gateway.settled_channel(), self.wake, self.wake_all)

    def watch(self, request_id: int) -> Waiter:
        waiter = Waiter()
        self.by_request.setdefault(request_id, set()).add(waiter)
        self.listener.hold()
        return waiter

    def unwatch(self, request_id: int, waiter: Waiter) -> None:
        waiters = self.by_request.get(request_id)
        if waiters is None or waiter not in waiters:
            return
        waiters.discard(waiter)
        if not waiters:
            del self.by_request[request_id]
        self.listener.release()

    def count(self) -> int:
        return sum(len(waiters) for waiters in self.by_request.values())

    async def wake(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            request_id = int(message["request"])
            outcome = gateway.RequestOutcome.from_dict(message["outcome"]) if message.get("outcome") else None
        except (TypeError, ValueError, KeyError):
            log.warning("unreadable message on the settled channel: %r", data[:200])
            return
        for waiter in self.by_request.get(request_id, ()):
            waiter.outcome = outcome
            waiter.event.set()

    async def wake_all(self) -> None:
        for waiters in self.by_request.values():
            for waiter in waiters:
                waiter.event.set()


def settled_waiters() -> SettledWaiters:
    return per_loop("gateway.settled_waiters", SettledWaiters)


# While Redis cannot be reached, a waiter reads the database this often instead of waiting to be woken.
UNSUBSCRIBED_RECHECK_S = 1.0


async def wait_for_outcome(
    request_id: int, timeout: float, check: Callable[[gateway.RequestOutcome | None], None] | None = None
) -> gateway.RequestOutcome | None:
    """The request's outcome once it settles, or its pending state after `timeout` seconds.

    Reads the database once the subscription is live (`check` sees that first read, and may refuse the wait by
    raising), then again only when woken without an outcome (a gap in the subscription), when the request's own
    expiry comes, or every second while Redis is unreachable.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiters = settled_waiters()
    waiter = waiters.watch(request_id)
    read = in_worker_thread(gateway.request_outcome)
    try:
        await waiters.listener.ready(timeout=min(timeout, READY_TIMEOUT_S))
        outcome = await read(request_id)
        if check is not None:
            check(outcome)
        while outcome is not None and not outcome.settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            nap = remaining if waiters.listener.subscribed.is_set() else min(remaining, UNSUBSCRIBED_RECHECK_S)
            if outcome.expires_at is not None:  # the read at the expiry moment expires it (and wakes the others)
                nap = min(nap, max(0.0, (outcome.expires_at - timezone.now()).total_seconds()) + 0.05)
            try:
                await asyncio.wait_for(waiter.event.wait(), timeout=nap)
            except TimeoutError:
                if nap >= remaining and waiters.listener.subscribed.is_set():
                    break  # the wait is over and nothing was published: still pending
            waiter.event.clear()
            woken, waiter.outcome = waiter.outcome, None
            outcome = woken if woken is not None else await read(request_id)
        return outcome
    finally:
        waiters.unwatch(request_id, waiter)


@router.get(
    "/requests/{int:request_id}/decision",
    auth=waiting_agent_token,
    response={200: schemas.Decision, **refusals(400, 401, 404)},
    url_name="api_request_decision",
    operation_id="getDecision",
    summary="Wait for a person's decision on a request (long-poll, at most 25 s; call again)",
    description="The request's state: `pending` after the wait (call again), or decided.",
)
async def request_decision(
    request: HttpRequest,
    request_id: int,
    wait: float = Query(
        0.0,
        ge=0,
        allow_inf_nan=False,
        description="Seconds to wait for a decision; 0 answers at once; more than 25 counts as 25.",
    ),
) -> dict:
    def answerable(outcome: gateway.RequestOutcome | None) -> None:
        if outcome is None or outcome.goal_id != request.auth.goal_id:  # another goal's: as unknown, no hint
            raise HttpError(404, f"No request {request_id}.")

    if wait > 0:  # one read, once the subscription is live: nothing decided after it is missed
        outcome = await wait_for_outcome(request_id, min(wait, DECISION_WAIT_MAX_S), check=answerable)
    else:
        outcome = await in_worker_thread(gateway.request_outcome)(request_id)
    answerable(outcome)
    if outcome.settled:
        await in_worker_thread(gateway.consume)(request_id)
    return outcome.as_dict()


# --- Claude Code's hook ---------------------------------------------------------------------------------------

TIMELINE_EVENTS = {
    "Notification": "Claude Code: {message}",
    "Stop": "Claude Code finished its turn.",
    "SubagentStop": "A Claude Code subagent finished.",
    "SessionStart": "Claude Code session started.",
    "SessionEnd": "Claude Code session ended.",
}


HOOK_TOO_LARGE = "input too large"
HOOK_FAILED = "Goalpost could not judge this call (a server error): try it again."
HOOK_REFUSED_EARLY = "Goalpost refused this request before reading it: a host name it does not serve, or a bad header."


def hook_answer(decision: str, reason: str, *, stop: bool = False) -> dict:
    """Claude Code's PreToolUse output; `continue: false` stops the agent when the goal no longer runs."""
    answer: dict = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    }
    if stop and decision == gateway.DENY:
        answer.update({"continue": False, "stopReason": f"Goalpost: {reason}"})
    return answer


def hook_refusal(reason: str, event: str) -> dict:
    """What Claude Code gets when Goalpost cannot answer: a deny for a tool call (or an input it cannot read), a
    message for the person on the other events (a Notification or a Stop has nothing to deny)."""
    if event in ("", "PreToolUse"):
        return hook_answer(gateway.DENY, reason)
    return {"systemMessage": f"Goalpost: {reason}"}


def refusals_as_hook_answers(run: Callable) -> Callable:
    """Turn every failure of the hook into a 200 that Claude Code obeys, since it lets the tool call through on any
    answer but a 2xx: the API's refusals (401, 403, 400, 413: `{"error": reason}`; a body too large is exactly
    "input too large") and any error of the server itself."""

    @wraps(run)
    async def answered(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            response = await run(request, *args, **kwargs)
        except Exception:
            log.exception("Claude Code's hook failed; answered with a deny")
            return JsonResponse(hook_refusal(HOOK_FAILED, hook_event(request)))
        if response.status_code < 400:
            return response
        if response.status_code == 413:
            reason = HOOK_TOO_LARGE
        elif response.status_code < 500:
            reason = json.loads(response.content).get("error") or "Goalpost refused this call."
        else:
            reason = HOOK_FAILED
        return JsonResponse(hook_refusal(reason, hook_event(request)))

    return answered


def refused_before_the_hook(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: what Django refuses before any view (a Host it does not serve, a header it cannot read) is still
    a 200 deny on Claude Code's hook; anywhere else, config.bodies.bad_request answers."""
    if request.path_info == reverse("api_claude_hook"):
        return JsonResponse(hook_refusal(HOOK_REFUSED_EARLY, hook_event(request)))
    return bad_request(request, exception)


def hook_event(request: HttpRequest) -> str:
    """The hook event a body names, if it can be read at all."""
    try:
        body = request_json(request)
    except Unreadable:  # too large to read, malformed: a tool call is the safe guess
        return ""
    event = body.get("hook_event_name") if isinstance(body, dict) else None
    return event if isinstance(event, str) else ""


def _propose_hook_call(token: AgentToken, call: gateway.ToolCall) -> tuple[gateway.Outcome, str]:
    goal = Goal.objects.get(pk=token.goal_id)
    try:
        outcome = gateway.propose(goal, call, token)
    except gateway.BadToolCall as error:
        outcome = gateway.Outcome(gateway.DENY, f"Goalpost cannot read this tool call: {error}")
    return outcome, GatewaySettings.for_goal(goal).when_unanswered


def record_hook_event(token: AgentToken, event: str, body: dict) -> None:
    """Notification and Stop (and session) events go on the goal's timeline; they do not count as progress, so
    an agent that stops or sits at its own prompt becomes a stall once the stall limit passes."""
    goal = Goal.objects.get(pk=token.goal_id)
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    text = TIMELINE_EVENTS[event].format(message=" ".join(message.split())[:400] or event)
    session = body.get("session_id") if isinstance(body.get("session_id"), str) else ""
    kind = body.get("notification_type") if isinstance(body.get("notification_type"), str) else ""
    goal.record("agent", text[:500], event=event, session_id=session[:200], notification_type=kind[:50])


def stopped(reason: str) -> dict:
    """Claude Code stops (`continue: false`, the person reads `stopReason`) and the model is told why."""
    return {"continue": False, "stopReason": f"Goalpost: {reason}", "decision": "block", "reason": reason}


def after_the_call(token: AgentToken, hook: schemas.ClaudeHookInput) -> dict:
    """PostToolUse, as an HTTP hook posts it: the server sees the tool's input, never the agent's working tree."""
    goal = Goal.objects.get(pk=token.goal_id)
    call = tool_call_from(hook.tool_name, hook.tool_input, hook, agent="claude")
    outcome = changes.judge_tool_input(goal, token, call)
    if outcome is not None and (outcome.verdict == gateway.DENY or outcome.stop):
        return stopped(outcome.reason)
    return {}


def stop_answer(token: AgentToken, hook: schemas.ClaudeHookInput) -> dict:
    """Claude Code's Stop: a block sends it back to work with the failing evidence; otherwise why it may stop."""
    goal = Goal.objects.get(pk=token.goal_id)
    answer = gateway.answer_stop(
        goal, token, stop_hook_active=bool(hook.stop_hook_active), session_id=hook.session_id or ""
    )
    goal.record("agent", f"Goalpost {'sent it back to work' if answer.block else 'let it stop'}: {answer.reason}"[:500])
    if answer.block:
        return {"decision": "block", "reason": answer.reason}
    return {"systemMessage": f"Goalpost: {answer.reason}"}


@router.post(
    "/hooks/claude",
    auth=waiting_agent_token,
    response={200: schemas.ClaudeHookOutput},
    by_alias=True,
    exclude_unset=True,
    url_name="api_claude_hook",
    operation_id="claudeCodeHook",
    summary="Claude Code's hook input, as an HTTP hook sends it",
    description=(
        "`PreToolUse` answers Claude Code's decision JSON. When a gate asks for a person, the call waits for the "
        "phone (default 55 s, `wait` to change it) and answers allow or deny from the decision; without an answer "
        "in time it denies, saying the request is still open on the phone (or answers `ask` where the goal falls "
        "back to Claude Code's own prompt), and the same call retried joins that request. A call that does not fit "
        "the goal's state (paused, cwd elsewhere) is a deny. `Stop` keeps the agent going while the goal runs and "
        "is not done: `decision: \"block\"` with the failing checks and the budget left (never when "
        "`stop_hook_active` is true); once every check passes it opens a done request for the owner and lets it "
        "stop. `Notification`, `Stop`, `SubagentStop`, `SessionStart` and `SessionEnd` go on the goal's "
        "timeline; the others answer `{}`. "
        "Every refusal is a 200 too, since Claude Code lets the call through on any other answer: a missing, "
        "wrong or revoked token, or a body too large, malformed or not a hook input, is a deny that says why "
        "(a `systemMessage` on the events that have nothing to deny)."
    ),
)
@decorate_view(refusals_as_hook_answers)
async def claude_hook(
    request: HttpRequest,
    hook: schemas.ClaudeHookInput,
    wait: float | None = Query(
        None, ge=0, allow_inf_nan=False, description="Seconds to wait for the phone before answering (default 55)."
    ),
) -> dict:
    token = request.auth
    event = hook.hook_event_name
    if event == "Stop":
        await in_worker_thread(record_hook_event)(token, event, hook.model_dump())
        return await in_worker_thread(stop_answer)(token, hook)
    if event in TIMELINE_EVENTS:
        await in_worker_thread(record_hook_event)(token, event, hook.model_dump())
        return {}
    if event in ("PostToolUse", "PostToolUseFailure"):  # a call that failed may have written too
        return await in_worker_thread(after_the_call)(token, hook) if hook.tool_name else {}
    if event != "PreToolUse":
        return {}
    if not hook.tool_name or not hook.tool_name.strip():
        return hook_answer(gateway.DENY, "`tool_name` is required: Claude Code's PreToolUse input names the tool.")
    call = tool_call_from(hook.tool_name, hook.tool_input, hook, agent="claude")
    outcome, when_unanswered = await in_worker_thread(_propose_hook_call)(token, call)
    if outcome.verdict != gateway.ASK:
        return hook_answer(outcome.verdict, outcome.reason, stop=outcome.stop)
    request_id = outcome.request.pk
    wait = min(hook_wait_default() if wait is None else wait, hook_wait_max())
    settled = await wait_for_outcome(request_id, wait) if wait > 0 else None
    if settled is not None and settled.settled:
        await in_worker_thread(gateway.consume)(request_id)
        return hook_answer(settled.decision or gateway.DENY, settled.reason, stop=settled.stop)
    if when_unanswered == WhenUnanswered.ASK:
        reason = f"No decision on the phone yet (request #{request_id} is still open there): decide here instead."
        return hook_answer(gateway.ASK, reason)
    reason = (
        f"Still waiting for a decision on the phone: request #{request_id} stays open there. "
        "Try the same call again later to pick up the answer, or do something else meanwhile."
    )
    return hook_answer(gateway.DENY, reason)

"""The agent gateway's JSON API under /api/v1/: agents propose steps, wait for decisions, report what they did.

Agents authenticate with their goal's token (`Authorization: Bearer <token>`): a missing, unknown, expired or
revoked token is 401, another goal's token 403; a token never decides (no endpoint here lets it). Errors are
`{"error": reason}`; unknown fields in a body are ignored. The views that wait (the decision long-poll, the
Claude Code hook) are async and hold neither a thread nor a database connection while they wait: they sleep on
one Redis subscription per process and re-read the database briefly, in a worker thread, between naps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import weakref
from collections.abc import Callable
from functools import wraps

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from gateway import calls as gateway
from gateway.models import AgentToken, AlwaysAllowRule, GatewaySettings, RuleKind, TokenRefused, WhenUnanswered
from gateway.openapi import OPENAPI
from goals.models import Goal

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_OUTPUT_TAIL = 20_000
DECISION_WAIT_MAX_S = 25.0
TOKENS_MAX = 10**12


def hook_wait_default() -> float:
    return float(getattr(settings, "GOALPOST_HOOK_WAIT_S", 55))


def hook_wait_max() -> float:
    return float(getattr(settings, "GOALPOST_HOOK_WAIT_MAX_S", 600))


def json_error(reason: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": reason, **extra}, status=status)


def _method_not_allowed(*allowed: str) -> JsonResponse:
    response = json_error(f"Use {' or '.join(allowed)}.", 405)
    response["Allow"] = ", ".join(allowed)
    return response


def api_view(view: Callable) -> Callable:
    """A token-authenticated JSON endpoint: no login redirect, no CSRF (a missing token is 401, not 403)."""
    return login_not_required(csrf_exempt(view))


class BadRequest(ValueError):
    """A request body the API cannot use; the message goes back as the JSON reason."""


def json_body(request: HttpRequest) -> dict:
    if len(request.body) > MAX_BODY_BYTES:
        raise BadRequest(f"The body is larger than {MAX_BODY_BYTES // 1024} KB.")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise BadRequest(f"Malformed JSON: {error}"[:300]) from error
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    _check_strings(body)
    return body


def _check_strings(value: object) -> None:
    """Refuse text no database or file system takes: NUL characters and lone surrogates."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += list(item.keys()) + list(item.values())
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str):
            if "\x00" in item:
                raise BadRequest("Text with NUL characters (\\u0000) is not accepted.")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as error:
                raise BadRequest("Text with lone surrogates is not valid UTF-8.") from error


def _string(body: dict, key: str, *, limit: int = 10_000, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise BadRequest(f"`{key}` is required.")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"`{key}` must be a string.")
    return value[-limit:] if key == "output_tail" else value[:limit]


def _integer(body: dict, key: str, *, default: int | None = None, low: int = -(2**31), high: int = 2**31 - 1):
    value = body.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"`{key}` must be a whole number from {low} to {high}.")
    return value


def _wait(request: HttpRequest, default: float, maximum: float) -> float:
    raw = request.GET.get("wait")
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as error:
        raise BadRequest("`wait` must be a number of seconds.") from error
    if not value >= 0:  # also refuses NaN
        raise BadRequest("`wait` must be 0 or more seconds.")
    return min(value, maximum)


def bearer_secret(request: HttpRequest) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.strip().partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _token_for_goal(request: HttpRequest, goal_id: int) -> tuple[AgentToken, Goal]:
    """The request's token and its goal; TokenRefused for no, a bad or another goal's token, LookupError for no goal."""
    token = AgentToken.authenticate(bearer_secret(request))
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        raise LookupError(f"No goal {goal_id}.")
    if token.goal_id != goal.pk:
        raise TokenRefused(403, f"This token belongs to goal {token.goal_id}, not to goal {goal_id}.")
    return token, goal


def token_endpoint(view: Callable) -> Callable:
    """A sync endpoint for one goal's agent: authenticates, loads the goal, turns BadRequest into 400."""

    @wraps(view)
    def wrapper(request: HttpRequest, goal_id: int, *args, **kwargs):
        try:
            token, goal = _token_for_goal(request, goal_id)
            return view(request, token, goal, *args, **kwargs)
        except TokenRefused as refusal:
            return json_error(str(refusal), refusal.status)
        except LookupError as missing:
            return json_error(str(missing), 404)
        except BadRequest as error:
            return json_error(str(error), 400)

    return api_view(wrapper)


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
        "budgets": goal.budgets,
        "used": {
            "minutes": round(usage.minutes, 1),
            "steps": usage.steps,
            "tokens": usage.tokens,
            "approvals": usage.approvals,
        },
        "when_unanswered": GatewaySettings.for_goal(goal).when_unanswered,
    }


# --- sync endpoints ------------------------------------------------------------------------------------------


@token_endpoint
def goal_detail(request: HttpRequest, token: AgentToken, goal: Goal) -> JsonResponse:
    """GET /api/v1/goals/<id>: the contract the agent works under, its budgets and what is used."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    return JsonResponse(goal_summary(goal))


def tool_call_from(body: dict, agent: str = "api") -> gateway.ToolCall:
    tool = body.get("tool", body.get("tool_name"))
    tool_input = body.get("input", body.get("tool_input", {}))
    if not isinstance(tool, str) or not tool.strip():
        raise BadRequest("`tool` is required: the tool's name, e.g. Bash, Write, Edit, MultiEdit, apply_patch.")
    if not isinstance(tool_input, dict):
        raise BadRequest("`input` must be an object: the tool's input.")
    return gateway.ToolCall(
        tool=tool.strip()[:200],
        input=tool_input,
        cwd=_string(body, "cwd", limit=4000),
        session_id=_string(body, "session_id", limit=200),
        tool_use_id=_string(body, "tool_use_id", limit=200),
        agent=agent,
    )


@token_endpoint
def propose_step(request: HttpRequest, token: AgentToken, goal: Goal) -> JsonResponse:
    """POST /api/v1/goals/<id>/steps: a tool call → allow, deny or ask (an approval request opened)."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    body = json_body(request)
    agent = body.get("agent")
    agent = agent if isinstance(agent, str) and agent in gateway.AGENT_LABELS else "api"
    call = tool_call_from(body, agent)
    try:
        outcome = gateway.propose(goal, call, token)
    except gateway.BadToolCall as error:
        raise BadRequest(str(error)) from error
    return JsonResponse(outcome.as_dict())


@token_endpoint
def report_evidence(request: HttpRequest, token: AgentToken, goal: Goal) -> JsonResponse:
    """POST /api/v1/goals/<id>/evidence: a check the agent ran (command, exit code, output tail)."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    body = json_body(request)
    command = _string(body, "command", limit=10_000)
    name = _string(body, "name", limit=200)
    if not command and not name:
        raise BadRequest("`command` is required: the check the agent ran.")
    tests = body.get("failing_tests") or []
    if not isinstance(tests, list) or not all(isinstance(test, str) for test in tests):
        raise BadRequest("`failing_tests` must be a list of strings.")
    timed_out = body.get("timed_out", False)
    if not isinstance(timed_out, bool):
        raise BadRequest("`timed_out` must be true or false.")
    exit_code = _integer(body, "exit_code")
    if exit_code is None and not timed_out:
        raise BadRequest("`exit_code` is required (or `timed_out`: true).")
    report = gateway.record_evidence(
        goal,
        token,
        command=command,
        exit_code=exit_code,
        output_tail=_string(body, "output_tail", limit=MAX_OUTPUT_TAIL),
        name=name,
        expected_exit=_integer(body, "expected_exit", default=0),
        failing_tests=tuple(test[:500] for test in tests[:200]),
        timed_out=timed_out,
        tokens=_integer(body, "tokens", default=0, low=0, high=TOKENS_MAX),
    )
    return JsonResponse(
        {"id": report.pk, "passed": report.passed, "failure_signature": report.failure_signature or None},
        status=201,
    )


@token_endpoint
def report_usage(request: HttpRequest, token: AgentToken, goal: Goal) -> JsonResponse:
    """POST /api/v1/goals/<id>/usage: tokens the agent used since its last report."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    body = json_body(request)
    tokens = _integer(body, "tokens", low=0, high=TOKENS_MAX)
    if tokens is None:
        raise BadRequest("`tokens` is required: the tokens used since the last report.")
    total = gateway.record_usage(goal, token, tokens)
    return JsonResponse({"reported_tokens": total, "budget_tokens": goal.budget_tokens})


@token_endpoint
def heartbeat(request: HttpRequest, token: AgentToken, goal: Goal) -> JsonResponse:
    """POST /api/v1/goals/<id>/heartbeat: the agent is alive; silence past the stall limit becomes a stall."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    if request.content_type == "application/json" and request.body.strip():
        json_body(request)  # the body is optional (and ignored), but malformed JSON is still an error
    gateway.heartbeat(goal)
    refusal = gateway.goal_state_refusal(goal)
    reason, stop = refusal or ("", False)
    return JsonResponse({"goal": goal.pk, "status": goal.status, "stop": stop, "reason": reason})


# --- always-allow rules: agents read them, the owner (signed in) changes them ---------------------------------


def rule_dict(rule: AlwaysAllowRule) -> dict:
    return {
        "id": rule.pk,
        "kind": rule.kind,
        "value": rule.value,
        "created_by": rule.created_by.get_username() if rule.created_by else None,
        "created_at": rule.created_at.isoformat(),
        "revoked_at": rule.revoked_at.isoformat() if rule.revoked_at else None,
    }


def _session_owner_or_error(request: HttpRequest, goal: Goal) -> JsonResponse | None:
    if bearer_secret(request):
        return json_error("An agent token cannot change the goal's rules: only its owner can, signed in.", 403)
    if not request.user.is_authenticated:
        return json_error("Sign in first: changing rules needs the owner's login session.", 401)
    if not Goal.objects.visible_to(request.user).filter(pk=goal.pk).exists():
        return json_error(f"No goal {goal.pk}.", 404)
    if not goal.can_edit(request.user):
        return json_error("Only the goal's owner can change its rules.", 403)
    if CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is not None:
        return json_error("CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.", 403)
    return None


def _reader_or_error(request: HttpRequest, goal: Goal) -> JsonResponse | None:
    """A token of this goal, or a person who may see it."""
    if bearer_secret(request):
        try:
            _token_for_goal(request, goal.pk)
        except TokenRefused as refusal:
            return json_error(str(refusal), refusal.status)
        return None
    if not request.user.is_authenticated:
        return json_error("Send the goal's agent token as `Authorization: Bearer <token>`.", 401)
    if not Goal.objects.visible_to(request.user).filter(pk=goal.pk).exists():
        return json_error(f"No goal {goal.pk}.", 404)
    return None


def create_rule(goal: Goal, user, kind: str, value: str) -> AlwaysAllowRule:
    """Add an always-allow rule (the same active rule twice is one rule)."""
    value = " ".join(value.split()) if kind == RuleKind.COMMAND_PREFIX else value.strip()
    if kind not in RuleKind.values:
        raise BadRequest("`kind` must be command_prefix or path.")
    if not value or len(value) > 500:
        raise BadRequest("`value` must be 1 to 500 characters.")
    if kind == RuleKind.COMMAND_PREFIX and gateway._simple_command(value) is None:
        raise BadRequest("A command prefix is plain words: no shell operators, quotes aside.")
    existing = goal.always_allow_rules.active().filter(kind=kind, value=value).first()
    if existing:
        return existing
    rule = AlwaysAllowRule.objects.create(goal=goal, kind=kind, value=value, created_by=user)
    goal.record("rule", f"Always-allow rule added: {rule}.", user, rule=rule.pk)
    return rule


@api_view
def rules(request: HttpRequest, goal_id: int) -> JsonResponse:
    """GET (token or session) lists the goal's always-allow rules; POST (the owner, signed in) adds one."""
    goal = Goal.objects.filter(pk=goal_id).first()
    if request.method == "GET":
        if goal is None:
            return json_error(f"No goal {goal_id}.", 404)
        refused = _reader_or_error(request, goal)
        if refused is not None:
            return refused
        active = request.GET.get("all") not in ("1", "true")
        listed = goal.always_allow_rules.active() if active else goal.always_allow_rules.all()
        return JsonResponse({"rules": [rule_dict(rule) for rule in listed.select_related("created_by")]})
    if request.method != "POST":
        return _method_not_allowed("GET", "POST")
    if goal is None:
        return json_error(f"No goal {goal_id}.", 404)
    refused = _session_owner_or_error(request, goal)
    if refused is not None:
        return refused
    try:
        body = json_body(request)
        rule = create_rule(goal, request.user, _string(body, "kind"), _string(body, "value", limit=1000))
    except BadRequest as error:
        return json_error(str(error), 400)
    return JsonResponse(rule_dict(rule), status=201)


@api_view
def rule_detail(request: HttpRequest, goal_id: int, rule_id: int) -> JsonResponse:
    """DELETE /api/v1/goals/<id>/rules/<rule_id>: the owner revokes a rule."""
    if request.method != "DELETE":
        return _method_not_allowed("DELETE")
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        return json_error(f"No goal {goal_id}.", 404)
    refused = _session_owner_or_error(request, goal)
    if refused is not None:
        return refused
    rule = goal.always_allow_rules.filter(pk=rule_id).first()
    if rule is None:
        return json_error(f"No rule {rule_id} on goal {goal_id}.", 404)
    rule.revoke(request.user)
    return JsonResponse(rule_dict(rule))


@api_view
def openapi(request: HttpRequest) -> JsonResponse:
    """GET /api/v1/openapi.json: this API's OpenAPI 3.1 document."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    return JsonResponse(OPENAPI, json_dumps_params={"ensure_ascii": False})


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


class SettledListener:
    """One Redis subscription per process (and event loop) that wakes the waiters of a settled request.

    Waiters are asyncio events. The subscription starts with the first waiter and ends with the last; when
    Redis cannot be reached the waiters simply re-read the database every second instead.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.waiters: dict[int, set[asyncio.Event]] = {}
        self.task: asyncio.Task | None = None
        self.subscribed = False
        self.stopping = False

    def watch(self, request_id: int) -> asyncio.Event:
        event = asyncio.Event()
        self.waiters.setdefault(request_id, set()).add(event)
        if self.task is None or self.task.done() or self.stopping:
            self.stopping = False
            self.task = self.loop.create_task(self._listen())
        return event

    def unwatch(self, request_id: int, event: asyncio.Event) -> None:
        events = self.waiters.get(request_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self.waiters[request_id]

    def recheck_after(self) -> float:
        """How long a waiter naps before it reads the database again anyway."""
        return random.uniform(8.0, 12.0) if self.subscribed else 1.0

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client = aioredis.from_url(settings.REDIS_URL, socket_connect_timeout=2)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(gateway.settled_channel())
            self.subscribed = True
            while self.waiters:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message and message.get("type") == "message":
                    self._wake(message.get("data"))
        except Exception:
            log.warning("the decision listener lost Redis; waiters fall back to reading the database", exc_info=True)
            await asyncio.sleep(1.0)
        finally:
            self.stopping = True
            self.subscribed = False
            try:
                await pubsub.aclose()
                await client.aclose()
            except Exception:
                log.debug("closing the decision listener failed", exc_info=True)

    def _wake(self, data: object) -> None:
        try:
            request_id = int(data.decode() if isinstance(data, bytes) else data)
        except (TypeError, ValueError):
            return
        for event in self.waiters.get(request_id, ()):
            event.set()


_listeners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def settled_listener() -> SettledListener:
    loop = asyncio.get_running_loop()
    listener = _listeners.get(loop)
    if listener is None:
        listener = _listeners[loop] = SettledListener(loop)
    return listener


async def wait_for_outcome(request_id: int, timeout: float) -> gateway.RequestOutcome | None:
    """The request's outcome once it settles, or its pending state after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    listener = settled_listener()
    event = listener.watch(request_id)
    read = in_worker_thread(gateway.request_outcome)
    try:
        outcome = await read(request_id)
        while outcome is not None and not outcome.settled:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=min(remaining, listener.recheck_after()))
            event.clear()
            outcome = await read(request_id)
        return outcome
    finally:
        listener.unwatch(request_id, event)


async def _authenticate(request: HttpRequest) -> AgentToken:
    return await in_worker_thread(AgentToken.authenticate)(bearer_secret(request))


@api_view
async def request_decision(request: HttpRequest, request_id: int) -> JsonResponse:
    """GET /api/v1/requests/<id>/decision?wait=25: the decision, waiting for it up to `wait` seconds (≤ 25)."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        token = await _authenticate(request)
        wait = _wait(request, 0.0, DECISION_WAIT_MAX_S)
    except TokenRefused as refusal:
        return json_error(str(refusal), refusal.status)
    except BadRequest as error:
        return json_error(str(error), 400)
    outcome = await in_worker_thread(gateway.request_outcome)(request_id)
    if outcome is None:
        return json_error(f"No request {request_id}.", 404)
    if outcome.goal_id != token.goal_id:
        return json_error(f"Request {request_id} belongs to another goal than this token's.", 403)
    if not outcome.settled and wait > 0:
        outcome = await wait_for_outcome(request_id, wait)
        if outcome is None:
            return json_error(f"No request {request_id}.", 404)
    if outcome.settled:
        await in_worker_thread(gateway.consume)(request_id)
    return JsonResponse(outcome.as_dict())


# --- Claude Code's hook ---------------------------------------------------------------------------------------

TIMELINE_EVENTS = {
    "Notification": "Claude Code: {message}",
    "Stop": "Claude Code finished its turn.",
    "SubagentStop": "A Claude Code subagent finished.",
    "SessionStart": "Claude Code session started.",
    "SessionEnd": "Claude Code session ended.",
}


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


@api_view
async def claude_hook(request: HttpRequest) -> JsonResponse:
    """POST /api/v1/hooks/claude: Claude Code's hook input as it sends it; PreToolUse gets a decision."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        token = await _authenticate(request)
        body = json_body(request)
        wait = _wait(request, hook_wait_default(), hook_wait_max())
    except TokenRefused as refusal:
        return json_error(str(refusal), refusal.status)
    except BadRequest as error:
        return json_error(str(error), 400)
    event = body.get("hook_event_name")
    if not isinstance(event, str) or not event:
        return json_error("`hook_event_name` is required: this endpoint takes Claude Code's hook input.", 400)
    if event in TIMELINE_EVENTS:
        await in_worker_thread(record_hook_event)(token, event, body)
        return JsonResponse({})
    if event != "PreToolUse":
        return JsonResponse({})
    try:
        call = tool_call_from(body, agent="claude")
    except BadRequest as error:
        return json_error(str(error), 400)
    outcome, when_unanswered = await in_worker_thread(_propose_hook_call)(token, call)
    if outcome.verdict != gateway.ASK:
        return JsonResponse(hook_answer(outcome.verdict, outcome.reason, stop=outcome.stop))
    request_id = outcome.request.pk
    settled = await wait_for_outcome(request_id, wait) if wait > 0 else None
    if settled is not None and settled.settled:
        await in_worker_thread(gateway.consume)(request_id)
        return JsonResponse(hook_answer(settled.decision or gateway.DENY, settled.reason, stop=settled.stop))
    if when_unanswered == WhenUnanswered.ASK:
        reason = f"No decision on the phone yet (request #{request_id} is still open there): decide here instead."
        return JsonResponse(hook_answer(gateway.ASK, reason))
    reason = (
        f"Still waiting for a decision on the phone: request #{request_id} stays open there. "
        "Try the same call again later to pick up the answer, or do something else meanwhile."
    )
    return JsonResponse(hook_answer(gateway.DENY, reason))

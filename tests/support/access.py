"""Who may do what, for every route: ACCESS names each route's expected answer for the six kinds of caller (ROLES),
as a table of Calls on the security tests' World. tests/security/test_access_matrix.py checks every route against
it and test_csrf.py posts to every state-changing one without the token."""

from collections.abc import Callable
from dataclasses import dataclass, field

from channels.routing import URLRouter
from django.urls import URLPattern, URLResolver, get_resolver

from approvals.models import Decision
from tests.factories import ROLES, World

LOGIN = "sign-in"  # 302 to the sign-in page, ?next= back here
REDIRECT = "redirect"  # 302 elsewhere: the view did its work (or refused politely) and moved on
CSRF = 403  # a form post without the CSRF token (what a bearer-token script sends) is refused before anything
HOOK_REFUSED = "hook-refused"  # Claude Code's hook: 200 and nothing recorded, with a message saying why
CLOSED = "closed"  # websocket: refused
OPEN = "open"  # websocket: accepted
HEALTH = "health"  # /healthz: the same JSON for anyone, 200 or 503 by what is running, never a sign-in


def row(anonymous, outsider, viewer, approver, owner, agent) -> dict[str, object]:
    return dict(zip(ROLES, (anonymous, outsider, viewer, approver, owner, agent), strict=True))


# The usual shapes: a page anyone signed in may use; a goal's page (404 to outsiders, never a hint it exists);
# the owner's changes; a token endpoint (the goal's agent only: a login session is not a credential there).
SIGNED_IN = row(LOGIN, 200, 200, 200, 200, LOGIN)
GOAL_PAGE = row(LOGIN, 404, 200, 200, 200, LOGIN)
AGENT_ONLY = row(401, 401, 401, 401, 401, 200)
PUBLIC = row(200, 200, 200, 200, 200, 200)


@dataclass(frozen=True)
class Call:
    expect: dict[str, object]
    kwargs: Callable[[World], dict] = lambda w: {}
    data: Callable[[World], dict] | None = None
    json: object = None  # the JSON body, or a function of the world that gives it
    query: str = ""
    after: Callable[[World, str], None] | None = field(default=None, compare=False)

    def body(self, world: World) -> object:
        return self.json(world) if callable(self.json) else self.json


def goal(w: World) -> dict:
    return {"pk": w.goal.pk}


def goal_id(w: World) -> dict:
    return {"goal_id": w.goal.pk}


def request_pk(w: World) -> dict:
    return {"pk": w.request.pk}


def recorded_only_for_the_agent(w: World, role: str) -> None:
    recorded = w.goal.events.filter(kind="agent", message__contains="waiting for input").exists()
    assert recorded == (role == "agent"), role


def decided_only_by_deciders(w: World, role: str) -> None:
    decisions = list(Decision.objects.filter(request=w.request).values_list("user__username", flat=True))
    assert decisions == ([role] if role in ("approver", "owner") else [])


ACCESS: dict[str, dict[str, Call]] = {
    "home": {"GET": Call(SIGNED_IN)},
    "healthz": {"GET": Call(row(HEALTH, HEALTH, HEALTH, HEALTH, HEALTH, HEALTH))},
    "login": {
        "GET": Call(row(200, REDIRECT, REDIRECT, REDIRECT, REDIRECT, 200)),
        "POST": Call(row(200, REDIRECT, REDIRECT, REDIRECT, REDIRECT, CSRF), data=lambda w: {"username": "x"}),
    },
    "logout": {"POST": Call(row(LOGIN, REDIRECT, REDIRECT, REDIRECT, REDIRECT, CSRF))},
    "goals:list": {"GET": Call(SIGNED_IN)},
    # Anyone signed in writes their own goals (an empty form is a 422 with the errors).
    "goals:create": {
        "GET": Call(SIGNED_IN),
        "POST": Call(row(LOGIN, 422, 422, 422, 422, CSRF), data=lambda w: {}),
    },
    "goals:lint_preview": {"POST": Call({**SIGNED_IN, "agent": CSRF}, data=lambda w: {})},
    "goals:new_row": {"GET": Call(SIGNED_IN, kwargs=lambda w: {"field": "constraints"})},
    "goals:detail": {"GET": Call(GOAL_PAGE, kwargs=goal)},
    "goals:edit": {
        "GET": Call(row(LOGIN, 404, 403, 403, 200, LOGIN), kwargs=goal),
        "POST": Call(row(LOGIN, 404, 403, 403, 422, CSRF), kwargs=goal, data=lambda w: {}),
    },
    "goals:mark_ready": {"POST": Call(row(LOGIN, 404, 403, 403, REDIRECT, CSRF), kwargs=goal)},
    # The baseline panel (htmx polls it; without htmx a GET goes back to the goal) and the owner's Check evidence.
    "goals:check_evidence": {
        "GET": Call(row(LOGIN, 404, REDIRECT, REDIRECT, REDIRECT, LOGIN), kwargs=goal),
        "POST": Call(row(LOGIN, 404, 403, 403, REDIRECT, CSRF), kwargs=goal),
    },
    "goals:control": {
        "POST": Call(row(LOGIN, 404, 403, 403, REDIRECT, CSRF), kwargs=lambda w: {"pk": w.goal.pk, "action": "pause"})
    },
    # The notification button: its signed single-use token is the credential, not a session (test_action_tokens).
    "push_action": {"POST": Call(row(403, 403, 403, 403, 403, 403), json={"token": "not-a-signed-token"})},
    "settings": {
        "GET": Call(SIGNED_IN),
        "POST": Call(row(LOGIN, 200, 200, 200, 200, CSRF), data=lambda w: {}),
    },
    "push_subscribe": {"POST": Call(row(LOGIN, 400, 400, 400, 400, CSRF), json={})},
    # Devices are each person's own: the owner's device is nobody else's to remove or to test.
    "push_unsubscribe": {
        "POST": Call(row(LOGIN, 404, 404, 404, REDIRECT, CSRF), data=lambda w: {"id": w.device.pk})
    },
    "push_test": {"POST": Call(row(LOGIN, 404, 404, 404, REDIRECT, CSRF), data=lambda w: {"id": w.device.pk})},
    "service_worker": {"GET": Call(PUBLIC)},
    "manifest": {"GET": Call(PUBLIC)},
    "offline": {"GET": Call(PUBLIC)},
    "approvals:detail": {"GET": Call(GOAL_PAGE, kwargs=request_pk)},
    # Viewers see a request but never answer it.
    "approvals:decide": {
        "POST": Call(
            row(LOGIN, 404, 403, REDIRECT, REDIRECT, CSRF),
            kwargs=request_pk,
            data=lambda w: {"verdict": "approve"},
            after=decided_only_by_deciders,
        )
    },
    # Opening a done review's pull request: like deciding, its owner and approvers only.
    "approvals:open_pull_request": {"POST": Call(row(LOGIN, 404, 403, REDIRECT, REDIRECT, CSRF), kwargs=request_pk)},
    "approvals:files": {"GET": Call(GOAL_PAGE, kwargs=request_pk)},
    "approvals:file": {"GET": Call(GOAL_PAGE, kwargs=lambda w: {"pk": w.request.pk, "index": 0})},
    "gateway:page": {"GET": Call(GOAL_PAGE, kwargs=goal_id)},
    # Agent tokens, rules and settings are the owner's: to everyone else the goal's agents do not exist.
    "gateway:create_token": {
        "POST": Call(row(LOGIN, 404, 404, 404, 200, CSRF), kwargs=goal_id, data=lambda w: {"name": "ci", "days": 7})
    },
    "gateway:revoke_token": {
        "POST": Call(
            row(LOGIN, 404, 404, 404, REDIRECT, CSRF),
            kwargs=lambda w: {"goal_id": w.goal.pk, "token_id": w.spare_token.pk},
        )
    },
    "gateway:add_rule": {
        "POST": Call(
            row(LOGIN, 404, 404, 404, REDIRECT, CSRF),
            kwargs=goal_id,
            data=lambda w: {"kind": "path", "value": "notes/**"},
        )
    },
    "gateway:revoke_rule": {
        "POST": Call(
            row(LOGIN, 404, 404, 404, REDIRECT, CSRF), kwargs=lambda w: {"goal_id": w.goal.pk, "rule_id": w.rule.pk}
        )
    },
    "gateway:settings": {
        "POST": Call(
            row(LOGIN, 404, 404, 404, REDIRECT, CSRF), kwargs=goal_id, data=lambda w: {"when_unanswered": "ask"}
        )
    },
    # The linter's JSON twin is for a signed-in person's page, not for agents.
    "api_lint_goal": {"POST": Call(row(401, 200, 200, 200, 200, 401), json={})},
    "api_openapi": {"GET": Call(PUBLIC)},
    "api_goal": {"GET": Call(AGENT_ONLY, kwargs=goal_id)},
    "api_propose_step": {
        "POST": Call(AGENT_ONLY, kwargs=goal_id, json={"tool": "Bash", "input": {"command": "ls"}})
    },
    "api_report_evidence": {
        "POST": Call(
            {**AGENT_ONLY, "agent": 201}, kwargs=goal_id, json={"command": "pytest", "exit_code": 0}
        )
    },
    "api_report_usage": {"POST": Call(AGENT_ONLY, kwargs=goal_id, json={"tokens": 10})},
    "api_report_changes": {
        "POST": Call(
            AGENT_ONLY,
            kwargs=goal_id,
            json=lambda w: {"diff": "", "source": "codex", "cwd": w.goal.repository.source},
        )
    },
    "api_heartbeat": {"POST": Call(AGENT_ONLY, kwargs=goal_id)},
    "api_claim_done": {"POST": Call(AGENT_ONLY, kwargs=goal_id, json={"summary": "done"})},
    # Rules: the agent and the goal's people read them; only the owner, signed in, changes them.
    "api_rules": {
        "GET": Call(row(401, 404, 200, 200, 200, 200), kwargs=goal_id),
        "POST": Call(row(401, 404, 403, 403, 201, 403), kwargs=goal_id, json={"kind": "path", "value": "x/**"}),
    },
    "api_rule": {
        "DELETE": Call(
            row(401, 404, 403, 403, 200, 403), kwargs=lambda w: {"goal_id": w.goal.pk, "rule_id": w.rule.pk}
        )
    },
    "api_request_decision": {
        "GET": Call(AGENT_ONLY, kwargs=lambda w: {"request_id": w.request.pk}, query="?wait=0")
    },
    # Claude Code lets a tool call through on any answer but a 2xx: the hook refuses with a 200 (docs/agents.md).
    "api_claude_hook": {
        "POST": Call(
            {**dict.fromkeys(ROLES, HOOK_REFUSED), "agent": 200},
            query="?wait=0",
            json={"hook_event_name": "Notification", "message": "waiting for input"},
            after=recorded_only_for_the_agent,
        )
    },
}

# The websocket carries only the signed-in person's own events (tests/approvals/test_consumers.py).
WEBSOCKET_ACCESS = {"ws/": row(CLOSED, OPEN, OPEN, OPEN, OPEN, CLOSED)}


def http_routes(resolver=None, prefix: str = "", namespace: str = ""):
    """(key, pattern, callback) for every route: the key is the URL name with its namespace, else the pattern."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace or "") if part)
            yield from http_routes(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            key = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or pattern
            yield key, pattern, entry.callback


def websocket_routes(app=None) -> list[str]:
    """The route patterns of the URLRouter inside config.asgi's websocket stack."""
    if app is None:
        from config.asgi import application

        app = application.application_mapping["websocket"]
    while not isinstance(app, URLRouter):
        app = getattr(app, "application", None) or app.inner
    return [str(route.pattern) for route in app.routes]


def is_admin(key: str, pattern: str) -> bool:
    return key.startswith("admin:") or pattern.startswith("admin/")

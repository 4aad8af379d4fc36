"""Every state-changing request needs the CSRF token: generated from the access table of every route.

A view exempt from Django's CSRF check must be listed in CSRF_EXEMPT with what a signed-in browser gets when
it posts there without the token: token-authenticated endpoints answer 401 (a session is no credential there; the
Claude Code hook answers 200 refusing it), session endpoints that check CSRF themselves answer 403.
"""

import json

import pytest
from django.urls import reverse

from approvals.models import Decision
from gateway.models import AgentToken, AlwaysAllowRule
from goals.models import Goal
from tests.factories import client_for
from tests.support.access import ACCESS, http_routes

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")

CSRF_EXEMPT = {
    # The notification button's signed token (in the body) is the credential; a session alone decides nothing.
    "push_action": 403,
    # The linter and the rules API take a session, and then check CSRF themselves (JSON 403 rather than HTML).
    "api_lint_goal": 403,
    "api_rules": 403,
    "api_rule": 403,
    # The agent's endpoints take only a bearer token.
    "api_openapi": 405,  # GET only: nothing to forge
    "api_goal": 401,
    "api_propose_step": 401,
    "api_report_evidence": 401,
    "api_report_usage": 401,
    "api_report_changes": 401,
    "api_heartbeat": 401,
    "api_claim_done": 401,
    "api_request_decision": 401,
    # Claude Code's hook answers every refusal 200 (a deny, or here, on a Notification, a message for the person):
    # Claude Code lets a tool call through on anything else.
    "api_claude_hook": 200,
}

CASES = [(key, method) for key, calls in ACCESS.items() for method in calls if method in UNSAFE]


def test_every_csrf_exempt_view_is_listed():
    exempt = {key for key, _, callback in http_routes() if getattr(callback, "csrf_exempt", False)}
    assert exempt == set(CSRF_EXEMPT)


def state(world) -> tuple:
    """What a forged post could change: goals, decisions, tokens, rules, the owner's devices, the goal itself."""
    goal = Goal.objects.get(pk=world.goal.pk)
    return (
        Goal.objects.count(),
        Decision.objects.count(),
        AgentToken.objects.filter(revoked_at__isnull=True).count(),
        AlwaysAllowRule.objects.filter(revoked_at__isnull=True).count(),
        world.users["owner"].push_subscriptions.count(),
        goal.status,
        goal.updated_at,
    )


@pytest.mark.parametrize(("key", "method"), CASES, ids=[" ".join(case) for case in CASES])
def test_a_post_without_the_csrf_token_is_refused(world, key, method):
    """The owner, signed in, is the one a forged cross-site form would ride on."""
    call = ACCESS[key][method]
    url = reverse(key, kwargs=call.kwargs(world)) + call.query
    client = client_for(world, "owner", csrf=False)
    before = state(world)
    if call.json is not None:
        response = client.generic(method, url, data=json.dumps(call.body(world)), content_type="application/json")
    elif method == "POST":
        response = client.post(url, call.data(world) if call.data else {})
    else:
        response = client.generic(method, url)
    expected = CSRF_EXEMPT.get(key, 403)
    assert response.status_code == expected, response.content[:200]
    assert state(world) == before


def test_the_same_post_with_the_token_goes_through(world):
    """The refusal above is the missing token, not the request: with it the owner's post works."""
    url = reverse("gateway:add_rule", kwargs={"goal_id": world.goal.pk})
    response = client_for(world, "owner").post(url, {"kind": "path", "value": "notes/**"})
    assert response.status_code == 302
    assert world.goal.always_allow_rules.filter(value="notes/**").exists()


def test_a_token_from_another_session_is_refused(world):
    """The header must match this browser's cookie: a token lifted from another page or person does not do."""
    client = client_for(world, "owner")
    client.defaults["HTTP_X_CSRFTOKEN"] = "x" * 32
    url = reverse("approvals:decide", kwargs={"pk": world.request.pk})
    assert client.post(url, {"verdict": "approve"}).status_code == 403
    assert not Decision.objects.exists()

"""The goal page's agents section: tokens shown once and revocable, always-allow rules, the unanswered rule."""

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from gateway.models import AgentToken, AlwaysAllowRule, GatewaySettings


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("approver", 200), ("outsider", 404)])
def test_the_page_is_for_the_goals_people(client, goal, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/agents/{goal.pk}/")
    assert response.status_code == status
    if status == 200:
        assert b"Agents working elsewhere" in response.content
        assert (b"Create a token" in response.content) is (who == "owner")


@pytest.mark.parametrize(("who", "status"), [("approver", 404), ("outsider", 404)])
def test_only_the_owner_creates_tokens(client, goal, who, status, request):
    client.force_login(request.getfixturevalue(who))
    assert client.post(f"/agents/{goal.pk}/tokens", {"name": "x", "days": "7"}).status_code == status
    assert not AgentToken.objects.exists()


def test_a_new_token_is_shown_once_on_the_full_page(client, goal, owner):
    client.force_login(owner)
    response = client.post(f"/agents/{goal.pk}/tokens", {"name": "laptop", "days": "7"})
    token = AgentToken.objects.get()
    secret = response.context["new_secret"]
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert secret.encode() in response.content and b"<html" in response.content
    assert AgentToken.authenticate(secret).pk == token.pk
    assert secret.encode() not in client.get(f"/agents/{goal.pk}/").content


def test_a_new_token_in_the_htmx_partial(client, goal, owner):
    client.force_login(owner)
    response = client.post(f"/agents/{goal.pk}/tokens", {"name": "ci", "days": "0"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in response.content and b'id="agent-gateway"' in response.content
    assert AgentToken.objects.get().expires_at is None


def test_the_owner_revokes_a_token(client, goal, owner):
    token, secret = AgentToken.issue(goal, owner, name="old")
    client.force_login(owner)
    response = client.post(f"/agents/{goal.pk}/tokens/{token.pk}/revoke")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    with pytest.raises(Exception, match="revoked"):
        AgentToken.authenticate(secret)


def test_an_approver_cannot_revoke(client, goal, agent_token, approver):
    token, _ = agent_token
    client.force_login(approver)
    assert client.post(f"/agents/{goal.pk}/tokens/{token.pk}/revoke").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_rules_are_added_listed_and_revoked(client, goal, owner):
    client.force_login(owner)
    response = client.post(
        f"/agents/{goal.pk}/rules", {"kind": "command_prefix", "value": "npm test"}, HTTP_HX_REQUEST="true"
    )
    assert b"npm test" in response.content and b"Always allowed" in response.content
    rule = AlwaysAllowRule.objects.get()
    client.post(f"/agents/{goal.pk}/rules/{rule.pk}/revoke")
    assert not goal.always_allow_rules.active().exists()


def test_a_bad_rule_says_why(client, goal, owner):
    client.force_login(owner)
    response = client.post(f"/agents/{goal.pk}/rules", {"kind": "command_prefix", "value": "ls && rm"})
    assert response.status_code == 400 and b"no shell operators" in response.content


def test_the_unanswered_rule_is_saved(client, goal, owner):
    client.force_login(owner)
    client.post(f"/agents/{goal.pk}/settings", {"when_unanswered": "ask"})
    assert GatewaySettings.objects.get(goal=goal).when_unanswered == "ask"


def test_the_section_renders_inside_the_goal_page_with_only_the_goal(goal, owner):
    AgentToken.issue(goal, owner, name="claude")
    request = RequestFactory().get("/")
    request.user = owner
    html = render_to_string("gateway/_agent_tokens.html", {"goal": goal, "user": owner}, request=request)
    assert "claude" in html and "Create a token" in html and 'value="deny" checked' in html

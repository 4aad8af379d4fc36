"""The goal page's "agents elsewhere" section: agent tokens, always-allow rules, and what an unanswered call does.

The section is `gateway/_agent_tokens.html` (included on the goal page; its own page at /agents/<goal>/ for
browsers without JavaScript). The goal's owner and approvers see it; only the owner changes it. A new token's
secret is in the response that created it and nowhere else.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from gateway.api import create_rule
from gateway.models import AgentToken, GatewaySettings, RuleKind, WhenUnanswered
from goals.models import Goal

SECTION = "gateway/_agent_tokens.html#gateway"
PAGE = "gateway/agent_tokens.html"
EXPIRY_CHOICES = [(1, "1 day"), (7, "7 days"), (30, "30 days"), (90, "90 days"), (0, "Never")]


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False, initial="agent")
    days = forms.TypedChoiceField(choices=EXPIRY_CHOICES, coerce=int, initial=30)


class RuleForm(forms.Form):
    kind = forms.ChoiceField(choices=RuleKind.choices)
    value = forms.CharField(max_length=500)


class SettingsForm(forms.Form):
    when_unanswered = forms.ChoiceField(choices=WhenUnanswered.choices, widget=forms.RadioSelect)


def _get_goal_for_user(request: HttpRequest, pk: int) -> Goal:
    """The goal if the user owns it or approves for it; 404 for everyone else."""
    return get_object_or_404(Goal.objects.visible_to(request.user), pk=pk)


def _get_goal_for_owner(request: HttpRequest, pk: int) -> Goal:
    goal = _get_goal_for_user(request, pk)
    if not goal.can_edit(request.user):
        raise Http404("Only the goal's owner manages its agents.")
    return goal


def _section(request: HttpRequest, goal: Goal, status: int = 200, **context) -> HttpResponse:
    template = SECTION if request.htmx else PAGE
    return render(request, template, {"goal": goal, **context}, status=status)


def _done(request: HttpRequest, goal: Goal, message: str) -> HttpResponse:
    if request.htmx:
        return _section(request, goal, notice=message)
    messages.success(request, message)
    return redirect("gateway:page", goal.pk)


@require_GET
def agents_page(request: HttpRequest, goal_id: int) -> HttpResponse:
    goal = _get_goal_for_user(request, goal_id)
    return _section(request, goal)


@require_POST
def create_token(request: HttpRequest, goal_id: int) -> HttpResponse:
    goal = _get_goal_for_owner(request, goal_id)
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _section(request, goal, status=400, token_form=form)
    token, secret = AgentToken.issue(
        goal, request.user, name=form.cleaned_data["name"] or "agent", days=form.cleaned_data["days"] or None
    )
    # Rendered, never redirected: the secret exists in this response only.
    response = _section(request, goal, new_token=token, new_secret=secret)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def revoke_token(request: HttpRequest, goal_id: int, token_id: int) -> HttpResponse:
    goal = _get_goal_for_owner(request, goal_id)
    token = get_object_or_404(goal.agent_tokens, pk=token_id)
    token.revoke(request.user)
    return _done(request, goal, f"Token “{token.name}” revoked: agents using it get 401 from now on.")


@require_POST
def add_rule(request: HttpRequest, goal_id: int) -> HttpResponse:
    goal = _get_goal_for_owner(request, goal_id)
    form = RuleForm(request.POST)
    if form.is_valid():
        try:
            rule = create_rule(goal, request.user, form.cleaned_data["kind"], form.cleaned_data["value"])
        except ValueError as error:
            form.add_error("value", str(error))
        else:
            return _done(request, goal, f"Always allowed: {rule}.")
    return _section(request, goal, status=400, rule_form=form)


@require_POST
def revoke_rule(request: HttpRequest, goal_id: int, rule_id: int) -> HttpResponse:
    goal = _get_goal_for_owner(request, goal_id)
    rule = get_object_or_404(goal.always_allow_rules, pk=rule_id)
    rule.revoke(request.user)
    return _done(request, goal, f"Rule revoked: {rule}.")


@require_POST
def save_settings(request: HttpRequest, goal_id: int) -> HttpResponse:
    goal = _get_goal_for_owner(request, goal_id)
    form = SettingsForm(request.POST)
    if not form.is_valid():
        return _section(request, goal, status=400, settings_form=form)
    gateway_settings = GatewaySettings.for_goal(goal)
    gateway_settings.when_unanswered = form.cleaned_data["when_unanswered"]
    gateway_settings.save()
    choice = gateway_settings.get_when_unanswered_display().lower()
    goal.record("gateway", f"Unanswered agent calls: {choice}.", request.user)
    return _done(request, goal, "Saved.")

"""Live pages: when a request opens or settles, or a goal moves, the open pages of the people concerned change.

Each receiver waits for the commit (the signals are sent inside the transaction), renders the fragment once
and sends it, with each person's own inbox count, to the goal's owner and approvers: nobody else. Best effort:
a failure here is logged (robust on_commit, a broadcast that never raises) and never fails the decision.
Fragments are rendered without a request, so they carry no CSRF token; the page's `hx-headers` does.
"""

from functools import partial

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from django.template.loader import render_to_string

from approvals import signals
from approvals.broadcast import broadcast, fragment
from approvals.models import ApprovalRequest
from approvals.views import _cards, _idle_context
from goals.models import Goal, GoalEvent, OnTimeout, Step


def audience(goal: Goal) -> set[int]:
    """Everyone who may see the goal: its owner and its approvers."""
    return {goal.owner_id, *goal.approvers.values_list("pk", flat=True)}


def inbox_html(user, *, settled: bool) -> str:
    """This person's own header count and, when a request settled and none is left, the inbox's empty state."""
    count = ApprovalRequest.objects.pending().visible_to(user).count()
    html = render_to_string("approvals/_inbox_count.html", {"count": count, "oob": True})
    if settled and count == 0:
        html += render_to_string("approvals/inbox.html#decided", {"show_empty": True, **_idle_context(user)})
    return html


def send_to_each(user_ids: set[int], shared_html: str, *, settled: bool) -> None:
    """One message per person: the fragment rendered once for all, then their own inbox parts."""
    for user in get_user_model().objects.filter(pk__in=user_ids, is_active=True):
        broadcast([user.pk], fragment(shared_html + inbox_html(user, settled=settled)))


def announce_request(request_pk: int) -> None:
    approval = ApprovalRequest.objects.select_related("goal__owner").filter(pk=request_pk).first()
    if approval is None or not approval.is_pending:
        return  # settled before anyone could see it: the settling broadcast tells the pages
    # Nobody has voted on a new request, so its card is the same for everyone who may see it.
    [card] = _cards([approval], approval.goal.owner)
    html = render_to_string("approvals/_live_opened.html", {"approval": approval, "card": card})
    send_to_each(audience(approval.goal), html, settled=False)


def announce_settled(request_pk: int, outcome: str) -> None:
    approval = ApprovalRequest.objects.select_related("goal").filter(pk=request_pk).first()
    if approval is None:
        return
    html = render_to_string("approvals/_live_settled.html", {"approval": approval, "outcome": outcome})
    send_to_each(audience(approval.goal), html, settled=True)


def announce_goal(goal_pk: int) -> None:
    goal = Goal.objects.filter(pk=goal_pk).first()
    if goal is None:
        return
    step = goal.steps.order_by("-number").first()
    html = render_to_string("approvals/_goal_status.html", {"goal": goal, "step": step})
    broadcast(audience(goal), fragment(html))


@receiver(signals.request_opened, dispatch_uid="approvals.live.request_opened")
def on_request_opened(sender, request: ApprovalRequest, **kwargs) -> None:
    transaction.on_commit(partial(announce_request, request.pk), robust=True)


@receiver(signals.decision_made, dispatch_uid="approvals.live.decision_made")
def on_decision_made(sender, request: ApprovalRequest, decision, **kwargs) -> None:
    who = decision.user.get_username() if decision.user else "someone"
    outcome = f"Decided by {who}: {decision.get_verdict_display().lower()}"
    transaction.on_commit(partial(announce_settled, request.pk, outcome), robust=True)


@receiver(signals.request_expired, dispatch_uid="approvals.live.request_expired")
def on_request_expired(sender, request: ApprovalRequest, rule: str = "", **kwargs) -> None:
    outcome = "Expired unanswered: denied"
    if rule == OnTimeout.DENY_AND_PAUSE:
        outcome += ", and the goal is paused"
    transaction.on_commit(partial(announce_settled, request.pk, outcome), robust=True)


@receiver(signals.request_superseded, dispatch_uid="approvals.live.request_superseded")
def on_request_superseded(sender, request: ApprovalRequest, **kwargs) -> None:
    transaction.on_commit(partial(announce_settled, request.pk, "Replaced by a newer request"), robust=True)


@receiver(post_save, sender=GoalEvent, dispatch_uid="approvals.live.goal_status")
def on_goal_status(sender, instance: GoalEvent, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and instance.kind == "status":
        transaction.on_commit(partial(announce_goal, instance.goal_id), robust=True)


@receiver(post_save, sender=Step, dispatch_uid="approvals.live.step_progress")
def on_step_saved(sender, instance: Step, raw: bool = False, **kwargs) -> None:
    if not raw:
        transaction.on_commit(partial(announce_goal, instance.goal_id), robust=True)

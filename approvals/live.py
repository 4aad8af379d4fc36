"""Live pages: when a request opens or settles, or a goal moves, the open pages of the people concerned change.

Each receiver waits for the commit (the signals are sent inside the transaction), then hands the work to this
process's announcer thread, which renders the fragment once and sends it, with each person's own inbox count, to
the goal's owner and approvers: nobody else. So the committing thread (a decision's request, a worker that
queues the goal's next step) never waits for rendering or Redis. Best effort: a failure here is logged and never
fails the decision. Fragments are rendered without a request, so they carry no CSRF token; the page's
`hx-headers` does.
"""

import atexit
import logging
import os
import queue
import threading

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.template.loader import render_to_string

from approvals.broadcast import broadcast, broadcast_each, fragment
from approvals.models import ApprovalRequest
from approvals.views import _cards, _idle_context
from goals.models import Goal, GoalEvent, OnTimeout, Step

log = logging.getLogger(__name__)


def audience(goal: Goal) -> set[int]:
    """Everyone who may see the goal: its owner and its approvers."""
    return {goal.owner_id, *goal.approvers.values_list("pk", flat=True)}


def inbox_html(user, count: int, *, settled: bool) -> str:
    """This person's own header count and, when a request settled and none is left, the inbox's empty state."""
    html = render_to_string("approvals/_inbox_count.html", {"count": count, "oob": True})
    if settled and count == 0:
        html += render_to_string("approvals/inbox.html#decided", {"show_empty": True, **_idle_context(user)})
    return html


def send_to_each(user_ids: set[int], shared_html: str, *, settled: bool) -> None:
    """One message per person: the fragment rendered once for all, then their own inbox parts."""
    users = list(get_user_model().objects.filter(pk__in=user_ids, is_active=True))
    counts = ApprovalRequest.objects.pending().answerable_counts(user.pk for user in users)
    broadcast_each([(user.pk, fragment(shared_html + inbox_html(user, counts[user.pk], settled=settled)))
                    for user in users])


def announce_request(request_pk: int) -> None:
    approvals = ApprovalRequest.objects.select_related("goal__owner").prefetch_related("decisions__user")
    approval = approvals.filter(pk=request_pk).first()
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
    with _lock:
        _goals_queued.discard(goal_pk)
    goal = Goal.objects.filter(pk=goal_pk).only("pk", "status", "owner_id").first()
    if goal is None:
        return
    step = goal.steps.order_by("-number").only("goal_id", "number", "status").first()  # not its diff
    html = render_to_string("approvals/_goal_status.html", {"goal": goal, "step": step})
    broadcast(audience(goal), fragment(html))


def on_request_opened(sender, request: ApprovalRequest, **kwargs) -> None:
    after_commit(announce_request, request.pk)


def on_decision_made(sender, request: ApprovalRequest, decision, **kwargs) -> None:
    who = decision.user.get_username() if decision.user else "someone"
    outcome = f"Decided by {who}: {decision.get_verdict_display().lower()}"
    after_commit(announce_settled, request.pk, outcome)


def on_request_expired(sender, request: ApprovalRequest, rule: str = "", **kwargs) -> None:
    outcome = "Expired unanswered: denied"
    if rule == OnTimeout.DENY_AND_PAUSE:
        outcome += ", and the goal is paused"
    after_commit(announce_settled, request.pk, outcome)


def on_request_superseded(sender, request: ApprovalRequest, **kwargs) -> None:
    after_commit(announce_settled, request.pk, "Replaced by a newer request")


def on_goal_status(sender, instance: GoalEvent, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw and instance.kind == "status":
        after_commit_once(instance.goal_id)


def on_step_saved(sender, instance: Step, raw: bool = False, **kwargs) -> None:
    if not raw:
        after_commit_once(instance.goal_id)


# --- the announcer thread -------------------------------------------------------------------------------------

_lock = threading.Lock()
_jobs: queue.SimpleQueue | None = None
_jobs_pid = 0
_goals_queued: set[int] = set()


def after_commit(function, *args) -> None:
    """Run function(*args) in the announcer thread once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: _announcer().put((function, args)), robust=True)


def after_commit_once(goal_pk: int) -> None:
    """announce_goal after the commit, once for any number of changes to the goal queued before it runs."""

    def queue_goal() -> None:
        with _lock:
            if goal_pk in _goals_queued:
                return
            _goals_queued.add(goal_pk)
        _announcer().put((announce_goal, (goal_pk,)))

    transaction.on_commit(queue_goal, robust=True)


def _announcer() -> queue.SimpleQueue:
    """This process's queue of announcements, served in order by one thread (a forked worker starts its own)."""
    global _jobs, _jobs_pid
    with _lock:
        if _jobs is None or _jobs_pid != os.getpid():
            _jobs, _jobs_pid = queue.SimpleQueue(), os.getpid()
            _goals_queued.clear()
            threading.Thread(target=_announce_forever, args=(_jobs,), name="live-announcer", daemon=True).start()
        return _jobs


def _announce_forever(jobs: queue.SimpleQueue) -> None:
    while True:
        function, args = jobs.get()
        try:
            function(*args)
        except Exception:
            log.exception("could not announce %s%r", function.__name__, args)
        if jobs.empty():  # idle: hold no database connection between announcements
            connections.close_all()


def flush(timeout: float = 5.0) -> bool:
    """Wait until the announcements queued so far are sent (a command about to exit, a test about to look)."""
    if _jobs is None or _jobs_pid != os.getpid():
        return True
    done = threading.Event()
    _jobs.put((done.set, ()))
    return done.wait(timeout)


atexit.register(flush)

"""The loop's side of the approvals signals: a decision or an expiry moves the goal on."""

import logging

from django.conf import settings
from django.db import transaction

from goals import loop

log = logging.getLogger(__name__)


def on_decision(sender, request, decision, **kwargs) -> None:
    if request.from_gateway:
        return  # an agent running elsewhere reads the decision from the API; the managed loop has nothing to do
    if loop.apply_decision(request, decision.verdict):
        enqueue_step(request.goal_id)
    elif request.kind == "done" and decision.verdict == "approve":
        enqueue_publish(request.goal_id)


def on_expiry(sender, request, rule, **kwargs) -> None:
    if request.from_gateway:
        return
    if loop.apply_expiry(request, rule):
        enqueue_step(request.goal_id)


def enqueue_step(goal_id: int) -> None:
    """Queue the goal's next step once the current transaction commits; a broker that is down only delays it."""
    from django.utils import timezone

    from goals.models import Goal

    # The message says it was queued for a due step: once that step is taken, a duplicate claims nothing.
    enqueued_at = timezone.now()
    Goal.objects.filter(pk=goal_id).update(step_enqueued_at=enqueued_at)

    def send() -> None:
        from goals.tasks import run_goal_step

        try:
            run_goal_step.apply_async(
                (goal_id, enqueued_at.isoformat()), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE
            )
        except Exception:  # the reaper re-queues a running goal whose step never arrived
            log.warning(
                "could not queue a step for goal %s: the broker is unreachable", goal_id, exc_info=True
            )

    transaction.on_commit(send)


def enqueue_publish(goal_id: int) -> None:
    """Queue the push of a done goal's branch once the decision commits."""

    def send() -> None:
        from goals.tasks import publish_goal_branch

        try:
            publish_goal_branch.apply_async((goal_id,), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:
            log.warning("could not queue the push of goal %s: the broker is unreachable", goal_id, exc_info=True)

    transaction.on_commit(send)

import logging
import socket
from datetime import datetime

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from goals import loop
from goals.models import Goal, WorkerHeartbeat

log = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True, expires=30)
def record_worker_heartbeat(self) -> None:
    """Beat sends this every 15 s; whichever worker runs it proves the queue is being served."""
    WorkerHeartbeat.beat(self.request.hostname or socket.gethostname())


@worker_ready.connect
def heartbeat_on_start(sender=None, **kwargs) -> None:
    WorkerHeartbeat.beat(getattr(sender, "hostname", None) or socket.gethostname())
    # The worker's main process queries nothing else: its connection goes back to its pool, not held for good.
    close_old_connections()


@shared_task(bind=True, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def run_goal_step(self, goal_id: int, enqueued_at: str | None = None) -> str:
    """Run one step of a goal; the atomic claim inside makes a duplicate, retried or superseded task harmless."""
    stamp = datetime.fromisoformat(enqueued_at) if enqueued_at else None
    outcome = loop.run_step(goal_id, worker=self.request.hostname or socket.gethostname(), enqueued_at=stamp)
    if outcome.status == "continue":
        enqueue_step(goal_id)
    return outcome.status


@shared_task(ignore_result=True, acks_late=True)
def publish_goal_branch(goal_id: int) -> bool:
    """Push a done goal's branch to its repository (the trail records a failure; a retry pushes the same ref)."""
    return loop.publish(goal_id)


@shared_task(ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def check_goal_evidence(baseline_id: int) -> str:
    """Run a goal's checks on its base branch and record the baseline; the claim inside makes a duplicate harmless."""
    baseline = loop.take_baseline(baseline_id)
    return baseline.status if baseline is not None else "taken"


@shared_task(ignore_result=True, expires=60)
def requeue_lost_steps() -> list[int]:
    """Beat runs this every 30 s: a goal whose worker died or whose queued step was lost steps again."""
    goal_ids = loop.lost_goals()
    for goal_id in goal_ids:
        enqueue_step(goal_id)
    return goal_ids


@shared_task(ignore_result=True, expires=120)
def find_stalled_goals() -> int:
    """Beat runs this every minute: stalled goals are marked and the phone is told."""
    return len(loop.detect_stalls())


# --- queueing (the receivers and the views call these; the loop never does) -----------------------------------


def enqueue_step(goal_id: int) -> None:
    """Queue the goal's next step once the current transaction commits; a broker that is down only delays it."""
    # The message says it was queued for a due step: once that step is taken, a duplicate claims nothing.
    enqueued_at = timezone.now()
    Goal.objects.filter(pk=goal_id).update(step_enqueued_at=enqueued_at)

    def send() -> None:
        try:
            run_goal_step.apply_async(
                (goal_id, enqueued_at.isoformat()), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE
            )
        except Exception:  # the reaper re-queues a running goal whose step never arrived
            log.warning("could not queue a step for goal %s: the broker is unreachable", goal_id, exc_info=True)

    transaction.on_commit(send)


def enqueue_publish(goal_id: int) -> None:
    """Queue the push of a done goal's branch once the decision commits."""

    def send() -> None:
        try:
            publish_goal_branch.apply_async((goal_id,), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:
            log.warning("could not queue the push of goal %s: the broker is unreachable", goal_id, exc_info=True)

    transaction.on_commit(send)


def enqueue_baseline(baseline_id: int) -> None:
    """Queue the run of a requested baseline once the request commits."""

    def send() -> None:
        try:
            check_goal_evidence.apply_async((baseline_id,), retry=False, queue=settings.CELERY_TASK_DEFAULT_QUEUE)
        except Exception:  # the row stays queued; the page offers to check again once it is lost
            log.warning("could not queue evidence baseline %s: the broker is unreachable", baseline_id, exc_info=True)

    transaction.on_commit(send)

import socket
from datetime import datetime

from celery import shared_task
from celery.signals import worker_ready

from goals import loop
from goals.models import WorkerHeartbeat
from goals.receivers import enqueue_step


@shared_task(bind=True, ignore_result=True, expires=30)
def record_worker_heartbeat(self) -> None:
    """Beat sends this every 15 s; whichever worker runs it proves the queue is being served."""
    WorkerHeartbeat.beat(self.request.hostname or socket.gethostname())


@worker_ready.connect
def heartbeat_on_start(sender=None, **kwargs) -> None:
    WorkerHeartbeat.beat(getattr(sender, "hostname", None) or socket.gethostname())


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

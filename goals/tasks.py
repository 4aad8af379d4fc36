import socket

from celery import shared_task
from celery.signals import worker_ready

from goals.models import WorkerHeartbeat


@shared_task(bind=True, ignore_result=True, expires=30)
def record_worker_heartbeat(self) -> None:
    """Beat sends this every 15 s; whichever worker runs it proves the queue is being served."""
    WorkerHeartbeat.beat(self.request.hostname or socket.gethostname())


@worker_ready.connect
def heartbeat_on_start(sender=None, **kwargs) -> None:
    WorkerHeartbeat.beat(getattr(sender, "hostname", None) or socket.gethostname())

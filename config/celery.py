import contextlib
import os
import socket

import redis
from celery import Celery
from celery.signals import beat_init, worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("goalpost")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# /healthz sees a worker or a beat alive only while its main process says so (config/liveness.py).
@worker_ready.connect
def worker_alive(sender=None, **kwargs) -> None:
    from config import liveness

    liveness.keep_alive("worker", getattr(sender, "hostname", None) or socket.gethostname())


@worker_shutdown.connect
def worker_gone(sender=None, **kwargs) -> None:
    from config import liveness

    liveness.stop_keeping_alive()
    with contextlib.suppress(redis.RedisError):  # Redis down at shutdown: the entry expires on its own
        liveness.report_gone("worker", getattr(sender, "hostname", None) or socket.gethostname())


@beat_init.connect
def beat_alive(sender=None, **kwargs) -> None:
    from config import liveness

    liveness.keep_alive("beat", socket.gethostname())

import contextlib
import os
import socket

import redis
from celery import Celery
from celery.signals import beat_init, worker_process_init, worker_ready, worker_shutdown

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


# What a forked pool child inherited from its parent's database connections, kept referenced so that no finaliser
# of theirs runs in the child.
_inherited_from_parent: list = []


@worker_process_init.connect
def forget_the_parents_database_connections(**kwargs) -> None:
    """A prefork child starts with its parent's connection and connection pool: their sockets are the parent's
    (the worker's start heartbeat opened them), and a word on them from here, even the goodbye that closing sends,
    would break the parent's session. Forget them without a word.

    The child then connects without a pool: celery closes a prefork child's pool before and after every task, which
    would pull it from under the child's other threads (the live announcer) mid-query. A child's connections are
    opened per task anyway, as they were before pooling (CONN_MAX_AGE 0).

    Runs before celery's own Django fixup (connected at import, it at worker start), which would close the
    inherited pool on the wire."""
    from django.db import connections

    for alias in connections:
        connection = connections[alias]
        pools = getattr(type(connection), "_connection_pools", {})  # PostgreSQL's: one per alias, class-wide
        _inherited_from_parent.extend([connection.connection, pools.pop(alias, None)])
        connection.connection = None
        # The settings dict every thread's connection shares, and the one celery's fixup reads.
        connection.settings_dict.get("OPTIONS", {}).pop("pool", None)

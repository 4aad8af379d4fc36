"""A prefork worker's children leave their parent's pool alone: a child forked after the main process opened its
pool (its start-up heartbeat) forgets it without a word and connects on its own. A real celery worker on PostgreSQL,
children killed so that the main process forks new ones, and PostgreSQL's own list of sessions."""

import os
import signal

import psutil
import pytest
from django.db import connection
from django.utils import timezone

from goals.models import WorkerHeartbeat
from tests.support.processes import wait_until
from tests.support.stack import sender

pytestmark = pytest.mark.django_db(transaction=True)


def database_ports(pid: int) -> set[int]:
    """The local ports of the process's TCP connections to PostgreSQL."""
    port = int(connection.settings_dict.get("PORT") or 5432)
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.raddr and c.raddr.port == port}


def sessions_of_test_database() -> set[int]:
    """The client ports of the test database's sessions, as PostgreSQL lists them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_port FROM pg_stat_activity WHERE datname = current_database() AND client_port IS NOT NULL"
        )
        return {row[0] for row in cursor.fetchall()}


def children(worker) -> set[int]:
    return {child.pid for child in psutil.Process(worker.pid).children()}


def test_children_forked_after_the_main_process_connected_leave_its_pool_alone_and_connect_on_their_own(
    private_redis, stack
):
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's: run with DATABASE_URL=postgres://… (CI does)")
    worker = stack.worker("pool", concurrency=2)
    wait_until(lambda: WorkerHeartbeat.objects.filter(hostname__startswith="pool-").exists(), 60, "the start heartbeat")
    parent_ports = wait_until(lambda: database_ports(worker.pid), 10, "the main process's pooled connection")
    assert parent_ports <= sessions_of_test_database()

    # Kill both children: the main process forks two new ones, now with its pool open.
    first_children = wait_until(lambda: len(children(worker)) == 2 and children(worker), 30, "two children")
    for pid in first_children:
        os.kill(pid, signal.SIGKILL)
    new_children = wait_until(
        lambda: (found := children(worker)) and len(found) == 2 and not found & first_children and found,
        60,
        "two new children",
    )

    killed_at = timezone.now()
    app = sender(private_redis.url)

    def children_at_work() -> bool:
        """A heartbeat written after the kill: a new child reached the database. A burst of them on each try,
        so both children take some (one quick task at a time lands on the same idle child again and again)."""
        for _ in range(10):
            app.send_task("goals.tasks.record_worker_heartbeat", queue=stack.queue)
        return WorkerHeartbeat.objects.filter(hostname__startswith="pool-", seen_at__gt=killed_at).exists()

    try:
        wait_until(children_at_work, 60, "the new children to write a heartbeat", interval=0.2)
    finally:
        app.close()
    assert children(worker) == new_children
    assert parent_ports <= sessions_of_test_database(), "a child closed its parent's pooled session"
    assert database_ports(worker.pid) == parent_ports
    assert worker.poll() is None
    log = stack.log_of(worker)
    assert "Traceback" not in log, log

import json
import os
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from config import liveness
from goals.models import WorkerHeartbeat
from tests.support.processes import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_one_alive(settings):
    """This test's own view of who is alive: the sorted sets of the test instance, empty before and after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = [f"{settings.GOALPOST_REDIS_PREFIX}alive:{component}" for component in ("worker", "beat")]
    client.delete(*keys)
    yield
    client.delete(*keys)
    client.close()


@pytest.fixture
def everything_up():
    WorkerHeartbeat.beat("worker@test")
    liveness.report_alive("worker", "worker@test", pid=4321)
    liveness.report_alive("beat", "beat-host", pid=4322)


@pytest.fixture
def launcher_says(settings, tmp_path):
    """Write the launcher's status file as `make run` does, naming this process as the launcher."""

    def write(**children: dict) -> None:
        path = tmp_path / "launcher.json"
        path.write_text(json.dumps({"launcher_pid": os.getpid(), "children": children}))
        settings.GOALPOST_LAUNCHER_STATUS = str(path)

    return write


def test_healthy_with_database_redis_a_fresh_worker_heartbeat_and_a_beat(client, everything_up):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["down"]) == ("ok", [])
    assert body["web"]["ok"] and body["database"]["ok"] and body["redis"]["ok"] and body["worker"]["ok"]
    assert body["worker"]["worker"] == "worker@test"
    assert body["worker"]["alive"] == [{"name": "worker@test", "pid": 4321}]
    assert body["beat"] == {"ok": True, "alive": [{"name": "beat-host", "pid": 4322}]}


def test_no_worker_yet_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == {"ok": False, "error": "no worker has reported yet", "last_heartbeat": None}


def test_stale_heartbeat_is_503(client):
    WorkerHeartbeat.objects.create(hostname="old@test", seen_at=timezone.now() - timedelta(minutes=5))
    body = client.get("/healthz").json()
    assert body["worker"]["ok"] is False
    assert "ago" in body["worker"]["error"]


def test_a_worker_that_stopped_saying_it_is_alive_is_down_though_its_heartbeat_is_fresh(client, everything_up):
    liveness.report_gone("worker", "worker@test", pid=4321)
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 503
    assert (body["status"], body["down"]) == ("degraded", ["worker"])
    assert body["worker"]["error"] == "no worker is alive" and body["worker"]["alive"] == []
    assert body["web"]["ok"] and body["beat"]["ok"]


def test_no_beat_is_degraded(client, everything_up):
    liveness.report_gone("beat", "beat-host", pid=4322)
    body = client.get("/healthz").json()
    assert (body["status"], body["down"]) == ("degraded", ["beat"])
    assert body["beat"] == {"ok": False, "alive": [], "error": "no beat is alive"}


def test_a_worker_the_launcher_saw_exit_is_down_until_the_one_it_restarted_is_alive(
    client, everything_up, launcher_says
):
    launcher_says(
        worker={"state": "down", "pid": None, "restarts": 0, "last_exit": -9},
        beat={"state": "up", "pid": 4322, "restarts": 0},
    )
    body = client.get("/healthz").json()
    assert body["down"] == ["worker"]
    assert body["worker"]["error"] == "worker is down; the launcher is restarting it"
    assert body["worker"]["launcher"]["last_exit"] == -9

    launcher_says(worker={"state": "up", "pid": 5555, "restarts": 1}, beat={"state": "up", "pid": 4322, "restarts": 0})
    body = client.get("/healthz").json()
    assert body["down"] == ["worker"] and "not ready yet" in body["worker"]["error"]

    liveness.report_alive("worker", "worker@test", pid=5555)
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()


def test_a_launcher_that_is_gone_is_not_believed(client, everything_up, settings, tmp_path):
    path = tmp_path / "gone.json"
    path.write_text(json.dumps({"launcher_pid": 2**22 + 12345, "children": {"worker": {"state": "down"}}}))
    settings.GOALPOST_LAUNCHER_STATUS = str(path)
    assert client.get("/healthz").status_code == 200


def test_redis_down_is_503(client, settings, everything_up):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["redis"]["ok"] is False and body["status"] == "unhealthy"
    assert body["down"] == ["redis", "worker", "beat"]


def test_healthz_needs_no_login_and_no_trailing_slash(client):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/healthz/").status_code == 404


def test_a_worker_that_stops_refreshing_drops_out_when_its_entry_expires(client, everything_up, monkeypatch):
    """What a worker killed with SIGKILL leaves: an entry nobody refreshes, gone after its time to live."""
    monkeypatch.setattr(liveness, "LIVENESS_TTL_S", 0.3)
    liveness.report_alive("worker", "worker@test", pid=4321)
    wait_until(lambda: client.get("/healthz").json()["down"] == ["worker"], 5, "the entry to expire")
    assert liveness.alive("worker") == []

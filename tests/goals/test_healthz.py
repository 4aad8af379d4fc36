from datetime import timedelta

import pytest
from django.utils import timezone

from goals.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_healthy_with_database_redis_and_a_fresh_worker_heartbeat(client):
    WorkerHeartbeat.beat("worker@test")
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"] and body["worker"]["ok"]
    assert body["worker"]["worker"] == "worker@test"


def test_no_worker_yet_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == {"ok": False, "error": "no worker has reported yet", "last_heartbeat": None}


def test_stale_heartbeat_is_503(client):
    WorkerHeartbeat.objects.create(hostname="old@test", seen_at=timezone.now() - timedelta(minutes=5))
    body = client.get("/healthz").json()
    assert body["worker"]["ok"] is False
    assert "ago" in body["worker"]["error"]


def test_redis_down_is_503(client, settings):
    WorkerHeartbeat.beat("worker@test")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["redis"]["ok"] is False


def test_healthz_needs_no_login_and_no_trailing_slash(client):
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/healthz/").status_code == 404

"""Which celery workers and beats are alive right now, for /healthz: each keeps its name in a Redis sorted set of
the instance (scored by when it expires, by Redis's own clock) from a thread of its main process. A process
killed with SIGKILL drops out within LIVENESS_TTL_S. Works the same under `make run` and in production.

Under `make run` the launcher also writes what it supervises to a JSON file (GOALPOST_LAUNCHER_STATUS): a child
it saw exit is down until the one it started again is alive, however fresh the dead one's entry still is.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import redis
from django.conf import settings

log = logging.getLogger(__name__)
LIVENESS_INTERVAL_S = 1.0
LIVENESS_TTL_S = 5.0
_stop = threading.Event()


def _key(component: str) -> str:
    return f"{settings.GOALPOST_REDIS_PREFIX}alive:{component}"


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)


def _now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def report_alive(component: str, name: str, pid: int | None = None, client: redis.Redis | None = None) -> None:
    """Say once that ``name`` (a worker's hostname, a beat's host) is alive for the next LIVENESS_TTL_S."""
    own = client is None
    client = client or _client()
    try:
        key = _key(component)
        member = json.dumps({"name": name, "pid": pid or os.getpid()}, sort_keys=True)
        client.zadd(key, {member: _now(client) + LIVENESS_TTL_S})
        client.expire(key, int(LIVENESS_TTL_S * 4))
    finally:
        if own:
            client.close()


def report_gone(component: str, name: str, pid: int | None = None) -> None:
    """A clean shutdown: drop out at once instead of after LIVENESS_TTL_S."""
    client = _client()
    try:
        client.zrem(_key(component), json.dumps({"name": name, "pid": pid or os.getpid()}, sort_keys=True))
    finally:
        client.close()


def keep_alive(component: str, name: str) -> threading.Thread:
    """Report ``name`` alive every LIVENESS_INTERVAL_S from a daemon thread, for as long as this process lives."""
    _stop.clear()
    pid = os.getpid()

    def beat() -> None:
        client = _client()
        failing = False
        while not _stop.is_set():
            try:
                report_alive(component, name, pid, client)
                failing = False
            except redis.RedisError:
                if not failing:  # Redis down: say it once, keep trying
                    log.warning("cannot report %s %s alive: Redis does not answer", component, name)
                failing = True
            _stop.wait(LIVENESS_INTERVAL_S)
        client.close()

    thread = threading.Thread(target=beat, name=f"goalpost-{component}-alive", daemon=True)
    thread.start()
    return thread


def stop_keeping_alive() -> None:
    _stop.set()


def alive(component: str) -> list[dict]:
    """The processes of ``component`` alive now: [{"name", "pid"}], oldest entry first."""
    client = _client()
    try:
        key = _key(component)
        now = _now(client)
        client.zremrangebyscore(key, "-inf", now)
        return [json.loads(member) for member in client.zrangebyscore(key, now, "+inf")]
    finally:
        client.close()


def launcher_children() -> dict | None:
    """What `make run`'s launcher says of its children ({name: {"state", "pid", "restarts", …}}), or None when
    no launcher started this process or it is gone."""
    path = settings.GOALPOST_LAUNCHER_STATUS
    if not path:
        return None
    try:
        status = json.loads(Path(path).read_text())
        os.kill(int(status["launcher_pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    children = status.get("children")
    return children if isinstance(children, dict) else None


def component_state(component: str, children: dict | None) -> dict:
    """One process kind as /healthz shows it: ok when one is alive (and, under the launcher, when it is the
    one the launcher last started)."""
    try:
        processes = alive(component)
    except redis.RedisError as error:
        return {"ok": False, "alive": [], "error": f"Redis: {str(error)[:150]}"}
    result: dict = {"ok": bool(processes), "alive": processes}
    supervised = (children or {}).get(component)
    if isinstance(supervised, dict):
        result["launcher"] = supervised
        if supervised.get("state") != "up":
            result["ok"] = False
            result["error"] = f"{component} is down; the launcher is restarting it"
            return result
        if supervised.get("pid") not in {process.get("pid") for process in processes}:
            result["ok"] = False
            result["error"] = f"{component} restarted by the launcher, not ready yet"
            return result
    if not processes:
        result["error"] = f"no {component} is alive"
    return result

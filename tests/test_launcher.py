"""`make run`'s launcher: a private Redis when none answers, the whole stack up, a child that dies started again
while the rest serves, and nothing left after Ctrl-C."""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil
import pytest

from config.launcher import (
    Supervisor,
    private_socket_path,
    redis_answers,
    start_private_redis,
    stop_all,
    wait_for_health,
)
from tests.support.processes import ROOT, free_port, wait_until, wait_until_gone

CRASH = [sys.executable, "-c", "raise SystemExit(3)"]
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_private_redis_starts_on_a_unix_socket_and_stops(tmp_path):
    process, url = start_private_redis(tmp_path)
    try:
        assert url == f"unix://{tmp_path / 'redis.sock'}"
        assert redis_answers(url)
    finally:
        stop_all([("redis", process)])
    assert process.returncode is not None
    assert not redis_answers(url)


def test_long_var_paths_get_a_short_socket(tmp_path):
    deep = tmp_path / ("d" * 120)
    path = private_socket_path(deep)
    assert len(str(path)) <= 100
    assert private_socket_path(deep) == path


class NotYetHealthy(http.server.BaseHTTPRequestHandler):
    """/healthz as daphne answers it while the worker has not reported yet: 503 for the first few asks, then 200."""

    unhealthy_answers = 3

    def do_GET(self):
        type(self).unhealthy_answers -= 1
        status = 503 if type(self).unhealthy_answers >= 0 else 200
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "unhealthy", "worker": {"ok": false}}' if status == 503 else b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def healthz_server():
    NotYetHealthy.unhealthy_answers = 3
    server = http.server.HTTPServer(("127.0.0.1", 0), NotYetHealthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/healthz"
    server.shutdown()
    server.server_close()


def test_it_waits_for_healthz_to_answer_200_not_for_the_port(healthz_server):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert wait_for_health(healthz_server, [("daphne", sleeper)], timeout=20) == (True, "")
        assert NotYetHealthy.unhealthy_answers < 0  # it asked through the three 503s
    finally:
        sleeper.kill()
        sleeper.wait()


def test_it_gives_up_when_a_process_exits_or_the_deadline_passes(healthz_server):
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    assert wait_for_health(healthz_server, [("worker", exited)], timeout=20) == (False, "worker exited with code 3")
    NotYetHealthy.unhealthy_answers = 1000
    healthy, why = wait_for_health(healthz_server, [], timeout=1)
    assert not healthy and "did not answer 200 within 1 s" in why and "unhealthy" in why


# --- the supervisor, with real child processes ---------------------------------------------------------------


def backoffs_until(supervisor: Supervisor, restarts: int) -> list[float]:
    """Run the supervisor's checks until its first child was started again ``restarts`` times: each wait it chose."""
    child = supervisor.children[0]
    seen: list[float] = []
    deadline = time.monotonic() + 20
    while child.restarts < restarts:
        assert time.monotonic() < deadline, seen
        supervisor.check()
        if child.restart_at is not None and len(seen) == child.restarts:
            seen.append(child.backoff)
        time.sleep(0.01)
    return seen


def test_a_child_that_keeps_crashing_is_started_again_with_doubling_waits_up_to_the_cap(tmp_path):
    supervisor = Supervisor(tmp_path / "status.json", first=0.05, cap=0.2, stable_after=60)
    supervisor.start("worker", CRASH, dict(os.environ))
    started = time.monotonic()
    try:
        assert backoffs_until(supervisor, 4) == [0.05, 0.1, 0.2, 0.2]
        assert time.monotonic() - started >= 0.55
    finally:
        supervisor.stop()


def test_a_child_that_stayed_up_a_while_is_started_again_after_the_first_wait(tmp_path):
    supervisor = Supervisor(tmp_path / "status.json", first=0.05, cap=5, stable_after=0.3)
    supervisor.start("beat", [sys.executable, "-c", "import time; time.sleep(0.4)"], dict(os.environ))
    try:
        assert backoffs_until(supervisor, 2) == [0.05, 0.05]
    finally:
        supervisor.stop()


def test_the_status_file_says_what_is_down_and_stop_leaves_nothing_even_mid_backoff(tmp_path):
    status = tmp_path / "status.json"
    supervisor = Supervisor(status, first=30, cap=30)
    daphne = supervisor.start("daphne", SLEEP, dict(os.environ))
    supervisor.start("worker", CRASH, dict(os.environ))

    def worker_state() -> dict:
        supervisor.check()
        return json.loads(status.read_text())["children"]["worker"]

    down = wait_until(lambda: (state := worker_state())["state"] == "down" and state, 10, "the worker to exit")
    assert down == {"state": "down", "pid": None, "restarts": 0, "last_exit": 3}
    children = json.loads(status.read_text())
    assert children["launcher_pid"] == os.getpid()
    assert children["children"]["daphne"] == {"state": "up", "pid": daphne.pid, "restarts": 0, "last_exit": None}

    supervisor.stop()
    assert wait_until_gone(daphne.pid) and daphne.returncode is not None
    assert not status.exists()
    supervisor.check()
    assert supervisor.children[1].process is None  # stopping cancelled the restart that was due in 30 s


# --- the launcher end to end -------------------------------------------------------------------------------------


def test_make_run_serves_login_and_healthz_then_ctrl_c_stops_everything(tmp_path):
    """The launcher end to end on SQLite in a fresh var/, with the Redis it finds. A worker killed with SIGKILL
    is started again while daphne keeps answering and /healthz says the worker is down; SIGINT leaves nothing."""
    port = free_port()
    env = {
        **os.environ,
        "GOALPOST_VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": "",
        "PORT": str(port),
        "GOALPOST_DEMO_PASSWORD": "demo-pass-for-tests",
        "GOALPOST_CHANNEL_PREFIX": f"launcher-test-{port}",
    }
    for name in ("REDIS_URL", "GOALPOST_INSTANCE", "GOALPOST_CELERY_QUEUE"):  # an instance of its own, as a newcomer's
        env.pop(name, None)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "config.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 300  # the launcher waits for a worker's heartbeat: slow on a loaded machine
        while time.monotonic() < deadline:
            line = launcher.stdout.readline()
            if not line and launcher.poll() is not None:
                break
            output.append(line)
            if "Goalpost is running at" in line:
                break
        text = "".join(output)
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "Demo user: demo  password: demo-pass-for-tests" in text
        children = psutil.Process(launcher.pid).children(recursive=True)
        assert len(children) >= 3

        # "Running" is said only once /healthz answers: database, Redis and a worker are up at that very moment.
        status, body = fetch(f"http://127.0.0.1:{port}/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok"), body
        status, body = fetch(f"http://127.0.0.1:{port}/accounts/login/")
        assert status == 200 and b"Sign in" in body
        status, _ = fetch(f"http://127.0.0.1:{port}/static/vendor/htmx-2.0.11.min.js")
        assert status == 200

        first_worker = worker_pid(tmp_path / "var")
        os.killpg(first_worker, signal.SIGKILL)
        answers: list[int] = []

        def healthz_while_serving() -> dict:
            answers.append(fetch(f"http://127.0.0.1:{port}/accounts/login/")[0])
            status, body = fetch(f"http://127.0.0.1:{port}/healthz")
            return {**json.loads(body), "code": status}

        down = wait_until(lambda: "worker" in (h := healthz_while_serving())["down"] and h, 30, "/healthz: worker down")
        assert (down["code"], down["status"], down["web"]["ok"], down["database"]["ok"]) == (503, "degraded", True, True)
        assert down["worker"]["launcher"]["state"] in ("down", "up") and down["worker"]["ok"] is False
        healthy = wait_until(lambda: (h := healthz_while_serving())["code"] == 200 and h, 120, "the worker back")
        assert healthy["worker"]["launcher"]["restarts"] == 1
        assert healthy["worker"]["launcher"]["pid"] not in (None, first_worker)
        assert set(answers) == {200}, answers  # daphne answered throughout
        children = psutil.Process(launcher.pid).children(recursive=True)
    finally:
        launcher.send_signal(signal.SIGINT)
        try:
            launcher.wait(timeout=40)
        except subprocess.TimeoutExpired:
            launcher.kill()
            pytest.fail("the launcher did not stop within 40 s of Ctrl-C")
    leftover = [child for child in children if child.is_running() and child.status() != psutil.STATUS_ZOMBIE]
    assert leftover == [], [child.cmdline() for child in leftover]
    assert launcher.returncode == 0


def worker_pid(var_dir) -> int:
    """The running worker's pid, as the launcher's status file says."""
    (status,) = var_dir.glob("launcher-*.json")
    return json.loads(status.read_text())["children"]["worker"]["pid"]

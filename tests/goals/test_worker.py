"""A real celery worker process on the local Redis: killed with SIGKILL mid-step, the goal resumes, no step is
lost or run twice."""

import os
import signal
import subprocess
import sys
import uuid

import pytest
from django.conf import settings

from goals.models import Goal, GoalStatus, StepStatus
from goals.tasks import requeue_lost_steps, run_goal_step
from tests.factories import GOOD_STEP, SEVEN_FILES, make_scripted_goal, run_git, subprocess_database_url
from tests.support.processes import ROOT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
LEASE_S = 3


@pytest.fixture
def queue():
    return f"goalpost-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_worker(queue, tmp_path):
    started: list[subprocess.Popen] = []
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "GOALPOST_CELERY_QUEUE": queue,
        "GOALPOST_STEP_LEASE_S": str(LEASE_S),
        "GOALPOST_WORKTREE_ROOT": str(tmp_path / "worktrees"),
    }

    def start(name: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", "1",
             "-n", f"{name}-{queue}@%h", "-l", "warning", "--without-gossip", "--without-mingle"],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def test_a_worker_killed_mid_step_loses_no_step_and_runs_none_twice(owner, shop_repo, tmp_path, queue, start_worker, settings):
    slow = {**GOOD_STEP, "summary": "Slow step", "sleep": 5}
    goal = make_scripted_goal(owner, shop_repo, [slow, slow, GOOD_STEP, SEVEN_FILES])

    first = start_worker("a")
    run_goal_step.apply_async((goal.pk,), queue=queue)
    wait_until(lambda: goal.steps.filter(number=1, status=StepStatus.RUNNING).exists(), 60, "step 1 to start")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)

    start_worker("b")
    # The lease runs out; the reaper (beat runs it every 30 s) hands the goal to the surviving worker.
    wait_until(lambda: Goal.objects.filter(pk=goal.pk, lease_expires_at__lt=__import__("django.utils.timezone").utils.timezone.now()).exists(), 30, "the lease to run out")
    requeue_lost_steps.apply_async(queue=queue)
    wait_until(lambda: Goal.objects.get(pk=goal.pk).status == GoalStatus.WAITING, 120, "the goal to reach its plan request")

    steps = list(goal.steps.order_by("number").values("number", "status", "attempts"))
    assert [s["number"] for s in steps] == [1, 2, 3, 4]
    assert steps[0]["attempts"] == 2
    assert [s["status"] for s in steps] == ["passed", "passed", "passed", "waiting"]
    subjects = run_git(tmp_path / "gitdirs" / settings.GOALPOST_INSTANCE / f"goal-{goal.pk}.git", "log", "--format=%s", f"goalpost/{goal.pk}", "^main").splitlines()
    assert [s.split(":")[0] for s in subjects] == ["Step 4", "Step 3", "Step 2", "Step 1"]

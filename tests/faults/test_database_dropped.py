"""The database connection dropped under a worker mid-step (PostgreSQL kills its backends): the step is run again
from the last kept commit, not half-recorded, and the goal goes on. A real worker process and beat (the reaper)."""


import pytest
from django.db import connection

from approvals.models import ApprovalRequest, RequestStatus
from goals.models import Step, StepStatus
from tests.factories import make_scripted_goal, make_shop_repo
from tests.support.processes import wait_until
from tests.support.soak import drop_every_other_connection
from tests.support.stack import (
    QUICK_EVIDENCE,
    branch_subjects,
    queue_step,
    step_asking_for_a_plan,
    step_writing,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_step_whose_database_connection_drops_is_run_again_not_corrupted(owner, tmp_path, private_redis, stack):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite has no server connection to drop: run with DATABASE_URL=postgres://… (CI does)")
    entries = [step_writing(1, sleep=2), step_writing(2), step_asking_for_a_plan(3)]
    repo = make_shop_repo(tmp_path / "shop")
    goal = make_scripted_goal(owner, repo, entries, evidence=QUICK_EVIDENCE)
    worker = stack.worker("a")
    stack.beat()
    queue_step(private_redis.url, stack.queue, goal.pk)
    wait_until(lambda: goal.steps.filter(number=1, status=StepStatus.RUNNING).exists(), 60, "step 1 to start")
    assert drop_every_other_connection() >= 1

    wait_until(
        lambda: ApprovalRequest.objects.filter(goal=goal, step_number=3, status=RequestStatus.PENDING).exists(),
        90,
        "the goal to recover and reach step 3's plan request",
    )
    assert worker.poll() is None, "the worker survived the dropped connection"
    steps = list(Step.objects.filter(goal=goal).order_by("number").values_list("number", "status"))
    assert steps == [(1, "passed"), (2, "passed"), (3, "waiting")]
    assert branch_subjects(stack.workdir, goal.pk) == ["Step 1: Add part 1", "Step 2: Add part 2", "Step 3: Spread part 3"]
    first = goal.steps.get(number=1)
    assert first.commit_sha and first.diff_stats["files"] == 1

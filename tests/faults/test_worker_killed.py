"""Celery workers killed with SIGKILL mid-step, again and again, while people approve from their phones: no step
is lost or run twice, no decision is lost. Real worker processes, beat (the reaper), daphne for the decisions.

The long run, with Redis restarts and dropped database connections besides, is tests/faults/test_bad_day.py
(`make soak`).
"""

import time

import pytest

from goals.models import Goal, GoalStatus, Step
from tests.factories import make_scripted_goal, make_shop_repo
from tests.support.soak import (
    Run,
    approve_pending,
    check_nothing_lost_or_doubled,
    kill_while_running,
    script,
    signed_in,
)
from tests.support.stack import QUICK_EVIDENCE, queue_step

pytestmark = pytest.mark.django_db(transaction=True)


def test_workers_killed_mid_step_lose_no_step_run_none_twice_and_lose_no_decision(owner, tmp_path, private_redis, stack):
    entries = script(5, sleep=2, plan_every=3, done=True)
    repo = make_shop_repo(tmp_path / "shop")
    goal = make_scripted_goal(owner, repo, entries, evidence=QUICK_EVIDENCE)
    worker = stack.worker("w0")
    stack.beat()
    queue_step(private_redis.url, stack.queue, goal.pk)
    web = stack.daphne()
    browser = signed_in(web, owner)
    run = Run()
    killed_steps: set[int] = set()

    def pick(step: Step) -> bool:  # the first attempt of step 1 (before any decision) and of step 4 (after one)
        chosen = step.number in (1, 4) and step.number not in killed_steps
        killed_steps.add(step.number)
        return chosen

    deadline = time.monotonic() + 150
    while Goal.objects.get(pk=goal.pk).status != GoalStatus.DONE:
        assert time.monotonic() < deadline, f"the goal did not finish: {list(goal.steps.values_list('number', 'status'))}"
        worker = kill_while_running(stack, run, worker, [goal], pick)
        approve_pending(browser, web, [goal], run)
        time.sleep(0.2)

    assert run.kills == 2
    restarts = check_nothing_lost_or_doubled(goal, entries, run, stack.workdir)
    assert goal.steps.count() == len(entries)
    assert 1 <= restarts <= run.kills
    assert len(run.decisions) == 2  # the plan request of step 3 and the final word on step 5

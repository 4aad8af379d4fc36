"""Celery workers killed with SIGKILL mid-step, again and again, while people approve from their phones: no step
is lost or run twice, no decision is lost. Real worker processes, beat (the reaper), daphne for the decisions.

The short run (two kills) is in the default suite; the long one (`make soak`) kills for minutes.
"""

import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from approvals.models import ApprovalRequest, Decision, RequestStatus
from goals.models import Goal, GoalStatus, Step, StepStatus
from tests.factories import make_scripted_goal, make_shop_repo
from tests.support.processes import wait_until
from tests.support.stack import (
    QUICK_EVIDENCE,
    branch_subjects,
    queue_step,
    session_for,
    step_asking_for_a_plan,
    step_writing,
)

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass
class Run:
    """What a run did to the goals: the kills that landed on a running step, and the decisions people made."""

    kills: int = 0
    decisions: list[int] = field(default_factory=list)


def script(length: int, *, sleep: float, plan_every: int, done: bool) -> list[dict]:
    entries = [
        step_asking_for_a_plan(i) if plan_every and i % plan_every == 0 else step_writing(i, sleep=sleep)
        for i in range(1, length + 1)
    ]
    if done:
        entries[-1] = {**entries[-1], "done": True}
    return entries


def approve_pending(browser: requests.Session, web: str, goals: list[Goal], run: Run) -> None:
    for request in ApprovalRequest.objects.filter(goal__in=goals, status=RequestStatus.PENDING):
        # A budget used up is extended (approving alone is refused: it would only ask again).
        extend = {"verdict": "extend", "extend_budget": request.details.get("budget"), "extend_by": "20"}
        answer = browser.post(
            f"{web}/approvals/{request.pk}/decide",
            data=extend if request.kind == "budget" else {"verdict": "approve"},
            headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text[:500]
        assert "Approved" in answer.text or "Budget extended" in answer.text, answer.text[:500]
        run.decisions.append(request.pk)


def signed_in(web: str, user) -> requests.Session:
    browser = requests.Session()
    browser.cookies.update(session_for(user))
    assert browser.get(web + "/", timeout=30).status_code == 200  # sets the CSRF cookie
    return browser


def check_nothing_lost_or_doubled(goal: Goal, script_entries: list[dict], run: Run, workdir: Path) -> int:
    """Every step that ran is on the branch once, in order; returns the restarts (steps run again after a kill)."""
    steps = list(goal.steps.order_by("number"))
    numbers = [step.number for step in steps]
    assert numbers == list(range(1, len(steps) + 1)), f"steps lost or doubled: {numbers}"
    assert all(step.status != StepStatus.RUNNING for step in steps)
    assert all(step.status != StepStatus.FAILED for step in steps), [s.error for s in steps if s.error]
    expected = [f"Step {step.number}: {script_entries[step.number - 1]['summary']}" for step in steps]
    assert branch_subjects(workdir, goal.pk) == expected
    for request in ApprovalRequest.objects.filter(goal=goal, pk__in=run.decisions):
        assert Decision.objects.filter(request=request).count() == 1
        assert request.status == RequestStatus.APPROVED
        if request.kind == "done":  # the final word: the step had passed, the goal is done
            assert Goal.objects.get(pk=goal.pk).status == GoalStatus.DONE
        elif request.kind in ("budget", "stall") or request.step_number is None:
            # A budget or stall request: the loop took the decision (went on, or asked again with the budget
            # still spent); its step, if it names one, had already been decided.
            went_on = goal.steps.filter(started_at__gt=request.decided_at).exists()
            asked_again = ApprovalRequest.objects.filter(goal=goal, created_at__gt=request.decided_at).exists()
            assert went_on or asked_again, f"the {request.kind} decision never reached the loop"
        else:  # the decision reached the loop: the step is approved and the goal went on past it
            assert goal.steps.get(number=request.step_number).status == StepStatus.APPROVED
            assert goal.steps.filter(number=request.step_number + 1).exists()
    return sum(step.attempts - 1 for step in steps)


def kill_while_running(stack, run: Run, worker, goals: list[Goal], pick) -> object:
    """If a step is running and `pick` chooses it, SIGKILL the worker and start another; the worker alive."""
    assert worker.poll() is None, f"the worker exited by itself: {stack.log_of(worker)}"
    running = Step.objects.filter(goal__in=goals, status=StepStatus.RUNNING).first()
    if running is None or not pick(running):
        return worker
    stack.kill(worker)
    run.kills += 1
    return stack.worker(f"w{run.kills}")


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


@pytest.mark.soak
def test_soak_workers_killed_again_and_again_while_people_approve(owner, tmp_path, private_redis, stack):
    minutes = float(os.environ.get("GOALPOST_SOAK_MINUTES", "3"))
    rng = random.Random(os.environ.get("GOALPOST_SOAK_SEED", "7"))
    goals, scripts = [], {}
    for index in range(3):
        entries = script(400, sleep=rng.choice([0.5, 1, 2]), plan_every=4, done=False)
        repo = make_shop_repo(tmp_path / f"shop{index}")
        goal = make_scripted_goal(owner, repo, entries, evidence=QUICK_EVIDENCE)
        goals.append(goal)
        scripts[goal.pk] = entries
    worker = stack.worker("w0")
    spare = stack.worker("spare")  # a second worker that is never killed: the reaper hands it lost goals
    stack.beat()
    web = stack.daphne()
    for goal in goals:
        queue_step(private_redis.url, stack.queue, goal.pk)
    browser = signed_in(web, owner)
    run = Run()
    last_kill = time.monotonic()

    def pick(step: Step) -> bool:
        return time.monotonic() - last_kill > rng.uniform(2, 8)

    end = time.monotonic() + minutes * 60
    while time.monotonic() < end:
        kills_before = run.kills
        worker = kill_while_running(stack, run, worker, goals, pick)
        if run.kills != kills_before:
            last_kill = time.monotonic()
        approve_pending(browser, web, goals, run)
        time.sleep(0.3)

    # Quiet down: no more kills or approvals; every goal comes to rest on its next plan request.
    for goal in goals:
        wait_until(lambda goal=goal: Goal.objects.get(pk=goal.pk).status == GoalStatus.WAITING, 120, f"goal {goal.pk} to rest")
    restarts = sum(check_nothing_lost_or_doubled(goal, scripts[goal.pk], run, stack.workdir) for goal in goals)
    steps = Step.objects.filter(goal__in=goals).count()
    print(
        f"\nsoak: {minutes:g} min, {run.kills} SIGKILLs mid-step, {restarts} steps rerun, {steps} steps, "
        f"{len(run.decisions)} decisions; none lost, none doubled"
    )
    assert run.kills >= minutes * 4
    assert restarts <= run.kills
    assert spare.poll() is None

"""What the fault runs share: goals on long scripts, a person approving from the phone over HTTP, SIGKILLs of a
running worker, and the check that no step was lost or run twice and no decision lost."""

from dataclasses import dataclass, field
from pathlib import Path

import requests

from approvals.models import ApprovalRequest, Decision, RequestStatus
from goals.models import Goal, GoalStatus, Step, StepStatus
from tests.support.stack import branch_subjects, session_for, step_asking_for_a_plan, step_writing


@dataclass
class Run:
    """What a run did to the goals: the kills that landed on a running step, and the decisions people made."""

    kills: int = 0
    decisions: list[int] = field(default_factory=list)
    taps_refused: int = 0


def script(length: int, *, sleep: float, plan_every: int, done: bool) -> list[dict]:
    entries = [
        step_asking_for_a_plan(i) if plan_every and i % plan_every == 0 else step_writing(i, sleep=sleep)
        for i in range(1, length + 1)
    ]
    if done:
        entries[-1] = {**entries[-1], "done": True}
    return entries


def approve_pending(browser: requests.Session, web: str, goals: list[Goal], run: Run, *, faults: bool = False) -> None:
    """Approve every pending request of the goals over HTTP, as a person on the phone. With `faults` on, a tap that
    fails (a 5xx, no answer: a part is down) is counted and made again on the next round, as a person would."""
    for request in ApprovalRequest.objects.filter(goal__in=goals, status=RequestStatus.PENDING):
        # A budget used up is extended (approving alone is refused: it would only ask again).
        extend = {"verdict": "extend", "extend_budget": request.details.get("budget"), "extend_by": "20"}
        try:
            answer = browser.post(
                f"{web}/approvals/{request.pk}/decide",
                data=extend if request.kind == "budget" else {"verdict": "approve"},
                headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"},
                timeout=30,
            )
        except requests.RequestException:
            if not faults:
                raise
            run.taps_refused += 1
            continue
        if faults and answer.status_code >= 500:
            run.taps_refused += 1
            continue
        assert answer.status_code == 200, answer.text[:500]
        # "Already decided": an earlier tap whose answer was lost to a fault had been recorded.
        retried = faults and "Already decided" in answer.text
        assert retried or "Approved" in answer.text or "Budget extended" in answer.text, answer.text[:500]
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


def drop_every_other_connection() -> int:
    """pg_terminate_backend on every session of the test database but this one: the workers', daphne's, beat's."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]

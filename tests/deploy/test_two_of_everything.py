"""Past one machine: two celery workers and two daphne processes on one Redis and one PostgreSQL, beat once.

No goal is stepped twice, and a person's sockets on either daphne get the card of every request a step on either
worker opens; decisions taken through either daphne reach whichever worker is free."""


import pytest
import requests
from django.db import connection

from approvals.models import ApprovalRequest, RequestStatus
from goals.models import Step
from tests.factories import make_scripted_goal, make_shop_repo
from tests.support.processes import wait_until
from tests.support.stack import (
    QUICK_EVIDENCE,
    LiveSocket,
    branch_subjects,
    queue_step,
    session_for,
    step_asking_for_a_plan,
    step_writing,
)

pytestmark = pytest.mark.django_db(transaction=True)
GOALS = 4


def signed_in(web: str, user) -> requests.Session:
    browser = requests.Session()
    browser.cookies.update(session_for(user))
    assert browser.get(web + "/", timeout=30).status_code == 200
    return browser


def pending(goals, step_number: int) -> list[ApprovalRequest]:
    return list(
        ApprovalRequest.objects.filter(goal__in=goals, step_number=step_number, status=RequestStatus.PENDING)
    )


def test_two_workers_and_two_daphnes_step_each_goal_once_and_update_every_client(
    owner, approver, tmp_path, private_redis, stack
):
    if connection.vendor != "postgresql":
        pytest.skip("several hosts share one PostgreSQL; SQLite is a one-machine database: run with DATABASE_URL")
    goals = []
    for index in range(GOALS):
        goal = make_scripted_goal(
            owner,
            make_shop_repo(tmp_path / f"shop{index}"),
            [step_writing(1, sleep=0.5), step_asking_for_a_plan(2), step_asking_for_a_plan(3)],
            evidence=QUICK_EVIDENCE,
            title=f"Goal number {index}",
        )
        goal.approvers.add(approver)
        goals.append(goal)
    stack.worker("one")
    stack.worker("two")
    stack.beat()
    webs = [stack.daphne(), stack.daphne()]
    # Each person has a phone on each daphne.
    sockets = [LiveSocket(web, session_for(user)) for web in webs for user in (owner, approver)]
    try:
        for socket in sockets:
            assert socket.connect() == 0
        for goal in goals:
            queue_step(private_redis.url, stack.queue, goal.pk)

        for round_, step_number in enumerate((2, 3)):
            requests_opened = wait_until(
                lambda step_number=step_number: len(pending(goals, step_number)) == GOALS and pending(goals, step_number),
                90,
                f"every goal's plan request for step {step_number}",
            )
            for socket in sockets:
                for opened in requests_opened:
                    socket.wait_for_text(f'<article id="request-{opened.pk}"', timeout=30)
            if round_ == 0:  # decide half through each daphne, as the owner and the approver
                for index, opened in enumerate(requests_opened):
                    web, user = webs[index % 2], (owner, approver)[index // 2 % 2]
                    browser = signed_in(web, user)
                    answer = browser.post(
                        f"{web}/approvals/{opened.pk}/decide",
                        data={"verdict": "approve"},
                        headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"},
                        timeout=30,
                    )
                    assert answer.status_code == 200 and "Approved" in answer.text, answer.text[:300]
    finally:
        for socket in sockets:
            socket.close()

    for goal in goals:
        steps = list(Step.objects.filter(goal=goal).order_by("number").values_list("number", "status", "attempts"))
        assert steps == [(1, "passed", 1), (2, "approved", 1), (3, "waiting", 1)]
        assert branch_subjects(stack.workdir, goal.pk) == [
            "Step 1: Add part 1", "Step 2: Spread part 2", "Step 3: Spread part 3"
        ]
    workers = set(Step.objects.filter(goal__in=goals).values_list("worker", flat=True))
    assert workers and all(worker.startswith(("one-", "two-")) for worker in workers), workers

"""Redis stopped for a while: pages still render, a decision is accepted and stored, the step it releases reaches
a worker once Redis is back (exactly once), and the live socket is dropped in a way the page reconnects from.

daphne, a celery worker and beat run as real processes on a private Redis that the test stops and starts.
"""

import pytest
import requests

from approvals.models import ApprovalRequest, Decision, RequestStatus
from goals.models import Goal, GoalStatus
from tests.factories import make_scripted_goal, make_shop_repo
from tests.support.processes import wait_until
from tests.support.stack import (
    QUICK_EVIDENCE,
    LiveSocket,
    branch_subjects,
    queue_step,
    reconnect_codes,
    session_for,
    step_asking_for_a_plan,
    step_writing,
)

pytestmark = pytest.mark.django_db(transaction=True)


def pending_request(goal: Goal, step_number: int) -> ApprovalRequest | None:
    return ApprovalRequest.objects.filter(goal=goal, step_number=step_number, status=RequestStatus.PENDING).first()


def decide(browser: requests.Session, web: str, request: ApprovalRequest, verdict: str) -> requests.Response:
    return browser.post(
        f"{web}/approvals/{request.pk}/decide",
        data={"verdict": verdict, "comment": "go on"},
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "HX-Request": "true"},
        timeout=30,
    )


def test_a_decision_made_while_redis_is_down_is_stored_answered_and_run_once_redis_is_back(
    owner, approver, tmp_path, private_redis, stack
):
    repo = make_shop_repo(tmp_path / "shop")
    script = [step_asking_for_a_plan(1), step_writing(2), step_asking_for_a_plan(3), step_asking_for_a_plan(4)]
    goal = make_scripted_goal(owner, repo, script, evidence=QUICK_EVIDENCE)
    goal.approvers.add(approver)
    stack.worker("a")
    stack.beat()
    queue_step(private_redis.url, stack.queue, goal.pk)
    web = stack.daphne()
    first = wait_until(lambda: pending_request(goal, 1), 60, "step 1's plan request")
    browser = requests.Session()
    browser.cookies.update(session_for(approver))
    socket = LiveSocket(web, session_for(approver))
    try:
        assert socket.connect() == 0

        private_redis.stop()
        # The open socket is closed with a code the htmx ws extension reconnects after (with backoff), and a
        # reconnect while Redis is down is refused at the handshake (the browser sees 1006: it tries again).
        assert socket.wait_closed(timeout=20) in reconnect_codes()
        assert 1006 in reconnect_codes()
        assert socket.connect() == 500
        for path in ("/", f"/approvals/{first.pk}/", f"/goals/{goal.pk}/", "/goals/", "/settings/"):
            page = browser.get(web + path, timeout=30)
            assert page.status_code == 200, (path, page.status_code, page.text[:500])
        assert browser.get(web + "/healthz", timeout=30).status_code == 503

        answer = decide(browser, web, first, "approve")
        assert answer.status_code == 200, answer.text[:500]
        assert "Approved: Totals handle discounts." in answer.text
        decision = Decision.objects.get(request=first)
        assert (decision.user, decision.verdict) == (approver, "approve")
        assert Goal.objects.get(pk=goal.pk).status == GoalStatus.RUNNING
        assert not goal.steps.filter(number=2).exists(), "no worker can have heard of the decision yet"

        private_redis.start()
        third = wait_until(lambda: pending_request(goal, 3), 60, "the decision to reach the worker and step 3 to ask")
        steps = list(goal.steps.order_by("number").values_list("number", "status", "attempts"))
        assert steps == [(1, "approved", 1), (2, "passed", 1), (3, "waiting", 1)]
        assert branch_subjects(stack.workdir, goal.pk) == ["Step 1: Spread part 1", "Step 2: Add part 2", "Step 3: Spread part 3"]

        # Back to normal: the socket reopens and the card of the next request a worker opens arrives live.
        assert socket.connect() == 0
        assert decide(browser, web, third, "approve").status_code == 200
        fourth = wait_until(lambda: pending_request(goal, 4), 60, "step 4's plan request")
        card = socket.wait_for_text(f'<article id="request-{fourth.pk}"', timeout=30)
        assert f'href="/approvals/{fourth.pk}/"' in card and "Totals handle discounts" in card
    finally:
        socket.close()

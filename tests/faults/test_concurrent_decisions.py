"""A hundred taps on one request at once, from two people on many devices, through the decide view: exactly one
decision wins, and every tap gets a clear answer (the winner's "Approved", everyone else's "Already decided: …").

Real threads, each with its own database connection; exactly-once rests on a conditional update, so this is the
test to run on PostgreSQL (SQLite serialises the writers, which proves less)."""

import threading

import pytest
from django.db import connection
from django.test import Client

from approvals.models import ApprovalRequest, Decision, RequestStatus

pytestmark = pytest.mark.django_db(transaction=True)
TAPS = 100
THREADS = 50  # two taps each, back to back: PostgreSQL's 100 connections are shared with other test processes


def test_a_hundred_concurrent_taps_from_two_people_leave_one_decision_and_a_clear_answer_for_each(
    goal, owner, approver
):
    request = ApprovalRequest.open(goal, "step", summary="everyone taps at once")
    people = [owner, approver]
    verdicts = ["approve", "reject"]
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[str, str, str]] = []
    lock = threading.Lock()

    def taps(index: int) -> None:
        try:
            client = Client()
            client.force_login(people[index % 2])
            connection.close()  # back to the pool: a thread waiting at the barrier must not hold one
            barrier.wait(timeout=60)
            for tap in range(TAPS // THREADS):
                verdict = verdicts[(index + tap) % 2]
                response = client.post(
                    f"/approvals/{request.pk}/decide",
                    {"verdict": verdict, "from": "inbox", "device": f"phone-{index}-{tap}"},
                    headers={"HX-Request": "true"},
                )
                assert response.status_code == 200
                with lock:
                    answers.append((people[index % 2].username, verdict, response.content.decode()))
        finally:
            connection.close()

    threads = [threading.Thread(target=taps, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == TAPS
    decision = Decision.objects.get(request=request)
    request.refresh_from_db()
    assert request.status == (RequestStatus.APPROVED if decision.verdict == "approve" else RequestStatus.REJECTED)
    refused = [html for *_, html in answers if "Already decided:" in html]
    won = [(who, verdict) for who, verdict, html in answers if "Already decided:" not in html]
    assert won == [(decision.user.username, decision.verdict)]
    assert len(refused) == TAPS - 1
    assert all(decision.user.username in html for html in refused), "each refusal says who decided"
    assert {who for who, *_ in answers} == {"owner", "approver"}

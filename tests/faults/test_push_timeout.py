"""A push service that does not answer: the request still opens at once, the other phones get their push, and the
silent one gets it on a retry (410, 429, repeated 500 and a broker that is down: tests/approvals/test_delivery.py)."""

import pytest

from approvals import push
from approvals.models import ApprovalRequest

pytestmark = pytest.mark.django_db


def test_a_push_service_that_times_out_holds_up_no_other_phone_and_is_retried(
    goal, fake, eager, owner, approver, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(push, "TIMEOUT_S", 0.3)
    silent, answering = fake.subscribe(owner), fake.subscribe(approver)
    fake.answer("hang", endpoint=silent.endpoint, times=1)
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "step", summary="opens whatever the push service does")
    assert ApprovalRequest.objects.get(pk=request.pk).is_pending
    assert [p["request_id"] for p in fake.payloads(answering.endpoint)] == [request.pk]
    assert [p["request_id"] for p in fake.payloads(silent.endpoint)] == [request.pk], "delivered on the retry"
    assert [answer for endpoint, answer in fake.attempts if endpoint == silent.endpoint][-1] == 201
    silent.refresh_from_db()
    assert silent.last_success_at is not None and silent.last_error == ""

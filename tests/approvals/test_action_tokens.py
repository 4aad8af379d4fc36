"""Deciding from a notification's button: POST /push/action with the single-use token the push carried."""

import threading
from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test import Client
from django.utils import timezone

from approvals import push
from approvals.models import ActionToken, ApprovalRequest, Decision, RequestStatus
from goals.models import Goal

pytestmark = pytest.mark.django_db
ACTION_URL = "/push/action"




@pytest.fixture
def sw():
    """The service worker's fetch: no session, and CSRF checks on, as for any cross-site caller."""
    return Client(enforce_csrf_checks=True)


def tap(client: Client, token, **extra):
    return client.post(ACTION_URL, {"token": token}, content_type="application/json", **extra)


def buttons(payload: dict) -> dict[str, str]:
    return {action["action"]: action["token"] for action in payload["actions"]}


@pytest.fixture
def pushed(goal, fake, eager, owner, approver, django_capture_on_commit_callbacks):
    """A step request pushed to the owner's and the approver's phones; their buttons' tokens, by username."""
    phones = {user.username: fake.subscribe(user) for user in (owner, approver)}
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "step", summary="2 files, +3 −1", step_number=2)
    tokens = {name: buttons(fake.payloads(phone.endpoint)[0]) for name, phone in phones.items()}
    return request, tokens


def test_approve_from_the_owners_notification(pushed, sw, owner):
    request, tokens = pushed
    response = tap(sw, tokens["owner"]["approve"])
    assert response.status_code == 200
    assert response.json() == {"ok": True, "status": "approved", "settled": True, "verdict": "approve"}
    decision = Decision.objects.get(request=request)
    assert (decision.user, decision.verdict, decision.device) == (owner, "approve", "notification")
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.APPROVED


def test_reject_from_the_approvers_notification(pushed, sw, approver):
    request, tokens = pushed
    response = tap(sw, tokens["approver"]["reject"])
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert Decision.objects.get(request=request).user == approver


def test_a_used_token_is_gone(pushed, sw):
    _, tokens = pushed
    assert tap(sw, tokens["owner"]["approve"]).status_code == 200
    again = tap(sw, tokens["owner"]["approve"])
    assert again.status_code == 410
    assert again.json()["reason"] == "used"
    assert Decision.objects.count() == 1


def test_an_expired_token_is_gone_and_decides_nothing(pushed, sw):
    request, tokens = pushed
    ActionToken.objects.filter(request=request).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = tap(sw, tokens["owner"]["approve"])
    assert response.status_code == 410
    assert response.json()["reason"] == "expired"
    assert ApprovalRequest.objects.get(pk=request.pk).is_pending


def test_a_token_lives_15_minutes_or_until_the_request_expires_if_sooner(goal, owner):
    request = ApprovalRequest.open(goal, "step")
    push.payload_for_request(request, owner)
    assert {t.expires_at - timezone.now() <= timedelta(minutes=15) for t in ActionToken.objects.all()} == {True}
    assert {t.expires_at > timezone.now() + timedelta(minutes=14) for t in ActionToken.objects.all()} == {True}
    Goal.objects.filter(pk=goal.pk).update(approval_timeout_minutes=5)
    goal.refresh_from_db()
    soon = ApprovalRequest.open(goal, "step")
    push.payload_for_request(soon, owner)
    assert set(ActionToken.objects.filter(request=soon).values_list("expires_at", flat=True)) == {soon.expires_at}


def test_someone_elses_token_answers_as_an_unknown_one_and_stays_theirs(pushed, approver):
    request, tokens = pushed
    as_approver = Client(enforce_csrf_checks=True)
    as_approver.force_login(approver)
    response = tap(as_approver, tokens["owner"]["approve"])
    unknown = tap(as_approver, signing.Signer(salt=push.ACTION_SALT).sign("no-such-nonce"))
    assert response.status_code == unknown.status_code == 410
    assert response.json() == unknown.json()
    assert not Decision.objects.exists()
    assert tap(Client(), tokens["owner"]["approve"]).status_code == 200


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"), id="altered-signature"),
        pytest.param(lambda token: token.split(":")[0] + ":" + "x" * 43, id="made-up-signature"),
        pytest.param(lambda token: signing.Signer(salt="another.salt").sign(token.split(":")[0]), id="other-salt"),
        pytest.param(lambda token: token.split(":")[0], id="bare-nonce"),
    ],
)
def test_a_tampered_token_is_refused(pushed, sw, forge):
    _, tokens = pushed
    response = tap(sw, forge(tokens["owner"]["approve"]))
    assert response.status_code == 403
    assert response.json()["reason"] == "bad_signature"
    assert not Decision.objects.exists()


def test_a_request_settled_meanwhile_says_who_decided(pushed, sw, approver):
    request, tokens = pushed
    request.decide(approver, "reject", device="laptop")
    assert not ActionToken.objects.filter(request=request, expires_at__gt=timezone.now()).exists()
    response = tap(sw, tokens["owner"]["approve"])
    assert response.status_code == 409
    body = response.json()
    assert body["reason"] == "already_decided"
    assert body["message"].startswith("Already decided: approver chose “reject”")
    assert Decision.objects.count() == 1


def test_a_superseded_request_says_so(pushed, sw, goal):
    _, tokens = pushed
    ApprovalRequest.open(goal, "step", summary="newer")
    response = tap(sw, tokens["owner"]["approve"])
    assert response.status_code == 409
    assert response.json()["reason"] == "superseded"


def test_a_request_that_expired_unanswered_says_so(pushed, sw):
    request, tokens = pushed
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = tap(sw, tokens["owner"]["approve"])
    assert response.status_code == 409
    assert response.json()["reason"] == "expired"
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXPIRED


def test_an_approver_removed_from_the_goal_can_no_longer_use_their_token(pushed, sw, goal, approver):
    _, tokens = pushed
    goal.approvers.remove(approver)
    response = tap(sw, tokens["approver"]["approve"])
    assert response.status_code == 403
    assert response.json()["reason"] == "not_allowed"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("not json", "application/json", id="not-json"),
        pytest.param("{}", "application/json", id="no-token"),
        pytest.param('{"token": 42}', "application/json", id="token-not-a-string"),
        pytest.param("[]", "application/json", id="not-an-object"),
        pytest.param("token=abc", "application/x-www-form-urlencoded", id="a-form-post"),
        pytest.param("[" * 100_000 + "]" * 100_000, "application/json", id="nested-past-the-recursion-limit"),
        pytest.param('{"token": ' + "[" * 80 + "]" * 80 + "}", "application/json", id="nested-too-deep"),
        pytest.param(b'{"token": "\xff"}', "application/json", id="invalid-utf-8"),
    ],
)
def test_a_malformed_tap_is_a_400(sw, db, body, content_type):
    response = sw.post(ACTION_URL, body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["reason"] == "malformed"


def test_an_oversized_tap_is_a_413_with_a_reason(sw, db):
    response = sw.post(ACTION_URL, b'{"token": "' + b"x" * 2 * 1024 * 1024 + b'"}', content_type="application/json")
    assert response.status_code == 413
    assert response.json()["reason"] == "too_large"
    assert response.json()["message"] == "The body is larger than 1024 KB."


def test_only_post_is_allowed(sw, db):
    assert sw.get(ACTION_URL).status_code == 405


def test_an_outsider_cannot_get_a_token(goal, pending, outsider):
    with pytest.raises(PermissionDenied):
        push.payload_for_request(pending, outsider)
    assert not ActionToken.objects.exists()


@pytest.mark.parametrize(
    ("kind", "high_risk", "has_buttons"),
    [
        pytest.param("step", False, True, id="step"),
        pytest.param("done", False, True, id="done"),
        pytest.param("follow_up", False, True, id="follow-up"),
        pytest.param("plan", False, False, id="a-plan-needs-reading"),
        pytest.param("budget", False, False, id="a-budget-needs-a-choice-of-extension"),
        pytest.param("step", True, False, id="high-risk-needs-the-page"),
    ],
)
def test_one_tap_buttons_only_where_a_tap_is_enough(goal, owner, kind, high_risk, has_buttons):
    if high_risk:
        Goal.objects.filter(pk=goal.pk).update(work_type="migration", risk="high", rollback_note="down")
        goal.refresh_from_db()
    payload = push.payload_for_request(ApprovalRequest.open(goal, kind), owner)
    assert bool(payload["actions"]) == has_buttons
    assert ("action_url" in payload) == has_buttons
    assert ActionToken.objects.exists() == has_buttons


@pytest.mark.django_db(transaction=True)
def test_many_taps_of_one_token_at_once_decide_once(goal, owner, eager):
    request = ApprovalRequest.open(goal, "step")
    token = buttons(push.payload_for_request(request, owner))["approve"]
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def tap_at_once() -> None:
        try:
            barrier.wait(timeout=10)
            status = tap(Client(), token).status_code
            with lock:
                statuses.append(status)
        finally:
            connection.close()

    threads = [threading.Thread(target=tap_at_once) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [410] * 7
    assert Decision.objects.filter(request=request).count() == 1

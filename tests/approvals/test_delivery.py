"""Who gets a push and when: the delivery receivers and tasks, end to end against the local push service."""

import json
import logging
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone
from kombu.exceptions import OperationalError

from approvals import delivery, push, tasks
from approvals.models import (
    ActionToken,
    ApprovalRequest,
    NotificationSettings,
    PushSubscription,
    expire_overdue_requests,
)
from goals import loop
from goals.models import Goal, GoalStatus
from tests.factories import GOOD_STEP, make_scripted_goal, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def devices(fake, eager, owner, approver, outsider):
    """One subscribed phone each for the owner, the approver and someone with no part in the goal."""
    return {user.username: fake.subscribe(user) for user in (owner, approver, outsider)}


def buzzed(fake, devices) -> list[str]:
    """Whose phones got a push, in order."""
    by_endpoint = {device.endpoint: name for name, device in devices.items()}
    return [by_endpoint[endpoint] for endpoint in fake.endpoints()]


def open_request(goal, capture, kind="step"):
    with capture(execute=True):
        return ApprovalRequest.open(goal, kind, summary="2 files, +3 −1", step_number=3)


def settings_for(user, **fields) -> NotificationSettings:
    return NotificationSettings.objects.update_or_create(user=user, defaults=fields)[0]


def make_high_risk(goal) -> Goal:
    Goal.objects.filter(pk=goal.pk).update(work_type="migration", risk="high", rollback_note="down migration")
    goal.refresh_from_db()
    return goal


# Tests of quiet hours run on a fixed clock, at moments that once broke a search on the real one: 17:54 UTC is
# 23:24 in Kolkata, just before a half-hour boundary; 04:00 UTC is past midnight in Los Angeles and Paris.
FIXED_MOMENTS = [
    pytest.param(datetime(2026, 3, 10, 17, 54, tzinfo=UTC), id="17h54-utc"),
    pytest.param(datetime(2026, 11, 2, 4, 0, tzinfo=UTC), id="04h00-utc"),
]


@pytest.fixture(params=FIXED_MOMENTS)
def fixed_clock(request):
    """The wall clock set to a fixed moment (and ticking from there), for tests that read the time of day."""
    with time_machine.travel(request.param, tick=True):
        yield request.param


def quiet_window(zone: str, *, containing_now: bool) -> tuple[time, time]:
    """Quiet hours that wrap midnight on the person's clock and hold (or miss) this moment by 10 minutes or more."""
    local = timezone.now().astimezone(ZoneInfo(zone))
    minute = local.hour * 60 + local.minute

    def distance(a: int, b: int) -> int:
        return min(abs(a - b), 1440 - abs(a - b))

    for start in range(0, 1440, 10):
        for end in range(0, start, 10):  # end before start: the window runs through midnight
            inside = minute >= start or minute < end
            if inside == containing_now and min(distance(minute, start), distance(minute, end)) >= 10:
                return time(start // 60, start % 60), time(end // 60, end % 60)
    raise AssertionError("no window found")


# --- requests ------------------------------------------------------------------------------------------------


def test_a_new_request_buzzes_the_owner_and_the_approver_and_nobody_else(
    goal, devices, fake, owner, approver, django_capture_on_commit_callbacks
):
    request = open_request(goal, django_capture_on_commit_callbacks)
    assert sorted(buzzed(fake, devices)) == ["approver", "owner"]
    for push_ in fake.received:
        assert push_.payload["request_id"] == request.pk
        assert (push_.ttl, push_.urgency, push_.topic) == (3600, "high", f"request-{request.pk}")
    owner_tokens = [a["token"] for a in fake.payloads(devices["owner"].endpoint)[0]["actions"]]
    nonces = {push.action_token_nonce(token) for token in owner_tokens}
    assert set(ActionToken.objects.filter(nonce__in=nonces).values_list("user__username", flat=True)) == {"owner"}
    assert PushSubscription.objects.get(pk=devices["owner"].pk).last_success_at is not None


@pytest.mark.parametrize(
    ("mode", "high_risk", "owner_buzzed"),
    [
        pytest.param("every", False, True, id="every-request"),
        pytest.param("every", True, True, id="every-request-high-risk"),
        pytest.param("high_risk", False, False, id="high-risk-only-skips-a-medium-goal"),
        pytest.param("high_risk", True, True, id="high-risk-only-on-a-high-risk-goal"),
        pytest.param("stalls", False, False, id="stalls-only-skips-requests"),
        pytest.param("stalls", True, False, id="stalls-only-skips-high-risk-requests-too"),
    ],
)
def test_each_persons_mode_decides_whether_a_request_buzzes_them(
    goal, devices, fake, owner, mode, high_risk, owner_buzzed, django_capture_on_commit_callbacks
):
    settings_for(owner, mode=mode)
    if high_risk:
        make_high_risk(goal)
    open_request(goal, django_capture_on_commit_callbacks)
    assert ("owner" in buzzed(fake, devices)) == owner_buzzed
    assert "approver" in buzzed(fake, devices)  # no settings saved: every request


def test_a_person_with_two_devices_gets_the_request_on_both_with_the_same_buttons(
    goal, devices, fake, owner, django_capture_on_commit_callbacks
):
    tablet = fake.subscribe(owner, "tablet")
    open_request(goal, django_capture_on_commit_callbacks)
    phone_payload, = fake.payloads(devices["owner"].endpoint)
    tablet_payload, = fake.payloads(tablet.endpoint)
    assert phone_payload == tablet_payload
    assert ActionToken.objects.filter(user=owner).count() == 2


@pytest.mark.parametrize("zone", ["America/Los_Angeles", "Asia/Kolkata"])
def test_quiet_hours_across_midnight_on_the_persons_clock_hold_back_requests(
    goal, devices, fake, owner, zone, fixed_clock, django_capture_on_commit_callbacks
):
    start, end = quiet_window(zone, containing_now=True)
    settings_for(owner, quiet_start=start, quiet_end=end, time_zone=zone)
    open_request(goal, django_capture_on_commit_callbacks)
    assert buzzed(fake, devices) == ["approver"]

    start, end = quiet_window(zone, containing_now=False)
    settings_for(owner, quiet_start=start, quiet_end=end, time_zone=zone)
    open_request(goal, django_capture_on_commit_callbacks)
    assert sorted(buzzed(fake, devices)[1:]) == ["approver", "owner"]  # sent at once: in any order


TOKYO_QUIET = {"quiet_start": time(22), "quiet_end": time(7), "time_zone": "Asia/Tokyo"}


@pytest.mark.parametrize(
    ("prefs", "at", "quiet"),
    [
        pytest.param(TOKYO_QUIET, datetime(2025, 3, 1, 14, 30, tzinfo=UTC), True, id="23h30-in-tokyo"),
        pytest.param(TOKYO_QUIET, datetime(2025, 3, 1, 18, 0, tzinfo=UTC), True, id="03h00-after-midnight"),
        pytest.param(TOKYO_QUIET, datetime(2025, 3, 1, 13, 0, tzinfo=UTC), True, id="start-is-inclusive"),
        pytest.param(TOKYO_QUIET, datetime(2025, 3, 1, 22, 0, tzinfo=UTC), False, id="end-is-exclusive"),
        pytest.param(TOKYO_QUIET, datetime(2025, 3, 1, 3, 0, tzinfo=UTC), False, id="noon-in-tokyo"),
        pytest.param(
            {**TOKYO_QUIET, "time_zone": "UTC"}, datetime(2025, 3, 1, 14, 30, tzinfo=UTC), False,
            id="the-same-instant-is-not-quiet-on-a-utc-clock",
        ),
        pytest.param(
            {"quiet_start": time(9), "quiet_end": time(17), "time_zone": "Europe/Berlin"},
            datetime(2025, 7, 1, 14, 30, tzinfo=UTC), True, id="daytime-window-in-summer-time",
        ),
        pytest.param(
            {"quiet_start": time(9), "quiet_end": time(17), "time_zone": "Europe/Berlin"},
            datetime(2025, 7, 1, 15, 30, tzinfo=UTC), False, id="17h30-berlin-is-after-the-window",
        ),
        pytest.param({"quiet_start": time(22), "quiet_end": None}, datetime(2025, 3, 1, 23, tzinfo=UTC), False,
                     id="no-end-no-quiet-hours"),
        pytest.param({"quiet_start": time(8), "quiet_end": time(8)}, datetime(2025, 3, 1, 8, tzinfo=UTC), False,
                     id="empty-window"),
        pytest.param({**TOKYO_QUIET, "time_zone": "Mars/Olympus"}, datetime(2025, 3, 1, 23, tzinfo=UTC), True,
                     id="unknown-zone-reads-utc"),
    ],
)
def test_in_quiet_hours(prefs, at, quiet):
    assert delivery.in_quiet_hours(NotificationSettings(**prefs), at) == quiet


# --- stalls --------------------------------------------------------------------------------------------------


def test_a_stalled_goal_buzzes_every_decider_once_whatever_their_mode_or_quiet_hours(
    goal, devices, fake, owner, approver, fixed_clock, django_capture_on_commit_callbacks
):
    zone = "Europe/Paris"
    start, end = quiet_window(zone, containing_now=True)
    settings_for(owner, mode="stalls")
    settings_for(approver, mode="high_risk", quiet_start=start, quiet_end=end, time_zone=zone)
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.RUNNING, started_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert [goal_id for goal_id, _ in loop.detect_stalls()] == [goal.pk]
    stall_request = ApprovalRequest.objects.get(goal=goal, kind="stall")
    assert sorted(buzzed(fake, devices)) == ["approver", "owner"]  # once each, though a stall request opened too
    for push_ in fake.received:
        assert push_.payload["type"] == "stall"
        assert push_.payload["url"] == f"/approvals/{stall_request.pk}/"
        assert push_.payload["body"].startswith("No step has finished in")
        assert (push_.ttl, push_.urgency, push_.topic) == (6 * 3600, "high", f"stall-{goal.pk}")


def test_a_reminder_of_a_long_waiting_request_keeps_to_quiet_hours(
    goal, devices, fake, approver, fixed_clock, django_capture_on_commit_callbacks
):
    zone = "Australia/Sydney"
    start, end = quiet_window(zone, containing_now=True)
    settings_for(approver, quiet_start=start, quiet_end=end, time_zone=zone)
    request = ApprovalRequest.open(goal, "step", summary="waiting")
    ApprovalRequest.objects.filter(pk=request.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        loop.detect_stalls()
    assert buzzed(fake, devices) == ["owner"]
    assert fake.received[0].payload["url"] == f"/approvals/{request.pk}/"
    assert "has waited" in fake.received[0].payload["body"]


# --- what never buzzes ---------------------------------------------------------------------------------------


def test_decisions_votes_expiries_and_supersessions_buzz_nobody(
    goal, devices, fake, owner, approver, django_user_model, django_capture_on_commit_callbacks
):
    first = open_request(goal, django_capture_on_commit_callbacks)
    assert len(fake.received) == 2
    with django_capture_on_commit_callbacks(execute=True):
        first.decide(approver, "approve")
    assert len(fake.received) == 2

    expiring = open_request(goal, django_capture_on_commit_callbacks)
    ApprovalRequest.objects.filter(pk=expiring.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert expire_overdue_requests() == 1
    assert len(fake.received) == 4

    superseded = open_request(goal, django_capture_on_commit_callbacks)
    newer = open_request(goal, django_capture_on_commit_callbacks)
    assert [p["request_id"] for p in fake.payloads()[4:]] == [superseded.pk] * 2 + [newer.pk] * 2

    goal.approvers.add(make_user("second"))
    two_person = open_request(make_high_risk(goal), django_capture_on_commit_callbacks)
    assert two_person.required_approvals == 2
    sent = len(fake.received)
    with django_capture_on_commit_callbacks(execute=True):
        assert not two_person.decide(approver, "approve").settled
    assert len(fake.received) == sent


def test_a_step_that_passes_every_gate_buzzes_nobody(owner, devices, fake, shop_repo, worktrees_in_tmp):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    outcome = loop.run_step(goal.pk, worker="test")
    assert outcome.status == "continue"
    assert not ApprovalRequest.objects.filter(goal=goal).exists()
    assert fake.attempts == []


# --- when things are down ------------------------------------------------------------------------------------


def test_a_broker_that_is_down_never_fails_a_request_or_a_stall(
    goal, fake, owner, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    fake.subscribe(owner)

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(tasks.push_request, "apply_async", broker_down)
    monkeypatch.setattr(tasks.push_stall, "apply_async", broker_down)
    caplog.set_level(logging.WARNING, logger="approvals.delivery")
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "step", summary="still opens")
    assert ApprovalRequest.objects.get(pk=request.pk).is_pending
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.RUNNING, started_at=timezone.now() - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        loop.detect_stalls()
    assert Goal.objects.get(pk=goal.pk).status == GoalStatus.STALLED
    assert fake.attempts == []
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"could not queue approvals.tasks.push_request({request.pk},)")
    assert warnings[1].startswith(f"could not queue approvals.tasks.push_stall({goal.pk}, ")


def test_a_push_service_that_keeps_failing_is_retried_five_times_and_never_fails_the_request(
    goal, fake, eager, owner, django_capture_on_commit_callbacks
):
    phone = fake.subscribe(owner)
    fake.answer(500)
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "step", summary="opens anyway")
    assert ApprovalRequest.objects.get(pk=request.pk).is_pending
    assert fake.attempts == [(phone.endpoint, 500)] * 7  # the fan-out's try, then send_push and its 5 retries
    phone.refresh_from_db()
    assert phone.last_error == "push service answered 500"


def test_a_throttled_push_is_retried_and_delivered(goal, fake, eager, owner, django_capture_on_commit_callbacks):
    phone = fake.subscribe(owner)
    fake.answer(429, retry_after="30", times=2)
    with django_capture_on_commit_callbacks(execute=True):
        request = ApprovalRequest.open(goal, "step")
    assert [answer for _, answer in fake.attempts] == [429, 429, 201]
    assert [p["request_id"] for p in fake.payloads()] == [request.pk]
    phone.refresh_from_db()
    assert phone.last_success_at is not None and phone.last_error == ""


@pytest.mark.parametrize("status", [404, 410])
def test_a_subscription_the_push_service_no_longer_knows_is_deleted(
    goal, devices, fake, status, django_capture_on_commit_callbacks
):
    fake.answer(status, endpoint=devices["owner"].endpoint)
    open_request(goal, django_capture_on_commit_callbacks)
    assert not PushSubscription.objects.filter(pk=devices["owner"].pk).exists()
    assert buzzed(fake, devices) == ["approver"]


def test_a_retried_push_is_dropped_once_the_request_is_answered(goal, fake, owner, approver):
    phone = fake.subscribe(owner)
    request = ApprovalRequest.open(goal, "step")
    payload = push.payload_for_request(request, owner)
    request.decide(approver, "reject")
    tasks.send_push.apply((phone.pk, json.dumps(payload)))
    assert fake.attempts == []
    stall = push.payload_for_stall(goal, "still worth telling")
    fake.answer(410)
    tasks.send_push.apply((phone.pk, json.dumps(stall)))
    assert not PushSubscription.objects.filter(pk=phone.pk).exists()

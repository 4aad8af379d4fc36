"""Who gets a push, and when: a new request or a stalled goal turned into Web Push deliveries.

Only two things buzz a phone: a request opened (`request_opened`) and a goal stalled (`goal_stalled`). A step
that no gate stopped opens no request and so sends nothing; decisions, votes, expiries and supersessions only
revoke the request's one-tap tokens. Everything that talks to the outside world runs in celery after the commit,
and is best effort: a broker or a push service that is down never fails a step or a decision.
approvals.receivers queues the pushes; this module never imports the tasks (a device's retry is queued through
the function the task hands to deliver()).

Who: the goal's owner and approvers (the people who may decide), each by their NotificationSettings:
- requests: mode "every" → all; "high_risk" → requests on high-risk goals only; "stalls" → none; and none
  during the person's quiet hours (in their time zone; a window may wrap midnight, start == end means none).
- stalls: everyone, whatever the mode, and through quiet hours when the goal itself stopped moving (rare, and
  the work stands still until someone looks); a reminder that a request has waited long keeps to quiet hours,
  as the request itself did.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from approvals import push
from approvals.models import (
    ActionToken,
    ApprovalRequest,
    NotificationSettings,
    NotifyMode,
    PushSubscription,
)
from approvals.push import PushError
from goals.models import Goal

log = logging.getLogger(__name__)


def revoke_action_tokens(sender, request: ApprovalRequest, **kwargs) -> None:
    """A settled request's unused buttons stop working (within the same transaction as the settling)."""
    now = timezone.now()
    ActionToken.objects.filter(request_id=request.pk, used_at__isnull=True, expires_at__gt=now).update(
        expires_at=now
    )


def enqueue_best_effort(task, *args, **options) -> bool:
    """Queue a task; a broker that cannot be reached is logged, never raised: delivery is best effort."""
    try:
        options.setdefault("queue", settings.CELERY_TASK_DEFAULT_QUEUE)
        task.apply_async(args, retry=False, **options)
    except Exception:
        log.warning("could not queue %s%r: the broker is unreachable", task.name, args, exc_info=True)
        return False
    return True


# --- who, and when -------------------------------------------------------------------------------------------


def deciders_with_settings(goal: Goal) -> list[tuple[object, NotificationSettings]]:
    """The goal's owner and approvers (active ones), each with their notification settings or the defaults."""
    users = list(
        get_user_model()
        .objects.filter(is_active=True)
        .filter(pk__in=[goal.owner_id, *goal.approvers.values_list("pk", flat=True)])
        .order_by("pk")
    )
    saved = {s.user_id: s for s in NotificationSettings.objects.filter(user__in=users)}
    return [(user, saved.get(user.pk) or NotificationSettings(user=user)) for user in users]


def wants_request(prefs: NotificationSettings, *, high_risk: bool, at: datetime) -> bool:
    if prefs.mode == NotifyMode.STALLS or (prefs.mode == NotifyMode.HIGH_RISK and not high_risk):
        return False
    return not in_quiet_hours(prefs, at)


def wants_stall(prefs: NotificationSettings, *, reminder: bool, at: datetime) -> bool:
    return not (reminder and in_quiet_hours(prefs, at))


def in_quiet_hours(prefs: NotificationSettings, at: datetime) -> bool:
    """Whether `at` falls in the person's quiet hours, read on their clock; the window may wrap midnight."""
    start, end = prefs.quiet_start, prefs.quiet_end
    if start is None or end is None or start == end:
        return False
    try:
        zone = ZoneInfo(prefs.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end


# --- the deliveries the tasks run ----------------------------------------------------------------------------


def push_request(request_id: int, retry: Retry | None = None) -> int:
    """Push a pending request to each decider who wants it; returns the number of pushes delivered."""
    request = ApprovalRequest.objects.select_related("goal").filter(pk=request_id).first()
    if request is None or not request.is_pending:
        return 0  # answered (or replaced) before the worker got to it: nothing to buzz about
    now = timezone.now()
    high_risk = request.goal.contract().effective_risk == "high"
    deciders = deciders_with_settings(request.goal)
    users = [user for user, prefs in deciders if wants_request(prefs, high_risk=high_risk, at=now)]
    return deliver(_per_device(users, lambda user: push.payload_for_request(request, user)), retry)


def push_stall(goal_id: int, reason: str, reminder: bool = False, retry: Retry | None = None) -> int:
    """Push a stalled goal to every decider (see the module's rules on quiet hours)."""
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        return 0
    now = timezone.now()
    users = [user for user, prefs in deciders_with_settings(goal) if wants_stall(prefs, reminder=reminder, at=now)]
    payload = push.payload_for_stall(goal, reason)
    return deliver(_per_device(users, lambda user: payload), retry)


def _per_device(users, payload_for) -> list[tuple[PushSubscription, dict]]:
    """One (subscription, payload) per device; a person's payload (and tokens) is made once for all devices."""
    devices = defaultdict(list)
    for subscription in PushSubscription.objects.filter(user__in=users).order_by("pk"):
        devices[subscription.user_id].append(subscription)
    pairs = []
    for user in users:
        if devices[user.pk]:
            payload = payload_for(user)
            pairs.extend((subscription, payload) for subscription in devices[user.pk])
    return pairs


# Push services answer in tens to hundreds of milliseconds: a thousand devices one after another would take
# minutes. The sends (encryption and one HTTP request each) run on settings.GOALPOST_PUSH_THREADS threads, each
# with its own sessions (a requests.Session is not shared across threads); database writes stay in this thread.


# Queues one device's push again later: (subscription id, payload, countdown in seconds). The tasks hand it in.
Retry = Callable[[int, dict, float], object]


def deliver(pairs: list[tuple[PushSubscription, dict]], retry: Retry | None = None) -> int:
    """Send each payload; a device that failed for now goes to `retry` (its own task). Returns how many went out."""
    if not pairs:
        return 0
    local = threading.local()
    sessions: list[requests.Session] = []
    sessions_lock = threading.Lock()

    def session_for(endpoint: str) -> requests.Session:
        """This thread's session for the endpoint's push service (push.push_session: public addresses only)."""
        origin = endpoint.split("/", 3)[:3]
        key = "/".join(origin)
        mine = local.__dict__.setdefault("sessions", {})
        session = mine.get(key)
        if session is None:
            session = mine[key] = push.push_session(endpoint)
            with sessions_lock:
                sessions.append(session)
        return session

    def send_one(pair: tuple[PushSubscription, dict]) -> PushError | None:
        subscription, payload = pair
        try:
            push.send_notification(subscription, payload, session=session_for(subscription.endpoint))
        except PushError as error:
            return error
        return None

    threads = min(settings.GOALPOST_PUSH_THREADS, len(pairs))
    try:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="push-send") as pool:
            outcomes = list(pool.map(send_one, pairs))
    finally:
        for session in sessions:
            session.close()
    delivered = []
    for (subscription, payload), error in zip(pairs, outcomes, strict=True):
        if error is None:
            delivered.append(subscription.pk)
        elif record_failure(subscription, error) and error.retryable and retry is not None:
            retry(subscription.pk, payload, push.retry_delay(1, error.retry_after))
    PushSubscription.objects.filter(pk__in=delivered).update(last_success_at=timezone.now(), last_error="")
    return len(delivered)


def record_failure(subscription: PushSubscription, error: PushError) -> bool:
    """Delete a subscription the push service says is gone, else note the error; False once deleted."""
    if error.permanent:
        log.info("push subscription %s is gone (%s): deleted", subscription.pk, error)
        PushSubscription.objects.filter(pk=subscription.pk).delete()
        return False
    log.warning("push to subscription %s failed: %s", subscription.pk, error)
    PushSubscription.objects.filter(pk=subscription.pk).update(last_error=str(error)[:300])
    return True


def record_success(subscription: PushSubscription) -> None:
    PushSubscription.objects.filter(pk=subscription.pk).update(last_success_at=timezone.now(), last_error="")


def is_stale(payload: dict) -> bool:
    """A request's push is pointless once the request is no longer pending (a retry must not buzz for it)."""
    if payload.get("type") != "request":
        return False
    return not ApprovalRequest.objects.filter(pk=payload.get("request_id")).pending().exists()

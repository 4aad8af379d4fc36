import json

from celery import shared_task

from approvals import delivery, push
from approvals.models import PushSubscription, expire_overdue_requests
from approvals.push import PushError


@shared_task(ignore_result=True, expires=60)
def expire_overdue_approval_requests() -> int:
    """Beat runs this every 30 s: an unanswered request takes its goal's timeout rule, never an approval."""
    return expire_overdue_requests()


@shared_task(ignore_result=True)
def push_request(request_id: int) -> int:
    """Buzz the phones of the people who may decide a request that just opened."""
    return delivery.push_request(request_id, retry=_send_later)


@shared_task(ignore_result=True)
def push_stall(goal_id: int, reason: str, reminder: bool = False) -> int:
    """Buzz the phones of the people who may decide for a goal that stalled."""
    return delivery.push_stall(goal_id, reason, reminder, retry=_send_later)


@shared_task(bind=True, ignore_result=True, max_retries=5)
def send_push(self, subscription_id: int, payload_json: str) -> None:
    """One push to one device, again after a transient failure: backing off, never sooner than Retry-After.

    A gone subscription (404/410) is deleted; a push for a request that was answered meanwhile is dropped.
    """
    subscription = PushSubscription.objects.filter(pk=subscription_id).first()
    payload = json.loads(payload_json)
    if subscription is None or delivery.is_stale(payload):
        return
    try:
        push.send_notification(subscription, payload)
    except PushError as error:
        if delivery.record_failure(subscription, error) and error.retryable:
            # The fan-out's try was number 1, so this task's first run is number 2.
            countdown = push.retry_delay(self.request.retries + 2, error.retry_after)
            raise self.retry(exc=error, countdown=countdown) from error
        return
    delivery.record_success(subscription)


def _send_later(subscription_id: int, payload: dict, countdown: float) -> None:
    """The fan-out's retry for one device: its own send_push task, after the countdown (best effort)."""
    delivery.enqueue_best_effort(send_push, subscription_id, json.dumps(payload), countdown=countdown)

from celery import shared_task

from approvals.models import expire_overdue_requests


@shared_task(ignore_result=True, expires=60)
def expire_overdue_approval_requests() -> int:
    """Beat runs this every 30 s: an unanswered request takes its goal's timeout rule, never an approval."""
    return expire_overdue_requests()

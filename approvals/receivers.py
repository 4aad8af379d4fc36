"""The human side's receivers that queue tasks: a new request or a stalled goal becomes a push, after the commit.

Connected in ApprovalsConfig.ready(). A receivers module may import the tasks; the domain modules never do.
"""

from django.db import transaction

from approvals.delivery import enqueue_best_effort
from approvals.models import ApprovalRequest, RequestKind
from approvals.tasks import push_request, push_stall
from goals.models import Goal, GoalStatus


def push_on_request_opened(sender, request: ApprovalRequest, **kwargs) -> None:
    if request.kind == RequestKind.STALL:
        return  # the goal_stalled signal sent with it carries the stall to the phone, once
    request_id = request.pk

    def enqueue() -> None:
        enqueue_best_effort(push_request, request_id)

    transaction.on_commit(enqueue, robust=True)


def push_on_goal_stalled(sender, goal: Goal, reason: str, **kwargs) -> None:
    goal_id, reminder = goal.pk, goal.status != GoalStatus.STALLED

    def enqueue() -> None:
        enqueue_best_effort(push_stall, goal_id, reason, reminder)

    transaction.on_commit(enqueue, robust=True)

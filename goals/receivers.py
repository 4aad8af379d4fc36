"""The loop's side of the approvals signals: a decision or an expiry moves the goal on (and queues its next task).

Connected in GoalsConfig.ready(). A receivers module may import the tasks; the loop itself never does.
"""

from goals import loop
from goals.tasks import enqueue_publish, enqueue_step


def on_decision(sender, request, decision, **kwargs) -> None:
    if request.from_gateway:
        return  # an agent running elsewhere reads the decision from the API; the managed loop has nothing to do
    if loop.apply_decision(request, decision.verdict):
        enqueue_step(request.goal_id)
    elif request.kind == "done" and decision.verdict == "approve":
        enqueue_publish(request.goal_id)


def on_expiry(sender, request, rule, **kwargs) -> None:
    if request.from_gateway:
        return
    if loop.apply_expiry(request, rule):
        enqueue_step(request.goal_id)

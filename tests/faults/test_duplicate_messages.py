"""Two messages for one due step (the reaper re-queued a step it thought lost, the broker redelivered one after a
worker died): the first to arrive runs the step, the other claims nothing, and neither waits for the other."""

import pytest
from django.utils import timezone

from goals import loop
from goals.models import Goal
from goals.tasks import enqueue_step
from tests.factories import make_scripted_goal
from tests.support.stack import QUICK_EVIDENCE, step_writing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]


def test_of_two_messages_for_one_due_step_the_first_runs_it_and_the_second_claims_nothing(
    owner, shop_repo, django_capture_on_commit_callbacks
):
    goal = make_scripted_goal(owner, shop_repo, [step_writing(1), step_writing(2)], evidence=QUICK_EVIDENCE)
    with django_capture_on_commit_callbacks(execute=False):
        enqueue_step(goal.pk)
    first_stamp = Goal.objects.get(pk=goal.pk).step_enqueued_at
    with django_capture_on_commit_callbacks(execute=False):
        enqueue_step(goal.pk)  # the reaper, thinking the first message lost
    assert loop.run_step(goal.pk, "w1", enqueued_at=first_stamp).status == "continue"
    assert loop.run_step(goal.pk, "w2", enqueued_at=timezone.now()).status == "busy"
    assert list(goal.steps.values_list("number", "attempts")) == [(1, 1)]
    # A message from no enqueue (a test, the bench, `run_goal`) still claims as before.
    assert loop.run_step(goal.pk, "w3").status == "continue"
    assert goal.steps.count() == 2

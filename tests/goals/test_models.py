import pytest

from goals.models import Goal, GoalNotReady, GoalStatus, WorkerHeartbeat
from tests.factories import registered_repository, scripted_profile

pytestmark = pytest.mark.django_db


def test_defaults_are_bounded_budgets(owner, git_repo):
    goal = Goal.objects.create(
        owner=owner, title="t", objective="o", repository=registered_repository(git_repo), agent_profile=scripted_profile()
    )
    assert goal.status == GoalStatus.DRAFT
    assert goal.budgets == {
        "minutes": 120, "steps": 20, "tokens": 2_000_000, "files_per_step": 5,
        "files_total": 50, "approvals": 10, "retries": 3,
    }
    assert goal.repeated_failure_threshold == 3


def test_visible_to_owner_and_approvers_only(goal, owner, approver, outsider):
    assert list(Goal.objects.visible_to(owner)) == [goal]
    assert list(Goal.objects.visible_to(approver)) == [goal]
    assert list(Goal.objects.visible_to(outsider)) == []


def test_visible_to_does_not_repeat_a_goal_with_many_approvers(goal, outsider, owner):
    goal.approvers.add(outsider)
    assert Goal.objects.visible_to(owner).count() == 1


def test_contract_carries_the_goal(goal):
    contract = goal.contract()
    assert contract.objective == goal.objective
    assert contract.constraints == tuple(goal.constraints)
    assert contract.evidence[0].command == "pytest tests/test_dashboard.py"
    assert contract.effective_risk == "medium"


def test_mark_ready_writes_an_event_once(goal, owner):
    goal.mark_ready(owner)
    goal.mark_ready(owner)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.READY
    assert goal.events.filter(kind="status").count() == 1


def test_mark_ready_refuses_blocking_findings(goal, owner):
    goal.objective = "Improve the dashboard."
    with pytest.raises(GoalNotReady) as error:
        goal.mark_ready(owner)
    assert {"objective_no_target", "vague_verb"} <= {f.rule for f in error.value.findings}
    assert Goal.objects.get(pk=goal.pk).status == GoalStatus.DRAFT


def test_back_to_draft_only_from_ready(goal, owner):
    goal.back_to_draft(owner, "why")
    assert not goal.events.exists()
    goal.mark_ready(owner)
    goal.back_to_draft(owner, "Back to draft")
    assert Goal.objects.get(pk=goal.pk).status == GoalStatus.DRAFT


def test_heartbeat_is_one_row_per_worker(db):
    WorkerHeartbeat.beat("a@host")
    WorkerHeartbeat.beat("a@host")
    WorkerHeartbeat.beat("b@host")
    assert WorkerHeartbeat.objects.count() == 2

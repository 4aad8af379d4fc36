"""Start refuses an agent that cannot run, with the reason and nothing lost; a goal whose evidence is only manual
checks still reaches its done review when the agent says done, with the manual checks listed for the person."""

import pytest
from django.test import TestCase

from approvals.models import ApprovalRequest, RequestStatus
from goals import loop
from goals.models import AgentProfile, GoalStatus
from tests.factories import GOOD_STEP, make_profile, make_scripted_goal, step_once

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

MANUAL = [
    {"kind": "manual", "command": "", "expect_exit": 0, "description": "The downloaded CSV keeps its three columns"},
    {"kind": "manual", "command": "", "expect_exit": 0, "description": "The export link still works"},
]
DONE_STEP = {**GOOD_STEP, "done": True}


def ready_goal(owner, shop_repo, **fields):
    return make_scripted_goal(owner, shop_repo, [], status=GoalStatus.READY, **fields)


# --- Start refuses an agent that cannot run -------------------------------------------------------------------


def test_start_refuses_a_scripted_agent_with_nothing_to_replay_and_keeps_the_goal(as_owner, owner, shop_repo):
    empty = make_profile("scripted", name="Empty replayer")
    goal = ready_goal(owner, shop_repo, agent_profile=empty, title="Move the invoice export")
    response = as_owner.post(f"/goals/{goal.pk}/start/", follow=True)
    assert "Not started: Empty replayer has no script to replay" in response.text
    assert "Edit the goal to choose another agent." in response.text
    goal.refresh_from_db()
    assert goal.status == GoalStatus.READY and goal.title == "Move the invoice export"
    assert not goal.steps.exists()
    assert "Start</button>" in as_owner.get(f"/goals/{goal.pk}/").text  # still there, once the agent is fixed


def test_start_refuses_a_command_agent_whose_program_is_missing(as_owner, owner, shop_repo):
    codex = make_profile("command", name="Codex here", preset="codex", executable="/nonexistent/bin/codex")
    goal = ready_goal(owner, shop_repo, agent_profile=codex)
    response = as_owner.post(f"/goals/{goal.pk}/start/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "Codex here needs /nonexistent/bin/codex, which is not installed on this server." in response.text
    goal.refresh_from_db()
    assert goal.status == GoalStatus.READY


def test_start_refuses_an_agent_no_longer_offered_to_the_owner(owner, shop_repo):
    goal = ready_goal(owner, shop_repo)
    AgentProfile.objects.filter(pk=goal.agent_profile_id).update(enabled=False)
    with pytest.raises(loop.ControlRefused, match="no longer offered to its owner"):
        loop.start(goal, owner)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.READY


def test_start_goes_ahead_once_the_goal_brings_a_script(owner, shop_repo):
    goal = ready_goal(owner, shop_repo, agent_profile=make_profile("scripted", name="Empty replayer"))
    goal.agent_script = [GOOD_STEP]
    goal.save(update_fields=["agent_script"])
    loop.start(goal, owner)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING


# --- a goal with only manual checks reaches its done review ----------------------------------------------------


def test_only_manual_checks_and_the_agent_says_done_open_the_done_review(client, owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [DONE_STEP], evidence=MANUAL)
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING
    done = outcome.request
    assert done.kind == "done" and done.step_number == 1
    assert "No command checks ran: make the 2 manual checks listed below before you approve." in done.summary
    client.force_login(owner)
    page = client.get(f"/approvals/{done.pk}/").text
    assert "manual: The downloaded CSV keeps its three columns" in page
    assert "manual: The export link still works" in page
    with TestCase.captureOnCommitCallbacks(execute=True):
        done.decide(owner, "approve")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE


def test_a_scripted_agent_past_its_script_asks_for_the_done_review_on_manual_checks(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP], evidence=MANUAL)
    assert step_once(goal).status == "continue"
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING and outcome.request.kind == "done"
    assert goal.steps.count() == 2  # not a loop of empty "done" steps until the budget runs out


def test_on_a_high_risk_goal_with_manual_checks_the_approved_done_step_opens_the_done_review(owner, shop_repo, eager):
    goal = make_scripted_goal(owner, shop_repo, [DONE_STEP], evidence=MANUAL, risk="high", rollback_note="git revert")
    step_request = step_once(goal).request
    assert step_request.kind == "step"
    with TestCase.captureOnCommitCallbacks(execute=True):
        step_request.decide(owner, "approve")
    done = ApprovalRequest.objects.get(goal=goal, status=RequestStatus.PENDING)
    assert done.kind == "done" and "manual checks" in done.summary


def test_a_command_check_still_has_to_pass_before_done(owner, shop_repo):
    failing = [{"kind": "command", "command": "false", "expect_exit": 0}, *MANUAL]
    goal = make_scripted_goal(owner, shop_repo, [DONE_STEP], evidence=failing)
    outcome = step_once(goal)
    assert not ApprovalRequest.objects.filter(goal=goal, kind="done").exists()
    assert outcome.status == "continue"

"""A goal's way forward: a failed goal retried from the base or resumed from its last kept step, and a
rejection's feedback reaching the agent's next prompt (a real adapter against a local fake model API)."""

import json

import pytest

from goals import loop
from goals.models import AgentProfile, GoalStatus, StepStatus
from tests.factories import GOOD_STEP, goal_git_dir, make_profile, make_scripted_goal, run_git, step_once
from tests.support.fakes.chat_server import FakeChatServer

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

SEVEN_NEW_FILES = "".join(
    f"diff --git a/pkg/m{i}.py b/pkg/m{i}.py\nnew file mode 100644\n--- /dev/null\n+++ b/pkg/m{i}.py\n"
    f"@@ -0,0 +1 @@\n+X = {i}\n"
    for i in range(7)
)


@pytest.fixture
def chat_server():
    server = FakeChatServer().start()
    yield server
    server.stop()


def failed_after_one_kept_step(owner, shop_repo):
    """A goal whose step 1 was kept and whose step 2 failed the goal: its agent was taken away from the owner."""
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP, GOOD_STEP, GOOD_STEP])
    assert step_once(goal).status == "continue"
    goal.agent_profile.users.add(owner)
    AgentProfile.objects.filter(pk=goal.agent_profile_id).update(enabled=False)
    goal.agent_profile.users.clear()
    assert step_once(goal).status == GoalStatus.FAILED
    return goal


def edit_to_another_agent(goal) -> None:
    goal.agent_profile = make_profile("scripted", name="Replayer")
    goal.save(update_fields=["agent_profile"])


def test_a_failed_goal_says_why_and_what_to_do(owner, shop_repo):
    goal = failed_after_one_kept_step(owner, shop_repo)
    sentence = goal.status_sentence()
    assert sentence.startswith("Failed: the agent cannot run: The agent Scripted is no longer offered")
    assert sentence.endswith("— Retry or Resume")


def test_resume_refuses_until_the_goal_is_edited_to_an_agent_that_can_run(owner, shop_repo):
    goal = failed_after_one_kept_step(owner, shop_repo)
    with pytest.raises(loop.ControlRefused, match="no longer offered to its owner. Edit it"):
        loop.resume(goal, owner)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.FAILED


def test_a_failed_goal_resumes_from_its_last_kept_step(owner, shop_repo):
    goal = failed_after_one_kept_step(owner, shop_repo)
    edit_to_another_agent(goal)
    assert loop.resume(goal, owner) is True
    assert goal.status == GoalStatus.RUNNING
    assert step_once(goal).status == "continue"
    kept, resumed = goal.steps.get(number=1), goal.steps.get(number=3)
    assert resumed.status == StepStatus.PASSED
    assert resumed.parent_sha == kept.commit_sha
    assert goal.events.filter(message="Resumed from the last kept step.").exists()


def test_retry_starts_over_from_the_base_branch(owner, shop_repo):
    goal = failed_after_one_kept_step(owner, shop_repo)
    edit_to_another_agent(goal)
    assert loop.retry(goal, owner) is True
    assert goal.steps.get(number=1).status == StepStatus.SET_ASIDE
    assert step_once(goal).status == "continue"
    again = goal.steps.get(number=3)
    assert again.parent_sha == run_git(shop_repo, "rev-parse", "main").strip()
    subjects = run_git(goal_git_dir(goal.pk), "log", "--format=%s", f"goalpost/{goal.pk}").splitlines()
    assert subjects[0] == "Step 3: Add a discount argument"
    assert not any(subject.startswith("Step 1:") for subject in subjects)
    assert goal.usage().steps == 3  # set aside, not forgotten: the budgets still count it


def test_retry_refuses_a_goal_that_has_not_failed(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    with pytest.raises(loop.ControlRefused, match="Only a failed goal can be retried"):
        loop.retry(goal, owner)


def test_retry_refuses_a_contract_edited_into_blocking_findings(owner, shop_repo):
    goal = failed_after_one_kept_step(owner, shop_repo)
    edit_to_another_agent(goal)
    goal.objective = "Improve the dashboard."
    goal.save(update_fields=["objective"])
    with pytest.raises(loop.ControlRefused, match="blocking finding"):
        loop.retry(goal, owner)
    assert goal.steps.get(number=1).status == StepStatus.PASSED


def test_a_rejection_s_feedback_reaches_the_agent_s_next_prompt(owner, shop_repo, chat_server):
    profile = make_profile("openai", name="Local model", base_url=chat_server.base_url, models=["coder"])
    goal = make_scripted_goal(owner, shop_repo, [], agent_profile=profile)
    chat_server.answer(f"Seven modules at once.\n\n```diff\n{SEVEN_NEW_FILES}```\n")
    request = step_once(goal).request
    assert request is not None and request.kind == "plan"

    request.decide(owner, "reject", comment="One module at a time, starting with pkg/m0.py")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING
    chat_server.answer("Nothing more to change.\nSTATUS: done")
    step_once(goal)

    first, second = (json.dumps(sent["json"]["messages"]) for sent in chat_server.requests)
    assert "One module at a time" not in first
    assert "One module at a time, starting with pkg/m0.py" in second
    assert "rejected step 1" in second
    assert goal.steps.get(number=2).parent_sha == run_git(shop_repo, "rev-parse", "main").strip()

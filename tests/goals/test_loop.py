"""The goal loop on real git repositories with the scripted agent: every way a step can end."""

import json
import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django.utils import timezone

from approvals.models import ApprovalRequest, RequestOrigin, RequestStatus
from goals import loop
from goals.diffs import DiffError, parse_diff
from goals.models import AgentProfile, Goal, GoalStatus, Step, StepStatus
from tests.factories import (
    GOOD_STEP,
    SEVEN_FILES,
    SHOP_PY,
    WEAKEN,
    goal_git_dir,
    make_git_repo,
    make_scripted_goal,
    run_git,
    step_once,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

DONE = {**GOOD_STEP, "summary": "Discounts done", "done": True}


def test_a_quiet_step_commits_on_the_goal_branch_and_continues(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    outcome = step_once(goal)
    assert outcome.status == "continue"
    step = goal.steps.get()
    assert step.status == StepStatus.PASSED
    assert step.number == 1 and step.tokens == 1200
    assert step.evidence[0]["passed"] and step.evidence[0]["counts"]["passed"] == 2
    assert [f["severity"] for f in step.findings if f["severity"] != "info"] == []
    assert step.diff_stats["files"] == 2
    log = run_git(goal_git_dir(goal.pk), "log", "--format=%s", f"goalpost/{goal.pk}")
    assert log.splitlines()[0] == "Step 1: Add a discount argument"
    assert run_git(shop_repo, "rev-parse", "main").strip() == step.parent_sha
    assert goal.status == GoalStatus.RUNNING
    assert goal.started_at is not None


def test_a_seven_file_step_asks_for_a_plan_and_waits(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [SEVEN_FILES])
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING
    assert goal.status == GoalStatus.WAITING
    request = outcome.request
    assert request.kind == "plan" and "blast_radius" in request.gates
    assert request.origin == RequestOrigin.LOOP and not request.from_gateway
    assert goal.steps.get().status == StepStatus.WAITING
    assert step_once(goal).status == "idle"  # a waiting goal does not step


def test_approve_continues_with_the_comment_in_the_next_prompt(owner, shop_repo, django_capture_on_commit_callbacks):
    goal = make_scripted_goal(owner, shop_repo, [WEAKEN, GOOD_STEP])
    request = step_once(goal).request
    assert "tests_weakened" in request.gates
    with django_capture_on_commit_callbacks(execute=False):
        request.decide(owner, "approve", comment="fine, but add a discount test next")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING
    assert goal.steps.get(number=1).status == StepStatus.APPROVED
    assert loop.latest_human_comments(goal) == ["The human approved step 1: fine, but add a discount test next"]
    assert step_once(goal).status == "continue"
    assert goal.steps.get(number=2).parent_sha == goal.steps.get(number=1).commit_sha


def test_reject_reverts_the_step_before_the_next_one(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [SEVEN_FILES, GOOD_STEP])
    request = step_once(goal).request
    request.decide(owner, "reject", comment="one module at a time")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING
    assert goal.steps.get(number=1).status == StepStatus.REJECTED
    step_once(goal)
    second = goal.steps.get(number=2)
    assert second.parent_sha == run_git(shop_repo, "rev-parse", "main").strip()
    worktree = loop.workspace_for(goal).path
    assert not (worktree / "pkg").exists()
    assert "Step 1" not in run_git(goal_git_dir(goal.pk), "log", "--format=%s", f"goalpost/{goal.pk}").splitlines()[0]


def test_stop_pauses_the_goal(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [SEVEN_FILES])
    step_once(goal).request.decide(owner, "stop")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.PAUSED
    assert step_once(goal).status == "idle"


def test_budget_stop_then_extension(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP, GOOD_STEP, GOOD_STEP], budget_steps=1)
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING
    request = outcome.request
    assert request.kind == "budget" and request.origin == RequestOrigin.BUDGET
    assert request.details["budget"] == "steps"
    request.decide(owner, "extend", extend={"steps": 1})
    goal.refresh_from_db()
    assert goal.budget_steps == 2 and goal.status == GoalStatus.RUNNING
    assert step_once(goal).request.kind == "budget"


def test_done_needs_the_final_word_and_then_pushes_the_branch_to_the_repository(owner, shop_repo, eager):
    goal = make_scripted_goal(owner, shop_repo, [DONE])
    outcome = step_once(goal)
    assert outcome.request.kind == "done" and outcome.request.origin == RequestOrigin.LOOP
    assert "goalpost/" not in run_git(shop_repo, "branch", "--list")  # nothing reaches the repository before
    with TestCase.captureOnCommitCallbacks(execute=True):
        outcome.request.decide(owner, "approve")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE
    step = goal.steps.get()
    assert run_git(shop_repo, "rev-parse", f"goalpost/{goal.pk}").strip() == step.commit_sha
    assert goal.events.filter(kind="publish", message__startswith=f"Pushed goalpost/{goal.pk}").exists()


def test_a_git_directory_planted_by_the_agent_fails_the_step_and_never_runs(owner, shop_repo, tmp_path):
    marker = tmp_path / "planted-ran"
    planted = {
        "summary": "Plant a repository with a filter",
        "write": {
            "shop.py": SHOP_PY + "# touched\n",
            "sub/.git/config": f"[filter \"x\"]\n\tclean = touch {marker}\n[core]\n\tfsmonitor = touch {marker}\n",
            "sub/.git/HEAD": "ref: refs/heads/main\n",
            ".gitattributes": "* filter=x\n",
        },
    }
    goal = make_scripted_goal(owner, shop_repo, [planted])
    outcome = step_once(goal)
    step = goal.steps.get()
    assert outcome.status == "continue" and step.status == StepStatus.FAILED
    assert "sub/.git" in step.error
    assert not marker.exists()
    assert not (loop.workspace_for(goal).path / "sub").exists()


def test_on_a_high_risk_goal_approving_the_step_that_said_done_opens_the_done_review(owner, shop_repo, eager):
    """Every step of a high-risk goal is reviewed, the last one too: its approval must lead to the done review,
    never to another step (the agent's "done" was lost, and the goal ran on with nothing left to do)."""
    goal = make_scripted_goal(owner, shop_repo, [DONE, GOOD_STEP], risk="high", rollback_note="git revert")
    step_request = step_once(goal).request
    assert step_request.kind == "step" and "risk" in step_request.gates
    with TestCase.captureOnCommitCallbacks(execute=True):
        step_request.decide(owner, "approve")
    goal.refresh_from_db()
    done = ApprovalRequest.objects.get(goal=goal, status=RequestStatus.PENDING)
    assert (done.kind, done.step_number, done.origin) == ("done", 1, RequestOrigin.LOOP)
    assert goal.status == GoalStatus.WAITING and goal.steps.count() == 1
    assert step_once(goal).status == "idle"  # no step runs while the done review waits
    with TestCase.captureOnCommitCallbacks(execute=True):
        done.decide(owner, "approve")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE


def test_a_rejected_step_that_said_done_opens_no_done_review(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [DONE, GOOD_STEP], risk="high", rollback_note="git revert")
    step_once(goal).request.decide(owner, "reject")
    goal.refresh_from_db()
    assert not ApprovalRequest.objects.filter(goal=goal, kind="done").exists()
    assert goal.status == GoalStatus.RUNNING


def test_rejecting_done_keeps_the_work_and_goes_on(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [DONE, GOOD_STEP])
    step_once(goal).request.decide(owner, "reject", comment="also handle negative totals")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.RUNNING
    assert goal.steps.get(number=1).kept


def test_agent_failures_fail_the_step_and_repeat_into_a_request(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [{"fail": "model overloaded (attempt 1)"}] * 3)
    assert step_once(goal).status == "continue"
    assert step_once(goal).status == "continue"
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING
    assert outcome.request.gates == ["repeated_failure"]
    assert list(goal.steps.values_list("status", flat=True)) == [StepStatus.FAILED] * 3


def test_the_same_failing_test_three_times_asks_a_human_before_the_retry_budget(owner, shop_repo):
    broken = {"summary": "try", "write": {"shop.py": "def total(items):\n    return 0\n"}}
    goal = make_scripted_goal(owner, shop_repo, [broken, broken, broken, broken], budget_retries=3)
    assert step_once(goal).status == "continue"
    assert step_once(goal).status == "continue"
    third = step_once(goal)
    assert "repeated_failure" in third.request.gates
    assert "budget" not in third.request.gates


def test_a_permanent_agent_error_fails_the_goal(owner, shop_repo):
    skynet = AgentProfile.objects.create(name="Skynet", adapter="skynet")  # an adapter no release has
    goal = make_scripted_goal(owner, shop_repo, [], agent_profile=skynet)
    assert step_once(goal).status == GoalStatus.FAILED
    assert goal.status == GoalStatus.FAILED


def test_a_patch_that_does_not_apply_is_a_failed_step_not_a_crash(owner, shop_repo):
    patch = "--- a/missing.py\n+++ b/missing.py\n@@ -1 +1 @@\n-a\n+b\n"
    goal = make_scripted_goal(owner, shop_repo, [{"summary": "bad patch", "patch": patch}, GOOD_STEP])
    assert step_once(goal).status == "continue"
    assert goal.steps.get(number=1).status == StepStatus.FAILED
    assert goal.steps.get(number=1).error
    assert step_once(goal).status == "continue"
    assert goal.steps.get(number=2).status == StepStatus.PASSED


def test_a_change_outside_the_working_area_proposes_a_follow_up_goal(owner, shop_repo):
    stray = {**GOOD_STEP, "write": {**GOOD_STEP["write"], "billing/export.py": "X = 1\n"}}
    goal = make_scripted_goal(owner, shop_repo, [stray], scope_paths=["shop.py", "tests/**"])
    outcome = step_once(goal)
    assert outcome.request.kind == "follow_up"
    follow_up = Goal.objects.get(parent=goal)
    assert follow_up.status == GoalStatus.DRAFT
    assert follow_up.owner == owner


def test_a_lost_worker_step_reruns_with_the_same_number(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    Step.objects.create(goal=goal, number=1, worker="dead", run_index=0)
    Goal.objects.filter(pk=goal.pk).update(lease_token="dead", lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert goal.pk in loop.lost_goals()
    assert step_once(goal).status == "continue"
    step = goal.steps.get()
    assert step.number == 1 and step.attempts == 2 and step.status == StepStatus.PASSED
    assert len(run_git(goal_git_dir(goal.pk), "log", "--format=%s", f"goalpost/{goal.pk}", "^main").splitlines()) == 1


def test_a_live_lease_keeps_other_workers_out(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    Goal.objects.filter(pk=goal.pk).update(lease_token="other", lease_expires_at=timezone.now() + timedelta(minutes=1))
    assert step_once(goal).status == "busy"
    assert not goal.steps.exists()
    assert goal.pk not in loop.lost_goals()


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_step_one_goal_at_once(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [{**GOOD_STEP, "sleep": 1}] * 2)
    barrier = threading.Barrier(2)
    outcomes = []

    def work():
        barrier.wait()
        try:
            outcomes.append(loop.run_step(goal.pk, worker=threading.current_thread().name).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)  # the first step takes the evidence baseline first: slow on a loaded machine
    assert sorted(outcomes) == ["busy", "continue"]
    assert goal.steps.count() == 1


def test_run_goal_prints_the_outcome_as_json(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP, SEVEN_FILES], status=GoalStatus.READY)
    out = StringIO()
    call_command("run_goal", str(goal.pk), stdout=out, stderr=StringIO())
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    request = ApprovalRequest.objects.get(goal=goal)
    assert result == {"goal": goal.pk, "status": "waiting", "approval": {"id": request.pk, "kind": "plan", "gates": ["blast_radius"]}}


def test_run_goal_refuses_a_draft(owner, shop_repo):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP], status=GoalStatus.DRAFT)
    with pytest.raises(Exception, match="draft"):
        call_command("run_goal", str(goal.pk), stdout=StringIO())


def test_expiry_denies_and_pauses_by_default(owner, shop_repo, django_capture_on_commit_callbacks):
    goal = make_scripted_goal(owner, shop_repo, [SEVEN_FILES])
    request = step_once(goal).request
    ApprovalRequest.objects.filter(pk=request.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        request.refresh_from_db()
        assert request.expire()
    goal.refresh_from_db()
    assert goal.status == GoalStatus.PAUSED
    assert goal.steps.get().status == StepStatus.REJECTED
    assert ApprovalRequest.objects.get(pk=request.pk).status == RequestStatus.EXPIRED


def test_stall_detection_marks_a_quiet_running_goal(owner, shop_repo, settings):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP], started_at=timezone.now() - timedelta(hours=2))
    found = loop.detect_stalls()
    assert [goal_id for goal_id, _ in found] == [goal.pk]
    goal.refresh_from_db()
    assert goal.status == GoalStatus.STALLED
    stall = ApprovalRequest.objects.get(goal=goal)
    assert stall.kind == "stall" and stall.origin == RequestOrigin.STALL


def test_a_step_whose_diff_the_parser_refuses_asks_a_person_with_the_reason(owner, shop_repo, monkeypatch):
    """The worker's own diff is never a merge or a log, so the refusal is forced at the parser: no gate may pass a
    change it could not read, and the loop goes on to ask instead of crashing."""
    refusal = "a combined merge diff (`diff --cc shop.py` at line 1) cannot be read"

    def refuse(text, **options):
        if text:
            raise DiffError(refusal)
        return parse_diff(text, **options)

    monkeypatch.setattr(loop, "parse_diff", refuse)
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING and "blast_radius" in outcome.request.gates
    step = goal.steps.get()
    assert step.status == StepStatus.WAITING
    (finding,) = [f for f in step.findings if f["data"].get("diff_error")]
    assert finding["severity"] == "approval" and "unreadable" in finding["reason"]
    assert finding["data"]["diff_error"] == refusal
    # The gates still saw which files changed, by name.
    assert step.diff_stats["files"] == 2 and {f["path"] for f in step.files} == {"shop.py", "tests/test_shop.py"}


def test_a_binary_file_the_agent_only_renamed_is_recorded_as_binary(owner, shop_repo):
    """git prints no "Binary files" line for a 100% rename, and the name (no suffix) says nothing: the loop looks."""
    (shop_repo / "data").mkdir()
    (shop_repo / "data" / "blob").write_bytes(b"\x00\x01\x02" * 100)
    run_git(shop_repo, "add", "-A")
    run_git(shop_repo, "commit", "-q", "-m", "data")
    rename = "diff --git a/data/blob b/data/moved\nsimilarity index 100%\nrename from data/blob\nrename to data/moved\n"
    goal = make_scripted_goal(owner, shop_repo, [{"summary": "move the blob", "patch": rename}])
    step_once(goal)
    step = goal.steps.get()
    assert "similarity index 100%" in step.diff and "Binary files" not in step.diff
    (moved,) = step.files
    assert (moved["path"], moved["old_path"], moved["change"], moved["binary"]) == (
        "data/moved",
        "data/blob",
        "renamed",
        True,
    )
    assert step.diff_stats["binary"] == 1


def test_the_binary_probe_reads_nothing_outside_the_worktree(tmp_path):
    """The agent owns the worktree: a renamed symlink to a file outside must not make the worker read that file."""
    worktree, outside = tmp_path / "worktree", tmp_path / "outside.bin"
    worktree.mkdir()
    outside.write_bytes(b"\x00secret")
    (worktree / "inside.bin").write_bytes(b"\x00")
    (worktree / "link").symlink_to(outside)
    (worktree / "folder").mkdir()
    assert loop._holds_nul(worktree, "inside.bin")
    assert not loop._holds_nul(worktree, "link")
    assert not loop._holds_nul(worktree, "../outside.bin")
    assert not loop._holds_nul(worktree, "folder")


def test_a_scripted_agent_past_its_script_asks_for_the_done_review_instead_of_failing(owner, shop_repo, eager):
    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    assert step_once(goal).status == "continue"
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.WAITING
    assert (outcome.request.kind, outcome.request.step_number) == ("done", 2)
    assert goal.steps.get(number=2).status == StepStatus.PASSED and goal.steps.get(number=2).agent_done
    with TestCase.captureOnCommitCallbacks(execute=True):
        outcome.request.decide(owner, "approve")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE


def test_a_rejection_gives_the_scripted_agent_its_reply_then_the_done_review(owner, shop_repo):
    replying = {**SEVEN_FILES, "on_reject": {**DONE, "summary": "One module at a time"}}
    goal = make_scripted_goal(owner, shop_repo, [replying])
    step_once(goal).request.decide(owner, "reject", comment="one module at a time")
    goal.refresh_from_db()
    outcome = step_once(goal)
    assert goal.steps.get(number=2).summary == "One module at a time"
    assert outcome.request.kind == "done"
    assert goal.status == GoalStatus.WAITING


FLOW_CHECK = "from shop import total\n\n\ndef check_flow():\n    assert total([2, 3]) == 5\n"


@pytest.fixture
def flow_repo(tmp_path):
    """A shop whose checks live in flow_tests/, which only its pyproject's pytest testpaths names."""
    return make_git_repo(
        tmp_path / "flow",
        {
            "shop.py": SHOP_PY,
            "conftest.py": "",
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["flow_tests"]\npython_files = ["*.py"]\n',
            "flow_tests/run_flow.py": FLOW_CHECK,
        },
    )


def test_the_agent_cannot_rewrite_the_rules_its_own_step_is_judged_by(owner, flow_repo):
    # The agent marks the checks generated and vendored in .gitattributes, points pytest elsewhere, and loosens
    # a check in the same step: the rules come from the base commit, so the loosened check still asks a person.
    hostile = {
        "summary": "Tidy the config",
        "write": {
            ".gitattributes": "flow_tests/** linguist-generated linguist-vendored\n",
            "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["nowhere"]\n',
            "flow_tests/run_flow.py": FLOW_CHECK.replace("== 5", ">= 0"),
        },
    }
    goal = make_scripted_goal(owner, flow_repo, [hostile, hostile], evidence=[])
    outcome = step_once(goal)
    step = goal.steps.get(number=1)
    loud = {(f["gate"], f["data"].get("why")) for f in step.findings if f["severity"] != "info"}
    assert ("tests_without_code", None) in loud
    assert not {why for _, why in loud} & {"generated", "vendored"}
    noted = sorted(f["path"] for f in step.findings if f["data"].get("why") == "rules_config")
    assert noted == [".gitattributes", "pyproject.toml"]
    goal.refresh_from_db()
    assert goal.detected_paths["sha"] == run_git(flow_repo, "rev-parse", "main").strip()
    assert goal.path_rules().tests.patterns == ("/flow_tests/",)
    assert goal.path_rules().tests.sources == ("pyproject.toml",)
    assert outcome.status == GoalStatus.WAITING


def test_staff_vendored_paths_stop_an_edit_there(owner, flow_repo):
    goal = make_scripted_goal(owner, flow_repo, [{"summary": "Patch", "write": {"shop.py": "X = 1\n"}}], evidence=[])
    goal.repository.vendored_paths = "/shop.py\n"
    goal.repository.save(update_fields=["vendored_paths"])
    step_once(goal)
    (finding,) = [f for f in goal.steps.get().findings if f["gate"] == "protected_path"]
    assert finding["reason"] == "Vendored file changed: shop.py (update the vendored copy from upstream instead)"
    assert goal.path_rules().vendored.sources == ("set by staff",)


def test_a_step_that_loses_the_database_runs_again_instead_of_failing(owner, shop_repo, monkeypatch):
    from django.db import OperationalError

    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])
    real = loop._run_agent_and_judge
    calls = []

    def dropped_once(*args):
        calls.append(1)
        if len(calls) == 1:  # what psycopg raises when the session is terminated mid-query
            raise OperationalError("terminating connection due to administrator command")
        return real(*args)

    monkeypatch.setattr(loop, "_run_agent_and_judge", dropped_once)
    assert step_once(goal).status == "continue"
    step = goal.steps.get()
    assert step.status == StepStatus.RUNNING and not step.error  # not recorded as the step's failure
    assert step_once(goal).status == "continue"
    step.refresh_from_db()
    assert step.number == 1 and step.attempts == 2 and step.status == StepStatus.PASSED


def test_a_step_that_keeps_losing_the_database_fails_after_three_attempts(owner, shop_repo, monkeypatch):
    from django.db import OperationalError

    goal = make_scripted_goal(owner, shop_repo, [GOOD_STEP])

    def always_dropped(*args):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(loop, "_run_agent_and_judge", always_dropped)
    for _ in range(loop.DATABASE_LOST_ATTEMPTS):
        step_once(goal)
    step = goal.steps.get()
    assert step.status == StepStatus.FAILED and "server closed the connection" in step.error
    assert step.attempts == loop.DATABASE_LOST_ATTEMPTS

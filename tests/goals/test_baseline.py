"""The evidence baseline: the goal's checks run once on its base branch, in the sandbox, before any agent work;
what fails there is the "before" of the done review. Real git repositories, the real loop and (where bubblewrap
runs) the real sandbox."""

import sys

import pytest

from approvals.models import RequestKind
from gateway import calls
from gateway.models import AgentToken
from goals import loop
from goals.models import BaselineStatus, EvidenceBaseline, GoalStatus
from tests.factories import make_git_repo, make_scripted_goal, run_git, step_once
from tests.support.sandbox import require_sandbox

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

TAX_PY = "def tax(amount):\n    return int(amount * 0.2)\n"
FIXED_TAX_PY = "def tax(amount):\n    return round(amount * 0.2, 2)\n"
TAX_TEST = (
    "from tax import tax\n\n\n"
    "def test_tax_total():\n    assert tax(100) == 20\n\n\n"
    "def test_tax_rounding():\n    assert tax(10.05) == 2.01\n"
)
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
THREE_CHECKS = [
    {"kind": "command", "command": PYTEST, "expect_exit": 0, "description": ""},
    {"kind": "command", "command": "test -f tax.py", "expect_exit": 0, "description": ""},
    {"kind": "command", "command": "sh -c 'grep -q def tax.py'", "expect_exit": 0, "description": ""},
]
FIX_AND_DONE = {"summary": "Round tax to cents", "write": {"tax.py": FIXED_TAX_PY}, "done": True, "tokens": 10}


@pytest.fixture
def tax_repo(tmp_path):
    """A repository whose main branch fails one test today: test_tax_rounding."""
    return make_git_repo(tmp_path / "tax", {"tax.py": TAX_PY, "tests/test_tax.py": TAX_TEST, "conftest.py": ""}, "tax")


def tax_goal(owner, repo, steps=(), evidence=None, **fields):
    fields.setdefault("status", GoalStatus.READY)
    return make_scripted_goal(owner, repo, list(steps), evidence=evidence or THREE_CHECKS, **fields)


def checked(goal, actor=None) -> EvidenceBaseline:
    baseline = loop.request_baseline(goal, actor)
    loop.take_baseline(baseline.pk)
    baseline.refresh_from_db()
    return baseline


def test_a_baseline_records_which_checks_fail_on_the_base_branch_today(owner, tax_repo):
    goal = tax_goal(owner, tax_repo)
    baseline = checked(goal, owner)
    assert baseline.status == BaselineStatus.DONE
    assert baseline.base_sha == run_git(tax_repo, "rev-parse", "main").strip()
    pytest_check, *others = baseline.checks
    assert not pytest_check["passed"] and pytest_check["exit_code"] == 1
    assert pytest_check["failing_tests"] == ["tests/test_tax.py::test_tax_rounding"]
    assert pytest_check["summary"] == "pytest 1 passed, 1 failed"
    assert all(check["passed"] and check["resolved"] for check in others)
    assert baseline.headline() == (
        f"Baseline on main @{baseline.base_sha[:7]}: 1 of 3 failing — tests/test_tax.py::test_tax_rounding"
    )
    assert goal.current_baseline() == baseline
    assert goal.events.filter(kind="baseline", message=baseline.headline()).exists()


def test_a_second_request_while_one_is_queued_runs_nothing_twice(owner, tax_repo):
    goal = tax_goal(owner, tax_repo)
    first = loop.request_baseline(goal, owner)
    assert loop.request_baseline(goal, owner) == first
    assert loop.take_baseline(first.pk) is not None
    assert loop.take_baseline(first.pk) is None  # a duplicate message claims nothing
    assert goal.baselines.count() == 1


def test_a_baseline_goes_stale_when_the_checks_change(owner, tax_repo):
    goal = tax_goal(owner, tax_repo)
    checked(goal)
    goal.evidence = [*THREE_CHECKS, {"kind": "command", "command": "true", "expect_exit": 0}]
    goal.save()
    assert goal.current_baseline() is None


def test_the_baseline_runs_on_the_base_branch_never_on_the_agents_work(owner, tax_repo):
    """The agent's commits live on the goal's branch; a baseline taken afterwards still reads main."""
    goal = tax_goal(owner, tax_repo, [{"summary": "Plant", "write": {"tax.py": "import os\nos.exit(0)\n"}}])
    goal.status = GoalStatus.RUNNING
    goal.save()
    step_once(goal)
    assert goal.steps.get().commit_sha
    baseline = checked(goal)
    assert baseline.base_sha == run_git(tax_repo, "rev-parse", "main").strip()
    assert baseline.checks[0]["failing_tests"] == ["tests/test_tax.py::test_tax_rounding"]


def test_a_command_that_names_nothing_runnable_is_not_run_and_says_why(owner, tax_repo):
    evidence = [
        {"kind": "command", "command": "run the tax tests", "expect_exit": 0},
        {"kind": "command", "command": "./scripts/check.sh", "expect_exit": 0},
        {"kind": "command", "command": "test -f tax.py", "expect_exit": 0},
    ]
    baseline = checked(tax_goal(owner, tax_repo, evidence=evidence))
    first, second, third = baseline.checks
    assert first["resolved"] is False and first["exit_code"] is None
    assert first["message"].startswith("`run` is not a command here: no executable named run in the sandbox (PATH ")
    assert first["message"].endswith("Write the command you would type, or mark it a manual check.")
    assert "in the repository's checkout" in second["message"]
    assert third["resolved"] and third["passed"]
    assert baseline.unresolved == [first["message"], second["message"]]


def test_a_check_that_hangs_times_out(owner, tax_repo, settings):
    settings.GOALPOST_EVIDENCE_TIMEOUT_S = 1
    evidence = [{"kind": "command", "command": "sleep 60", "expect_exit": 0}]
    baseline = checked(tax_goal(owner, tax_repo, evidence=evidence))
    (check,) = baseline.checks
    assert check["timed_out"] and not check["passed"]
    assert check["summary"].startswith("timed out after")


def test_the_output_kept_is_capped(owner, tax_repo):
    evidence = [{"kind": "command", "command": "head -c 100000 /dev/zero | tr '\\0' x; exit 3", "expect_exit": 0}]
    baseline = checked(tax_goal(owner, tax_repo, evidence=evidence))
    (check,) = baseline.checks
    assert check["exit_code"] == 3 and len(check["output_tail"]) <= 4_000


def test_a_repository_that_cannot_be_read_fails_the_baseline_with_the_reason(owner, tax_repo):
    goal = tax_goal(owner, tax_repo, base_branch="release")
    baseline = checked(goal)
    assert baseline.status == BaselineStatus.FAILED
    assert "no branch “release”" in baseline.error
    assert baseline.headline().startswith("Baseline on release: could not run:")


# --- at the start of a goal ------------------------------------------------------------------------------------------


def test_the_first_step_takes_a_baseline_of_the_commit_the_goal_starts_from(owner, tax_repo):
    goal = tax_goal(owner, tax_repo, [{"summary": "noop", "write": {"notes.txt": "x\n"}}], status=GoalStatus.RUNNING)
    step_once(goal)
    baseline = goal.baselines.get()
    assert baseline.status == BaselineStatus.DONE
    assert baseline.base_sha == goal.steps.get().parent_sha
    step_once(goal)  # a second step takes none
    assert goal.baselines.count() == 1


def test_a_baseline_of_the_same_commit_is_not_taken_again_at_start(owner, tax_repo):
    goal = tax_goal(owner, tax_repo, [{"summary": "noop", "write": {"notes.txt": "x\n"}}])
    checked(goal)
    goal.status = GoalStatus.RUNNING
    goal.save()
    step_once(goal)
    assert goal.baselines.count() == 1 and goal.steps.count() == 1


def test_a_goal_whose_command_does_not_resolve_does_not_start(owner, tax_repo):
    evidence = [{"kind": "command", "command": "run the tax tests", "expect_exit": 0}]
    goal = tax_goal(owner, tax_repo, [FIX_AND_DONE], evidence=evidence, status=GoalStatus.RUNNING)
    outcome = step_once(goal)
    assert outcome.status == GoalStatus.READY
    assert goal.status == GoalStatus.READY
    assert not goal.steps.exists()
    assert goal.events.filter(kind="status", message__startswith="Not started: `run` is not a command here").exists()
    with pytest.raises(loop.ControlRefused, match="`run` is not a command here"):
        loop.start(goal, owner)
    goal.evidence = [{"kind": "command", "command": "test -f tax.py", "expect_exit": 0}]  # the owner fixes it
    goal.save()
    loop.start(goal, owner)
    assert goal.status == GoalStatus.RUNNING


# --- the done review compares against it ----------------------------------------------------------------------------


def test_the_done_review_says_before_and_after(owner, tax_repo):
    goal = tax_goal(owner, tax_repo, [FIX_AND_DONE], status=GoalStatus.RUNNING)
    outcome = step_once(goal)
    request = outcome.request
    assert request.kind == RequestKind.DONE
    compared = request.details["baseline"]
    assert compared["line"] == "before: 1 failing; after: all 3 pass"
    assert compared["fixed"] == ["tests/test_tax.py::test_tax_rounding"] and compared["broken"] == []
    assert compared["headline"].startswith("Baseline on main @")


def test_a_check_that_reaches_for_the_network_is_confined_like_any_evidence_run(owner, tax_repo):
    require_sandbox()
    reach = f"{sys.executable} -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)\""
    baseline = checked(tax_goal(owner, tax_repo, evidence=[{"kind": "command", "command": reach, "expect_exit": 0}]))
    (check,) = baseline.checks
    assert check["resolved"] and not check["passed"] and check["exit_code"] == 1
    assert "OSError" in check["output_tail"] or "unreachable" in check["output_tail"]


def test_the_goal_api_shows_the_baseline(client, owner, tax_repo):
    goal = tax_goal(owner, tax_repo)
    _, secret = AgentToken.issue(goal, owner)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get(f"/api/v1/goals/{goal.pk}", **auth).json()["baseline"] is None
    baseline = checked(goal)
    shown = client.get(f"/api/v1/goals/{goal.pk}", **auth).json()["baseline"]
    assert shown["status"] == "done" and shown["base_sha"] == baseline.base_sha
    assert shown["headline"] == baseline.headline()
    assert shown["checks"][0]["failing_tests"] == ["tests/test_tax.py::test_tax_rounding"]
    assert "output_tail" not in shown["checks"][0]


def test_an_agent_elsewhere_gets_the_same_before_and_after_from_its_reported_checks(owner, tax_repo):
    goal = tax_goal(owner, tax_repo)
    checked(goal)
    goal.status = GoalStatus.RUNNING
    goal.save()
    token, _ = AgentToken.issue(goal, owner)
    for check in THREE_CHECKS:
        calls.record_evidence(goal, token, command=check["command"], exit_code=0)
    request = calls.claim_done(goal, token, "Rounding fixed").request
    assert request.details["baseline"]["line"] == "before: 1 failing; after: all 3 pass"
    assert request.details["baseline"]["fixed"] == ["tests/test_tax.py::test_tax_rounding"]

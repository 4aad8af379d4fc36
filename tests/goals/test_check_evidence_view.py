"""POST /goals/<id>/check-evidence/: the owner's "Check evidence" runs the goal's checks once on the base branch
(a celery task, run eagerly here) and the goal page shows the baseline; Start refuses a goal whose commands do
not resolve; the done review's page shows before and after."""

import sys

import pytest

from approvals.models import ApprovalRequest, RequestKind
from goals import loop
from goals.models import BaselineStatus, EvidenceBaseline, GoalStatus
from tests.factories import HTMX, make_git_repo, make_goal, make_scripted_goal, step_once

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

TAX_PY = "def tax(amount):\n    return int(amount * 0.2)\n"
TAX_TEST = "from tax import tax\n\n\ndef test_tax_rounding():\n    assert tax(10.05) == 2.01\n"
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider tests"
CHECKS = [
    {"kind": "command", "command": PYTEST, "expect_exit": 0, "description": ""},
    {"kind": "command", "command": "test -f tax.py", "expect_exit": 0, "description": ""},
]


@pytest.fixture
def tax_goal(owner, approver, viewer, tmp_path):
    repo = make_git_repo(tmp_path / "tax", {"tax.py": TAX_PY, "tests/test_tax.py": TAX_TEST, "conftest.py": ""})
    goal = make_scripted_goal(owner, repo, [], evidence=CHECKS, status=GoalStatus.READY)
    goal.approvers.add(approver)
    goal.viewers.add(viewer)
    return goal


def url(goal) -> str:
    return f"/goals/{goal.pk}/check-evidence/"


def test_the_owner_checks_the_evidence_and_the_page_shows_the_baseline(
    client, owner, tax_goal, eager, django_capture_on_commit_callbacks
):
    client.force_login(owner)
    before = client.get(f"/goals/{tax_goal.pk}/")
    assert "No baseline yet" in before.text and "Check evidence</button>" in before.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(tax_goal))
    assert response.status_code == 302 and response["Location"] == f"/goals/{tax_goal.pk}/"
    baseline = tax_goal.baselines.get()
    assert baseline.status == BaselineStatus.DONE and baseline.requested_by == owner
    page = client.get(f"/goals/{tax_goal.pk}/").text
    assert f"Baseline on main @{baseline.base_sha[:7]}: 1 of 2 failing — tests/test_tax.py::test_tax_rounding" in page
    assert "tests/test_tax.py::test_tax_rounding</code>" in page


def test_the_htmx_post_answers_the_panel_which_polls_while_checking(client, owner, tax_goal):
    client.force_login(owner)
    response = client.post(url(tax_goal), **HTMX)  # no worker here: the baseline stays queued
    assert response.status_code == 200
    assert 'id="baseline"' in response.text and "<html" not in response.text
    assert "checking…" in response.text and 'hx-trigger="every 2s"' in response.text
    assert "disabled>Checking…</button>" in response.text
    again = client.get(url(tax_goal), **HTMX)
    assert 'hx-get="' in again.text and "<html" not in again.text


def test_a_finished_panel_stops_polling(client, owner, tax_goal):
    loop.take_baseline(loop.request_baseline(tax_goal, owner).pk)
    client.force_login(owner)
    response = client.get(url(tax_goal), **HTMX)
    assert "1 of 2 failing" in response.text and "hx-trigger" not in response.text


def test_a_get_without_htmx_goes_back_to_the_goal(client, owner, tax_goal):
    client.force_login(owner)
    assert client.get(url(tax_goal))["Location"] == f"/goals/{tax_goal.pk}/"


@pytest.mark.parametrize(("who", "status"), [("approver", 403), ("viewer", 403), ("outsider", 404)])
def test_only_the_owner_checks_the_evidence(client, tax_goal, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.post(url(tax_goal)).status_code == status
    assert not EvidenceBaseline.objects.exists()


def test_the_button_is_the_owners_only(client, approver, tax_goal):
    client.force_login(approver)
    page = client.get(f"/goals/{tax_goal.pk}/").text
    assert "Evidence baseline" in page and "Check evidence</button>" not in page


def test_a_goal_with_only_manual_checks_has_nothing_to_run(client, owner, git_repo):
    goal = make_goal(owner, git_repo, evidence=[{"kind": "manual", "description": "Looks right", "command": ""}])
    client.force_login(owner)
    response = client.post(url(goal), follow=True)
    assert "no command checks to run" in response.text
    assert not goal.baselines.exists()


def test_output_from_the_repository_is_escaped_on_the_page(client, owner, tax_goal):
    tax_goal.evidence = [{"kind": "command", "command": "echo '<script>alert(1)</script>'; exit 1", "expect_exit": 0}]
    tax_goal.save()
    loop.take_baseline(loop.request_baseline(tax_goal, owner).pk)
    client.force_login(owner)
    page = client.get(f"/goals/{tax_goal.pk}/").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page


def test_start_refuses_a_goal_whose_command_does_not_resolve_and_keeps_it_editable(client, owner, tax_goal):
    tax_goal.evidence = [{"kind": "command", "command": "run the tax tests", "expect_exit": 0}]
    tax_goal.save()
    loop.take_baseline(loop.request_baseline(tax_goal, owner).pk)
    client.force_login(owner)
    response = client.post(f"/goals/{tax_goal.pk}/start/", follow=True)
    tax_goal.refresh_from_db()
    assert tax_goal.status == GoalStatus.READY
    assert "Not started: `run` is not a command here: no executable named run in the sandbox" in response.text
    assert client.get(f"/goals/{tax_goal.pk}/edit/").status_code == 200
    assert tax_goal.evidence[0]["command"] == "run the tax tests"  # nothing lost


def test_the_done_review_page_shows_before_and_after(client, owner, tax_goal):
    fixed = "def tax(amount):\n    return round(amount * 0.2, 2)\n"
    tax_goal.agent_script = [{"summary": "Round to cents", "write": {"tax.py": fixed}, "done": True}]
    tax_goal.status = GoalStatus.RUNNING
    tax_goal.save()
    request = step_once(tax_goal).request
    assert request.kind == RequestKind.DONE
    client.force_login(owner)
    page = client.get(f"/approvals/{request.pk}/").text
    assert "Before: 1 failing; after: all 2 pass" in page
    assert "Fixed since the baseline: <code>tests/test_tax.py::test_tax_rounding</code>" in page


def test_a_done_review_without_a_baseline_says_so(client, owner, tax_goal):
    request = ApprovalRequest.open(tax_goal, RequestKind.DONE, summary="done")
    client.force_login(owner)
    assert "No baseline was taken before the work began" in client.get(f"/approvals/{request.pk}/").text

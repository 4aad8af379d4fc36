""" "Check evidence now" on the ticket form shows the baseline in place, before Start: the goal page's #baseline
panel, swapped by htmx and polling while it runs; without JavaScript the post comes back to the form with the
panel rendered."""

import sys

import pytest

from goals.models import BaselineStatus, EvidenceBaseline, GoalStatus
from tests.factories import HTMX, make_git_repo, make_scripted_goal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

EXPORT_PY = "def export_rows(invoices):\n    return [(i['number'], i['total']) for i in invoices]\n"
EXPORT_TEST = (
    "from export import export_rows\n\n\n"
    "def test_export_keeps_three_columns():\n    assert len(export_rows([{'number': 1, 'total': 2}])[0]) == 3\n"
)
CHECKS = [
    {"kind": "command", "command": f"{sys.executable} -m pytest -q -p no:cacheprovider tests", "expect_exit": 0},
    {"kind": "command", "command": "test -f export.py", "expect_exit": 0},
    {"kind": "manual", "command": "", "expect_exit": 0, "description": "The CSV opens in a spreadsheet"},
]


@pytest.fixture
def export_goal(owner, approver, tmp_path):
    repo = make_git_repo(
        tmp_path / "export", {"export.py": EXPORT_PY, "tests/test_export.py": EXPORT_TEST, "conftest.py": ""}
    )
    goal = make_scripted_goal(owner, repo, [], evidence=CHECKS, status=GoalStatus.READY)
    goal.approvers.add(approver)
    return goal


def edit(goal) -> str:
    return f"/goals/{goal.pk}/edit/"


def check(goal) -> str:
    return f"/goals/{goal.pk}/check-evidence/?from=form"


def test_the_form_holds_the_baseline_panel_and_its_button(as_owner, export_goal):
    page = as_owner.get(edit(export_goal)).text
    assert 'id="baseline"' in page and "No baseline yet" in page
    # The panel sits inside the ticket form: its button posts the separate form, never a nested one.
    assert f'<form id="check-evidence-form" method="post" action="{check(export_goal)}" hidden>' in page
    assert 'form="check-evidence-form"' in page and f'hx-post="{check(export_goal)}"' in page
    assert ">Check evidence now</button>" in page
    inside = page.split('id="goal-form"', 1)[1].split("</form>", 1)[0]
    assert 'id="baseline"' in inside and "<form" not in inside


def test_without_javascript_the_post_comes_back_to_the_form_with_the_baseline(
    as_owner, export_goal, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_owner.post(check(export_goal))
    assert response.status_code == 302 and response["Location"] == f"{edit(export_goal)}#baseline"
    baseline = export_goal.baselines.get()
    assert baseline.status == BaselineStatus.DONE
    page = as_owner.get(response["Location"]).text
    headline = "1 of 2 failing — tests/test_export.py::test_export_keeps_three_columns"
    assert headline in page and "Edit goal" in page
    assert page.index('id="baseline"') < page.index('name="mark_ready"')  # before the form's own buttons


def test_the_htmx_post_answers_the_form_panel_which_polls_from_the_form(as_owner, export_goal):
    response = as_owner.post(check(export_goal), **HTMX)  # no worker: the baseline stays queued
    assert response.status_code == 200 and "<html" not in response.text
    assert f'hx-get="{check(export_goal)}"' in response.text and 'hx-trigger="every 2s"' in response.text
    assert "disabled>Checking…</button>" in response.text and "<form" not in response.text
    polled = as_owner.get(check(export_goal), **HTMX).text
    assert 'form="check-evidence-form"' in polled and "<form" not in polled


def test_the_goal_page_keeps_its_own_form(as_owner, export_goal):
    response = as_owner.post(f"/goals/{export_goal.pk}/check-evidence/", **HTMX)
    assert '<form method="post"' in response.text and "from=form" not in response.text
    assert as_owner.post(f"/goals/{export_goal.pk}/check-evidence/")["Location"] == f"/goals/{export_goal.pk}/"


def test_nothing_to_run_says_so_on_the_form(as_owner, export_goal):
    export_goal.evidence = [CHECKS[2]]
    export_goal.save(update_fields=["evidence"])
    response = as_owner.post(check(export_goal), follow=True)
    assert "no command checks to run" in response.text and "Edit goal" in response.text
    assert not EvidenceBaseline.objects.exists()


@pytest.mark.parametrize(("who", "status"), [("approver", 403), ("outsider", 404)])
def test_only_the_owner_checks_from_the_form(client, export_goal, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.post(check(export_goal)).status_code == status
    assert not EvidenceBaseline.objects.exists()

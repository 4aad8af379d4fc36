"""The approval page's first screen: the ask, the failing checks with their real message, the gates' reasons and
the decision, in that order; per kind, the plan and the done review."""

import re

import pytest

from approvals.models import Verdict
from goals.models import Step
from tests.factories import HTMX, commit_diff, finding, make_step, open_request, run_record

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("worktrees_in_tmp")]

NOT_FOUND = run_record(
    passed=False, name="unit tests", summary="exit 127 (expected 0)", output="sh: 1: pytset: not found\n"
)
ASSERTION = run_record(passed=False, name="invoice tests", summary="exit 1 (expected 0)",
                       output="E   AssertionError: 3 != 4\n")  # fmt: skip
HIGH_RISK = finding(reason="High-risk goal: every step is reviewed", gate="risk")


@pytest.fixture
def failing_step_request(goal, git_repo):
    diff = commit_diff(git_repo, {"api/orders.py": "X = 1\n", "api/tests/test_orders.py": "def test_x():\n    pass\n"})
    findings = [HIGH_RISK, finding(reason="Tests weakened in api/tests/test_orders.py: assertion removed")]
    step = make_step(goal, 3, diff, evidence=[NOT_FOUND, ASSERTION, run_record(name="ruff", summary="exit 0")],
                     findings=findings)  # fmt: skip
    return open_request(goal, step=step, findings=findings)


def page(client, approval) -> str:
    response = client.get(f"/approvals/{approval.pk}/")
    assert response.status_code == 200
    return response.text


def test_the_ask_the_failing_checks_the_reasons_then_the_decision(as_owner, failing_step_request):
    html = page(as_owner, failing_step_request)

    ask = "Approve step 3: 2 files in api/ — 2 checks failing, tests weakened"
    assert f'<h1 class="ask">{ask}</h1>' in html
    assert '<h2 id="failing-h">2 checks failing <a class="output-link" href="#evidence-h">output ↓</a></h2>' in html
    assert '✗ unit tests</strong> <code class="check-message">sh: 1: pytset: not found</code>' in html
    assert '✗ invoice tests</strong> <code class="check-message">E AssertionError: 3 != 4</code>' in html
    assert "N != N" not in html
    order = [html.index(mark) for mark in ('class="ask"', 'id="failing-h"', 'id="findings-h"', 'id="decision"')]
    assert order == sorted(order)
    # The risk line is a note after what is wrong, not the news above it.
    assert html.index("Tests weakened in api/tests/test_orders.py") < html.index(
        "High-risk goal: every step is reviewed"
    )
    assert '<li class="gate-note muted"><span class="gate-reason">High-risk goal' in html


def test_when_a_check_fails_reject_is_the_primary_action(as_owner, failing_step_request):
    html = page(as_owner, failing_step_request)
    decision = html[html.index('id="decision"') :]
    assert (
        '<button type="submit" name="verdict" value="reject" class="button danger primary">Reject</button>' in decision
    )
    approve = re.search(
        r'<button type="submit" name="verdict" value="approve" class="([^"]*)">([^<]*)</button>', decision
    )
    assert approve.groups() == ("button", "Approve anyway")
    assert decision.index('value="reject"') < decision.index('value="approve"')


def test_the_decision_partial_for_htmx_keeps_reject_primary(as_owner, failing_step_request):
    response = as_owner.get(f"/approvals/{failing_step_request.pk}/", **HTMX)
    assert 'value="reject" class="button danger primary"' in response.text
    assert 'value="approve" class="button primary"' not in response.text


def test_with_every_check_passing_approve_is_primary(as_owner, goal):
    approval = open_request(goal, step=make_step(goal, 1), findings=[finding()])
    html = page(as_owner, approval)
    assert 'id="failing-h"' not in html
    assert '<button type="submit" name="verdict" value="approve" class="button primary">Approve</button>' in html


@pytest.mark.parametrize(("who", "status"), [("owner", 200), ("approver", 200), ("viewer", 200), ("outsider", 404)])
def test_who_sees_the_first_screen(client, failing_step_request, who, status, request):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/approvals/{failing_step_request.pk}/")
    assert response.status_code == status
    if status == 200:
        assert "sh: 1: pytset: not found" in response.text
        assert ('name="verdict"' in response.text) is (who != "viewer")


def test_the_inbox_card_names_its_failing_checks(as_owner, failing_step_request):
    html = as_owner.get("/").text
    card = re.search(rf'<article id="request-{failing_step_request.pk}".*?</article>', html, re.S).group(0)
    assert "<strong>unit tests</strong>: sh: 1: pytset: not found" in card
    assert "<strong>invoice tests</strong>: E AssertionError: 3 != 4" in card
    assert '✓</span><span class="visually-hidden">passed:</span> ruff' in card
    assert re.search(r'value="reject" class="button danger primary">Reject</button>\s*<button type="submit" name="verdict" '
                     r'value="approve" class="button">Approve anyway', card)  # fmt: skip


def test_a_plan_request_shows_the_agents_plan_above_the_decision(as_owner, goal):
    step = Step.objects.create(
        goal=goal, number=1, status="waiting", summary="Split the module", plan="1. Split\n2. Test"
    )
    approval = open_request(goal, kind="plan", step=step, plan=step.plan, findings=[finding(gate="blast_radius")])
    html = page(as_owner, approval)
    assert "Approve the plan for step 1 — many files" in html
    assert "1. Split<br>2. Test" in html
    assert html.index("The agent’s plan") < html.index('id="decision"')


def test_a_plan_request_without_a_plan_says_so_and_shows_what_the_agent_said(as_owner, goal):
    step = Step.objects.create(goal=goal, number=1, status="waiting", summary="Moved the CSV writer into shop/csv.py")
    approval = open_request(goal, kind="plan", step=step, findings=[finding(gate="blast_radius")])
    html = page(as_owner, approval)
    assert "The agent wrote no plan. What it said it did:" in html
    assert "Moved the CSV writer into shop/csv.py" in html


@pytest.fixture
def done_review(goal, git_repo, owner):
    diff = commit_diff(git_repo, {"shop/export.py": "def export():\n    return 'csv'\n"})
    first = make_step(goal, 1, diff, evidence=[run_record(passed=False, summary="pytest 3 passed, 1 failed")])
    Step.objects.filter(pk=first.pk).update(status="approved", commit_sha="a" * 40, summary="Add the CSV export")
    rejected = open_request(goal, step=first, findings=[finding()])
    rejected.decide(owner, Verdict.REJECT, comment="Keep the == 5 assertion")
    second = make_step(goal, 2, diff, evidence=[run_record(summary="pytest 4 passed")])
    Step.objects.filter(pk=second.pk).update(
        status="passed", commit_sha="b" * 40, summary="Fix the totals\nMigration note: none, the export adds no table."
    )
    return open_request(goal, kind="done", step=second, findings=[], summary="The agent says the goal is done.")


def test_a_done_review_shows_the_branch_commits_evidence_and_pull_request_description(as_owner, done_review, goal):
    html = page(as_owner, done_review)

    assert "Accept the goal as done after step 2" in html
    assert f"<code>goalpost/{goal.pk}</code> into <code>main</code>" in html
    assert "<code>aaaaaaaaaaaa</code> Step 1: Add the CSV export" in html
    assert "<code>bbbbbbbbbbbb</code> Step 2: Fix the totals Migration note" in html
    assert "No baseline was taken before the work began" in html  # the slot the goal's baseline fills (context key `baseline`)
    body = re.search(r'<pre class="pr-body">(.*?)</pre>', html, re.S).group(1)
    assert goal.objective.split("\n")[0][:40] in body.replace("&#x27;", "'")
    for heading in ("**Constraints**", "**Done when**", "## Steps", "## Evidence", "## Decisions", "## Migration note"):
        assert heading in body
    assert "1. Add the CSV export `aaaaaaaaaaaa`" in body
    assert "- ✓ pytest — pytest 4 passed" in body
    assert "owner: reject step 1 (step request) — “Keep the == 5 assertion”" in body
    assert "## Migration note\nnone, the export adds no table." in body
    # No forge on the repository: no button, the description alone.
    assert "Open pull request" not in html


def test_what_the_agent_wrote_cannot_forge_a_section_link_or_mention_in_the_description(as_owner, goal, git_repo):
    hostile = "## Decisions\n- owner: approve everything @everyone ![t](http://evil.example/t.png) <img src=x>"
    step = make_step(goal, 1, commit_diff(git_repo, {"shop/x.py": "X = 1\n"}))
    Step.objects.filter(pk=step.pk).update(status="passed", commit_sha="e" * 40, summary=hostile)
    approval = open_request(goal, kind="done", step=step, findings=[], summary="Migration note: <b>run</b> @admin")

    html = page(as_owner, approval)

    body = re.search(r'<pre class="pr-body">(.*?)</pre>', html, re.S).group(1)
    lines = body.splitlines()
    assert lines.count("## Decisions") == 1  # only ours
    assert (
        "1. \\#\\# Decisions - owner: approve everything @\u200beveryone \\!\\[t\\]\\(http://evil.example/t.png\\)"
        in body
    )
    assert "](http" not in body and "@everyone" not in body and "@admin" not in body
    assert "&lt;img" not in body.replace("\\&lt;img", "")  # every angle bracket the agent wrote is escaped
    assert "<img" not in html and "<b>run</b>" not in html

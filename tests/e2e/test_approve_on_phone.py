"""A person answers approval requests on a phone: one tap in the inbox, a review on the approval page."""

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, Decision, RequestStatus
from gateway import calls as gateway
from goals.models import GoalStatus
from tests.factories import commit_diff, finding, make_goal, make_step, open_request, run_record
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PRODUCT = "def invoice_total(lines, discount=0):\n    return sum(line['amount'] for line in lines) - discount\n"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def requests_waiting(owner, approver, git_repo):
    """Two pending requests: a small one to approve from the inbox, a six-file one to review and reject."""
    quick_goal = make_goal(owner, git_repo, title="Fix the README typo")
    quick = open_request(
        quick_goal,
        step=make_step(quick_goal, 1, commit_diff(git_repo, {"README.md": "# Shop\n"})),
        findings=[finding(reason="Tests changed without product code: README.md", gate="tests_without_code")],
    )
    review_goal = make_goal(owner, git_repo, approvers=[approver])
    files = {
        "shop/invoices.py": PRODUCT,
        "tests/test_invoices.py": "def test_total():\n    assert invoice_total([{'amount': 2}]) >= 0\n",
        **{f"shop/very/deeply/nested/package/with_a_rather_long_module_name_{n}.py": f"VALUE_{n} = {n}\n" for n in range(4)},
    }
    diff = commit_diff(git_repo, files)
    weakened = finding(
        reason="Tests weakened in tests/test_invoices.py: assertion weakened",
        path="tests/test_invoices.py",
        lines=["+    assert invoice_total([{'amount': 2}]) >= 0"],
    )
    evidence = [run_record(passed=False, summary="pytest 41 passed, 1 failed", output="E   assert 1 == 2\n" * 30)]
    step = make_step(review_goal, 2, diff, evidence=evidence, findings=[weakened])
    review = open_request(
        review_goal, step=step, findings=[weakened], summary="Step 2: 6 files, +7 −0. Tests weakened in tests/test_invoices.py"
    )
    return quick, review


def test_approve_in_the_inbox_and_reject_on_the_approval_page(live_url, phone, owner, requests_waiting, screenshots):
    quick, review = requests_waiting
    page = phone
    sign_in(page, live_url, "owner", "owner-pass-123")

    # The inbox: two cards, the count in the header, no sideways scrolling.
    expect(page.locator("article.request-card")).to_have_count(2)
    expect(page.locator("#inbox-count")).to_have_text("2")
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "inbox-phone.png", full_page=True)

    # One tap: the card leaves and the count drops, without a page load.
    card = page.locator(f"#request-{quick.pk}")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_have_count(0)
    expect(page.locator("#inbox-count")).to_have_text("1")
    expect(page.locator("#inbox-status")).to_contain_text("Approved: Fix the README typo.")
    assert ApprovalRequest.objects.get(pk=quick.pk).status == RequestStatus.APPROVED
    assert Decision.objects.get(request=quick).device.startswith("Chrome on ")  # from the User-Agent

    # The approval page: three files rendered, the rest load when opened.
    page.locator(f"#request-{review.pk} h2 a").click()
    page.wait_for_url(f"{live_url}/approvals/{review.pk}/")
    expect(page.locator("details.file[open] table.hunk")).to_have_count(4)  # the first three and the flagged test file
    expect(page.locator("tr.gate-hit")).to_have_count(1)
    lazy = page.locator("#file-4")
    expect(lazy.locator("table.hunk")).to_have_count(0)
    lazy.locator("summary").click()
    expect(lazy.locator("table.hunk")).to_have_count(1)
    expect(lazy.locator("td.code").first).to_contain_text("VALUE_")
    page.locator("#evidence-h").scroll_into_view_if_needed()
    page.locator("details.output summary").click()
    expect(page.locator("details.output pre")).to_be_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "approval-phone.png", full_page=True)
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=screenshots / "approval-phone-dark.png", full_page=True)
    page.emulate_media(color_scheme="light")

    # Reject with feedback: the decision area says so in place, and the header count reaches zero.
    page.fill("#decision-comment", "Keep the == 5 assertion and fix the code instead.")
    page.locator("section.decision").get_by_role("button", name="Reject").click()
    expect(page.locator("section.decision")).to_contain_text("Rejected: Dashboard under 1.5 s.")
    expect(page.locator("#request-status")).to_have_text("Rejected")
    expect(page.locator("#inbox-count")).to_have_text("0")
    decision = Decision.objects.get(request=review)
    assert (decision.verdict, decision.comment) == ("reject", "Keep the == 5 assertion and fix the code instead.")
    assert no_horizontal_scroll(page)

    page.goto(f"{live_url}/")
    expect(page.get_by_text("Nothing waits for you.")).to_be_visible()
    page.emulate_media(color_scheme="dark")
    page.screenshot(path=screenshots / "inbox-empty-phone-dark.png", full_page=True)


def test_a_high_risk_approve_takes_a_second_tap(live_url, phone, owner, git_repo, screenshots):
    goal = make_goal(owner, git_repo, work_type="auth_billing")
    approval = open_request(goal, summary="Step 1: rotate the billing key")
    page = phone
    sign_in(page, live_url, "owner", "owner-pass-123")
    card = page.locator(f"#request-{approval.pk}")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    card.get_by_role("link", name="Review to approve").click()
    page.wait_for_url(f"{live_url}/approvals/{approval.pk}/#decision")
    page.locator("section.decision").get_by_role("button", name="Approve…").click()
    confirm = page.locator("section.decision").get_by_role("button", name="Confirm approve")
    expect(confirm).to_be_visible()
    assert ApprovalRequest.objects.get(pk=approval.pk).is_pending
    page.screenshot(path=screenshots / "approval-confirm-phone.png")
    confirm.click()
    expect(page.locator("section.decision")).to_contain_text("Approved")
    assert ApprovalRequest.objects.get(pk=approval.pk).status == RequestStatus.APPROVED


def test_parallel_calls_of_an_agent_elsewhere_are_reviewed_one_by_one(live_url, phone, owner, git_repo, screenshots):
    goal = make_goal(owner, git_repo, status=GoalStatus.RUNNING, risk="high", rollback_note="revert")
    command = "npm run migrate -- --database=postgres://reporting.internal:5432/warehouse --yes --verbose"
    shell = gateway.propose(goal, gateway.ToolCall("Bash", {"command": command}, cwd=str(git_repo), agent="claude"))
    patch = "".join(
        f"diff --git a/shop/mod_{n}.py b/shop/mod_{n}.py\nnew file mode 100644\n--- /dev/null\n+++ b/shop/mod_{n}.py\n"
        f"@@ -0,0 +1 @@\n+VALUE_{n} = {n}\n"
        for n in range(5)
    )
    files = gateway.propose(goal, gateway.ToolCall("apply_patch", {"patch": patch}, cwd=str(git_repo), agent="codex"))
    page = phone
    sign_in(page, live_url, "owner", "owner-pass-123")
    expect(page.locator("article.request-card")).to_have_count(2)  # neither call superseded the other
    expect(page.locator(f"#request-{shell.request.pk} .agent-call code")).to_contain_text("npm run migrate")

    page.goto(f"{live_url}/approvals/{shell.request.pk}/")
    expect(page.locator("h1")).to_contain_text(f"Allow Claude Code to run Bash: {command}")
    expect(page.locator("pre.tool-command")).to_have_text(command)
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "approval-agent-command-phone.png", full_page=True)
    page.locator("section.decision").get_by_role("button", name="Reject").click()
    expect(page.locator("#request-status")).to_have_text("Rejected")

    page.goto(f"{live_url}/approvals/{files.request.pk}/")
    expect(page.locator("details.file[open] table.hunk")).to_have_count(3)
    lazy = page.locator("#file-4")
    lazy.locator("summary").click()
    expect(lazy.locator("td.code").first).to_contain_text("VALUE_4")
    assert ApprovalRequest.objects.get(pk=files.request.pk).is_pending

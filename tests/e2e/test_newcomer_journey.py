"""A newcomer's whole journey on a Pixel 7 (412×915), against daphne and a real celery worker on a Redis of the
test's own: write the seed's ticket (the invoice-export move) on the form with the demo's agent, check the
evidence and see the baseline, start, get a request, reject it with feedback, approve the reworked step, reach
the done review and read the pull request description, then Done."""

import re
import sys

import pytest
from playwright.sync_api import expect

from goals.management.commands.demo import SAMPLE_FILES, Command
from goals.models import AgentProfile, Goal, GoalStatus
from tests.factories import make_git_repo, make_user, password_for, registered_repository
from tests.support.browser import PIXEL_7, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_invoice_export.py"
UNITTEST = f"{sys.executable} -m unittest discover -s tests -t . -p test_invoices.py"
MANUAL = "The downloaded CSV opens with the same three columns"
FAILING_TEST = "tests/test_invoice_export.py::InvoiceExport::test_the_export_lives_in_billing"
FEEDBACK = "Also test that the view only calls the export"
STEP_WAIT_MS = 120_000  # a step on the worker: a checkout, the sandbox, the agent and the checks


@pytest.fixture
def pixel(browser):
    context = browser.new_context(**PIXEL_7)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def open_waiting_request(page, web: str, goal: Goal, step: int) -> None:
    """From the goal page (it polls while the goal runs), open the request of `step` once the worker opened it."""
    page.goto(f"{web}/goals/{goal.pk}/")
    link = page.get_by_role("link", name=f"Open the step request for step {step}")
    expect(link).to_be_visible(timeout=STEP_WAIT_MS)
    expect(page.locator("#status-sentence")).to_contain_text("Waiting for you")
    link.click()
    page.wait_for_url(re.compile(r"/approvals/\d+/$"))


def approve_high_risk(page) -> None:
    decision = page.locator("section.decision")
    decision.get_by_role("button", name="Approve…").click()
    decision.get_by_role("button", name="Confirm approve").click()


def test_a_newcomer_carries_the_seed_ticket_to_done(pixel, stack, tmp_path, screenshots):
    newcomer = make_user("newcomer")
    repository = registered_repository(make_git_repo(tmp_path / "shop", SAMPLE_FILES, "Sample shop"), users=[newcomer])
    AgentProfile.objects.all().delete()
    demo_agent = Command().demo_profile()  # the profile `manage.py demo` sets up, with its script
    demo_agent.users.add(newcomer)
    stack.worker("journey")
    web = stack.daphne()
    page = pixel
    sign_in(page, web, "newcomer", password_for("newcomer"))

    # 1. The ticket: the form's own examples, the agent already chosen, one that can run here.
    page.goto(f"{web}/goals/new/")
    expect(page.locator("#id_agent_profile")).to_have_value(str(demo_agent.pk))
    expect(page.locator("#id_repository")).to_have_value(str(repository.pk))
    page.fill("#id_title", "Move the invoice export to billing/export.py")
    page.fill("#id_objective", "Move the invoice export from views.py to billing/export.py")
    page.fill(
        "#id_done_criteria",
        "billing/export.py holds the export, views.py only calls it, and tests/test_invoice_export.py passes.",
    )
    page.locator('input[name="constraints"]').first.fill("Do not change the invoice CSV columns")
    page.get_by_role("button", name="+ Add constraint").click()
    page.locator('input[name="constraints"]').nth(1).fill("Keep the /invoices/export/ URL working")
    rows = page.locator("#rows-evidence li")
    rows.nth(0).locator('input[name="evidence_text"]').fill(PYTEST)
    for index, text in ((1, UNITTEST), (2, MANUAL)):
        page.get_by_role("button", name="+ Add check").click()
        expect(rows).to_have_count(index + 1)
        if text == MANUAL:
            rows.nth(index).locator("select").select_option("manual")
        rows.nth(index).locator('input[name="evidence_text"]').fill(text)
    page.select_option("#id_work_type", "other")
    page.select_option("#id_risk", "high")
    page.fill("#id_rollback_note", "Revert the branch: the export move changes no data.")
    expect(page.locator(".checklist h2")).to_contain_text("Ready to run")
    assert no_horizontal_scroll(page)
    page.get_by_role("button", name="Save and mark ready").click()
    expect(page.locator("#status-sentence")).to_have_text("Ready: start it when you are")
    goal = Goal.objects.get(owner=newcomer)
    assert goal.agent_profile == demo_agent and goal.risk == "high"

    # 2. Check the evidence on the form: the baseline shows in place, before Start.
    page.get_by_role("link", name="Edit").click()
    page.wait_for_url(f"{web}/goals/{goal.pk}/edit/")
    baseline = page.locator("#baseline")
    expect(baseline).to_contain_text("No baseline yet")
    baseline.get_by_role("button", name="Check evidence now").click()
    expect(baseline.locator(".baseline-headline")).to_contain_text(
        f"1 of 2 failing — {FAILING_TEST}", timeout=STEP_WAIT_MS
    )
    expect(baseline.get_by_text("✗ fails")).to_have_count(1)
    expect(baseline.get_by_text("✓ passes")).to_have_count(1)
    box = baseline.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 412, box  # a long test name wraps inside the panel
    assert page.url == f"{web}/goals/{goal.pk}/edit/"  # in place: still on the form, nothing typed lost
    expect(page.locator("#id_title")).to_have_value("Move the invoice export to billing/export.py")
    assert no_horizontal_scroll(page)
    baseline.screenshot(path=screenshots / "journey-baseline-on-the-form.png")

    # 3. Start, and the first request: every step of a high-risk goal is reviewed.
    page.get_by_role("link", name="Back to the goal").click()
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#status-sentence")).not_to_have_text("Ready: start it when you are")
    open_waiting_request(page, web, goal, step=1)
    expect(page.locator("h1")).to_have_text("Approve step 1: 3 files in 2 folders")
    expect(page.locator("main")).to_contain_text("Move the invoice export to billing/export.py")
    expect(page.locator("main")).to_contain_text("High-risk goal: every step is reviewed")
    for path in ("billing/__init__.py", "billing/export.py", "views.py"):
        expect(page.locator(".file-path", has_text=path)).to_have_count(1)
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "journey-step-1.png")

    # 4. Reject with feedback: the agent tries again.
    page.fill("#decision-comment", FEEDBACK)
    page.locator("section.decision").get_by_role("button", name="Reject").click()
    expect(page.locator("ul.decisions")).to_contain_text(FEEDBACK)

    # 5. The reworked step, approved.
    open_waiting_request(page, web, goal, step=2)
    # The reply to the feedback: the same move, and the test asked for.
    expect(page.locator("h1")).to_contain_text("Approve step 2: 4 files")
    expect(page.locator(".file-path", has_text="tests/test_invoice_export.py")).to_have_count(1)
    approve_high_risk(page)

    # 6. The done review comes next: before and after, the branch, the pull request description.
    next_request = page.get_by_role("link", name="Next request")
    expect(next_request).to_be_visible()
    next_request.click()
    expect(page.locator("#before-after-h")).to_have_text("Evidence before and after")
    expect(page.locator(".done-review")).to_contain_text("1 of 2 failing")
    expect(page.locator(".manual-checks")).to_contain_text(f"manual: {MANUAL}")
    expect(page.locator("ol.commits li")).to_have_count(1)
    expect(page.locator("ol.commits")).to_contain_text("Step 2: Rework after your feedback")
    description = page.locator("pre.pr-body")
    expect(description).to_be_visible()
    for text in (
        "Move the invoice export from views.py to billing/export.py",
        "- Do not change the invoice CSV columns",
        "- Keep the /invoices/export/ URL working",
        "## Steps",
        "## Evidence",
        "## Decisions",
        FEEDBACK,
        "## Migration note",
    ):
        expect(description).to_contain_text(text)
    expect(page.locator("details.pr-description summary")).to_have_text(
        "Description: Move the invoice export to billing/export.py"
    )
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "journey-done-review.png", full_page=True)

    # 7. The final word: Done, and the branch pushed.
    approve_high_risk(page)
    page.goto(f"{web}/goals/{goal.pk}/")
    expect(page.locator("#status-sentence")).to_contain_text("Done")
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DONE
    assert not goal.steps.filter(status="failed").exists()

"""On a Pixel-sized phone (412×915): writing the invoice-export ticket with the agent picked from a list and a
command and a manual check, bad input that keeps everything typed, and "Next request" after a decision."""

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, RequestStatus
from goals.models import AgentProfile, Goal, GoalStatus
from tests.factories import make_goal, make_profile, make_user, registered_repository
from tests.support.browser import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIXEL = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2.625, "is_mobile": True, "has_touch": True}


@pytest.fixture
def pixel(browser):
    context = browser.new_context(**PIXEL)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_writing_the_invoice_export_ticket(live_url, pixel, git_repo, screenshots):
    writer = make_user("writer")
    repository = registered_repository(git_repo, users=[writer])
    AgentProfile.objects.all().delete()
    empty = make_profile("scripted", name="A scripted, empty")
    local = make_profile("openai", name="B local model", base_url="http://127.0.0.1:11434/v1", models=["qwen"])
    page = pixel
    sign_in(page, live_url, "writer", "writer-pass-123")
    page.goto(f"{live_url}/goals/new/")

    # The agent is a list, and the default is one that can run here.
    expect(page.locator("#id_agent_profile")).to_have_value(str(local.pk))
    expect(page.locator("#id_agent_profile option")).to_have_text(
        [
            "Choose an agent",
            "A scripted, empty (Scripted (replays patches))",
            "B local model (OpenAI-compatible endpoint)",
        ]
    )
    expect(page.locator("details.script-field textarea")).to_be_hidden()
    expect(page.get_by_text("Move the invoice export from views.py to billing/export.py").first).to_be_visible()

    page.fill("#id_title", "Move the invoice export")
    page.fill("#id_objective", "Move the invoice export from views.py to billing/export.py")
    page.fill("#id_done_criteria", "billing/export.py holds the export and tests/test_invoice_export.py passes")
    page.locator('input[name="constraints"]').first.fill("Do not change the invoice CSV columns")

    # Evidence: a command row, then a manual check, labelled as one and with no exit code.
    rows = page.locator("#rows-evidence li")
    rows.nth(0).locator('input[name="evidence_text"]').fill("pytest tests/test_invoice_export.py")
    page.get_by_role("button", name="+ Add check").click()
    expect(rows).to_have_count(2)
    rows.nth(1).locator("select").select_option("manual")
    expect(rows.nth(1).locator(".exit")).to_be_hidden()
    expect(rows.nth(1).get_by_text("A person checks this at review; it is never run.")).to_be_visible()
    expect(rows.nth(0).locator(".exit")).to_be_visible()
    rows.nth(1).locator('input[name="evidence_text"]').fill("The downloaded CSV keeps its three columns")
    page.select_option("#id_work_type", "other")
    page.select_option("#id_repository", str(repository.pk))
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "ticket-form-pixel.png", full_page=True)

    # Bad input: an agent with nothing to replay. The error sits by the field; nothing typed is lost.
    page.select_option("#id_agent_profile", str(empty.pk))
    page.get_by_role("button", name="Save and mark ready").click()
    expect(page.locator("#form-errors")).to_contain_text("Nothing was saved")
    expect(page.locator("#id_agent_profile-error")).to_contain_text("has no script to replay")
    expect(page.locator("#id_title")).to_have_value("Move the invoice export")
    expect(rows).to_have_count(2)
    expect(rows.nth(1).locator("select")).to_have_value("manual")
    expect(rows.nth(1).locator('input[name="evidence_text"]')).to_have_value(
        "The downloaded CSV keeps its three columns"
    )
    expect(rows.nth(1).locator(".exit")).to_be_hidden()
    assert not Goal.objects.exists()
    assert no_horizontal_scroll(page)

    page.select_option("#id_agent_profile", str(local.pk))
    page.get_by_role("button", name="Save and mark ready").click()
    expect(page.locator("#status-sentence")).to_have_text("Ready: start it when you are")
    expect(page.get_by_text("manual: The downloaded CSV keeps its three columns")).to_be_visible()
    goal = Goal.objects.get()
    assert goal.status == GoalStatus.READY and goal.agent_profile == local
    assert [check["kind"] for check in goal.evidence] == ["command", "manual"]
    assert no_horizontal_scroll(page)


def test_next_request_after_a_decision(live_url, pixel, owner, git_repo, screenshots):
    first_goal = make_goal(owner, git_repo, title="Move the invoice export", status=GoalStatus.WAITING)
    second_goal = make_goal(owner, git_repo, title="Document the CSV export", status=GoalStatus.WAITING)
    first = ApprovalRequest.open(first_goal, "plan", summary="Seven files at once", step_number=1)
    second = ApprovalRequest.open(second_goal, "step", summary="A docs page", step_number=2)
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")
    expect(page.locator("#inbox-count")).to_have_text("2")

    # The goal page links to its request; the badge stays the person's total there.
    page.goto(f"{live_url}/goals/{first_goal.pk}/")
    expect(page.locator("#status-sentence")).to_have_text("Waiting for you: plan for step 1")
    expect(page.locator("#inbox-count")).to_have_text("2")
    page.get_by_role("link", name="Open the plan request for step 1").click()
    page.wait_for_url(f"{live_url}/approvals/{first.pk}/")

    page.fill("#decision-comment", "One module at a time")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("#inbox-count")).to_have_text("1")
    next_link = page.get_by_role("link", name="Next request")
    expect(next_link).to_be_visible()
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "next-request-pixel.png", full_page=True)
    next_link.click()
    page.wait_for_url(f"{live_url}/approvals/{second.pk}/")

    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_text("The inbox is empty: nothing else waits for you.")).to_be_visible()
    expect(page.locator("#inbox-count")).to_have_text("0")
    assert ApprovalRequest.objects.get(pk=first.pk).status == RequestStatus.REJECTED
    assert ApprovalRequest.objects.get(pk=second.pk).status == RequestStatus.APPROVED

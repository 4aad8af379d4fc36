"""Offline, a phone cannot decide: the decision buttons are disabled and the page says why, what was typed stays,
and the buttons come back with the connection."""

import pytest
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, RequestStatus
from tests.factories import commit_diff, make_goal, make_step, open_request
from tests.support.browser import PIXEL_7, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OFFLINE_MESSAGE = "You’re offline — decisions will be possible when you’re back online"


@pytest.fixture
def waiting(owner, git_repo):
    goal = make_goal(owner, git_repo, title="Invoice totals take a discount")
    step = make_step(goal, 1, commit_diff(git_repo, {"shop.py": "def total(lines, discount=0):\n    return 0\n"}))
    return open_request(goal, step=step)


@pytest.fixture
def pixel(browser):
    context = browser.new_context(**PIXEL_7)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_offline_the_decision_buttons_are_disabled_and_come_back_online(live_url, pixel, waiting, screenshots):
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")

    # The inbox's one-tap buttons.
    card = page.locator(f"#request-{waiting.pk}")
    expect(card.get_by_role("button", name="Approve")).to_be_enabled()
    page.context.set_offline(True)
    try:
        expect(page.locator("#offline-banner")).to_be_visible()
        expect(page.locator("#offline-banner")).to_have_text(OFFLINE_MESSAGE + ".")
        for name in ("Approve", "Reject"):
            expect(card.get_by_role("button", name=name)).to_be_disabled()
    finally:
        page.context.set_offline(False)
    expect(page.locator("#offline-banner")).to_be_hidden()
    expect(card.get_by_role("button", name="Approve")).to_be_enabled()

    # The approval page: every decision button, while what was typed stays.
    page.goto(f"{live_url}/approvals/{waiting.pk}/")
    decision = page.locator(".decision")
    page.fill("#decision-comment", "Keep the exact totals test")
    page.context.set_offline(True)
    try:
        for name in ("Approve", "Reject", "Stop the goal"):
            expect(decision.get_by_role("button", name=name)).to_be_disabled()
        expect(page.locator("#offline-banner")).to_be_in_viewport()  # sticky: seen beside the buttons
        decision.get_by_role("button", name="Reject").click(force=True)  # a tap on a disabled button sends nothing
        page.screenshot(path=screenshots / "decision-offline-pixel7.png")
    finally:
        page.context.set_offline(False)
    for name in ("Approve", "Reject", "Stop the goal"):
        expect(decision.get_by_role("button", name=name)).to_be_enabled()
    expect(page.locator("#decision-comment")).to_have_value("Keep the exact totals test")
    assert ApprovalRequest.objects.get(pk=waiting.pk).status == RequestStatus.PENDING

    decision.get_by_role("button", name="Reject").click()
    expect(page.locator(".decision .outcome")).to_contain_text("Rejected")
    expect(page.locator(".decisions")).to_contain_text("Keep the exact totals test")
    assert ApprovalRequest.objects.get(pk=waiting.pk).status == RequestStatus.REJECTED

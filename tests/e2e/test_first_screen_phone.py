"""What a Pixel 7 (412×915) shows of a request before any scrolling: the ask, the failing checks, the gates'
reasons, the decision; the plan of a plan request; the done review's pull request."""

import pytest
from playwright.sync_api import expect

from goals.models import Goal, GoalStatus, Step
from tests.factories import commit_diff, finding, make_goal, make_step, open_request, run_record
from tests.support.browser import sign_in
from tests.support.fakes.forge import FakeForge

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PIXEL_7 = {
    "viewport": {"width": 412, "height": 915},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
}
FOLD = 915


@pytest.fixture
def pixel(browser):
    context = browser.new_context(**PIXEL_7)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def above_the_fold(page, selector: str) -> None:
    """The element is on the first screen, whole: its box ends above 915 px, with the page not scrolled."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert box["y"] >= 0 and box["y"] + box["height"] < FOLD, f"{selector} ends at {box['y'] + box['height']:.0f} px"


def test_a_step_with_failing_checks(live_url, pixel, owner, git_repo, screenshots):
    goal = make_goal(owner, git_repo, risk="high", rollback_note="git revert the branch")
    files = {f"api/handlers/orders_{n}.py": f"VALUE = {n}\n" for n in range(3)}
    files["api/tests/test_orders.py"] = "def test_total():\n    assert total() >= 0\n"
    evidence = [
        run_record(
            passed=False, name="unit tests", summary="exit 127 (expected 0)", output="sh: 1: pytset: not found\n"
        ),
        run_record(
            passed=False,
            name="invoice tests",
            summary="pytest 40 passed, 1 failed",
            output="E   AssertionError: 3 != 4\n" * 40 + "1 failed, 40 passed in 2.0s\n",
        ),  # fmt: skip
        run_record(passed=False, name="lint", summary="exit 1 (expected 0)", output="api/x.py:3:1: F401 unused\n"),
    ]
    findings = [
        finding(reason="High-risk goal: every step is reviewed", gate="risk"),
        finding(
            reason="Tests weakened in api/tests/test_orders.py: assertion weakened", path="api/tests/test_orders.py"
        ),
    ]
    step = make_step(goal, 3, commit_diff(git_repo, files), evidence=evidence, findings=findings)
    approval = open_request(goal, step=step, findings=findings)
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")

    card = page.locator(f"#request-{approval.pk}")
    expect(card.locator(".card-failing li")).to_have_count(3)
    expect(card.locator(".card-failing")).to_contain_text("unit tests: sh: 1: pytset: not found")

    page.goto(f"{live_url}/approvals/{approval.pk}/")
    expect(page.locator("h1")).to_have_text("Approve step 3: 4 files in api/ — 3 checks failing, tests weakened")
    expect(page.locator(".failing-list")).to_contain_text("E AssertionError: 3 != 4")
    expect(page.locator(".failing-list")).not_to_contain_text("N != N")
    page.screenshot(path=screenshots / "first-screen-failing-step.png")
    for selector in ("h1.ask", "#failing-h", ".failing-list > li:nth-child(3)", "#findings-h",
                     ".gate-list li:first-child", "section.decision button[value=reject]"):  # fmt: skip
        above_the_fold(page, selector)
    reject = page.locator("section.decision button[value=reject]")
    approve = page.locator("section.decision button[value=approve]")
    expect(reject).to_have_class("button danger primary")
    expect(approve).to_have_text("Approve anyway…")
    expect(approve).not_to_have_class("button primary")
    # The risk note sits below what is wrong.
    risk = page.get_by_text("High-risk goal: every step is reviewed")
    assert risk.bounding_box()["y"] > page.locator("#failing-h").bounding_box()["y"]
    assert risk.bounding_box()["y"] > page.get_by_text("Tests weakened in api/tests").bounding_box()["y"]


def test_a_plan_request_shows_the_plan(live_url, pixel, owner, git_repo, screenshots):
    goal = make_goal(owner, git_repo)
    plan = "1. Move the CSV writer to shop/csv.py\n2. Add the export view\n3. Test the totals with real numbers"
    step = Step.objects.create(goal=goal, number=1, status="waiting", summary="Planned the export", plan=plan)
    approval = open_request(
        goal, kind="plan", step=step, plan=plan,
        findings=[finding(reason="7 files in one step (limit 5): ask for a plan", gate="blast_radius")],
    )  # fmt: skip
    page = pixel
    sign_in(page, live_url, "owner", "owner-pass-123")
    page.goto(f"{live_url}/approvals/{approval.pk}/")
    expect(page.locator("h1")).to_have_text("Approve the plan for step 1 — many files")
    page.screenshot(path=screenshots / "first-screen-plan.png")
    for selector in ("h1.ask", "#plan-h", ".plan-text", "#findings-h", "section.decision button[value=approve]"):
        above_the_fold(page, selector)
    expect(page.locator(".plan-text")).to_contain_text("3. Test the totals with real numbers")


def test_a_done_review_opens_its_pull_request(live_url, pixel, owner, git_repo, screenshots):
    forge = FakeForge("gitea").start()
    try:
        goal = make_goal(owner, git_repo)
        repository = goal.repository
        repository.forge, repository.forge_url, repository.forge_project = "gitea", forge.api_url, forge.project
        repository.forge_token = forge.token
        repository.save()
        step = make_step(goal, 2, commit_diff(git_repo, {"shop/export.py": "X = 1\n"}),
                         evidence=[run_record(summary="pytest 4 passed")])  # fmt: skip
        Step.objects.filter(pk=step.pk).update(status="passed", commit_sha="d" * 40, summary="Add the CSV export")
        approval = open_request(goal, kind="done", step=step, findings=[], summary="The agent says the goal is done.")
        Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.DONE)
        page = pixel
        sign_in(page, live_url, "owner", "owner-pass-123")
        page.goto(f"{live_url}/approvals/{approval.pk}/")
        expect(page.locator("h1")).to_have_text("Accept the goal as done after step 2")
        for selector in ("h1.ask", "section.decision"):
            above_the_fold(page, selector)
        expect(page.locator(".pr-body")).to_contain_text("## Migration note")
        expect(page.locator("#branch-h")).to_be_visible()
        page.get_by_role("button", name="Open pull request on Gitea").click()
        link = page.get_by_role("link", name="View pull request #1")
        expect(link).to_be_visible()
        assert link.get_attribute("href") == f"{forge.web_root}/shop/invoices/pulls/1"
        assert forge.pulls[0]["head"] == f"goalpost/{goal.pk}"
        assert forge.token not in page.content()
        page.locator("#pull-request").scroll_into_view_if_needed()
        page.screenshot(path=screenshots / "done-review-pull-request.png")
    finally:
        forge.stop()

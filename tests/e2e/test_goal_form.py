import pytest
from playwright.sync_api import expect

from goals.models import Goal, GoalStatus
from tests.factories import GOOD_OBJECTIVE, make_goal, make_user, registered_repository, scripted_profile
from tests.support.browser import PHONE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def writer(db):
    return make_user("writer")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_writing_a_goal_on_a_phone(live_url, phone, writer, git_repo, screenshots):
    repository, profile = registered_repository(git_repo, users=[writer]), scripted_profile()
    page = phone
    sign_in(page, live_url, "writer", "writer-pass-123")
    expect(page.get_by_text("No goals yet")).to_be_visible()
    page.get_by_role("link", name="Write a goal").click()
    page.wait_for_url(f"{live_url}/goals/new/")
    assert no_horizontal_scroll(page)

    checklist = page.locator("#lint-live")
    page.fill("#id_title", "Faster dashboard")
    page.fill("#id_objective", "Improve the dashboard.")
    expect(checklist.locator('[data-rule="objective_no_target"]')).to_contain_text("meeting, not a goal")
    expect(checklist.locator('[data-rule="constraints_missing"]')).to_be_visible()

    page.fill("#id_objective", GOOD_OBJECTIVE)
    expect(checklist.locator('[data-rule="objective_no_target"]')).to_have_count(0)

    # Rows: add two constraints with HTMX (no page load), remove one.
    page.locator('input[name="constraints"]').first.fill("Do not change the visible table behavior")
    page.get_by_role("button", name="+ Add constraint").click()
    expect(page.locator('input[name="constraints"]')).to_have_count(2)
    page.locator('input[name="constraints"]').nth(1).fill("Typo row")
    page.get_by_role("button", name="+ Add constraint").click()
    expect(page.locator('input[name="constraints"]')).to_have_count(3)
    page.locator('input[name="constraints"]').nth(2).fill("Do not remove any current filters")
    page.locator("#rows-constraints li").nth(1).get_by_role("button", name="Remove this row").click()
    expect(page.locator('input[name="constraints"]')).to_have_count(2)

    page.locator('input[name="evidence_text"]').first.fill("pytest tests/test_dashboard.py")
    page.fill("#id_done_criteria", "Under 1.5 s three runs in a row")
    page.select_option("#id_work_type", "ui_refactor")
    expect(checklist).to_contain_text("Ready to run")

    page.select_option("#id_repository", str(repository.pk))
    page.select_option("#id_agent_profile", str(profile.pk))
    page.fill("#id_base_branch", "release")
    page.screenshot(path=screenshots / "goal-form-phone.png", full_page=True)
    page.get_by_role("button", name="Save and mark ready").click()

    # Bad input: the error sits next to the field and everything typed is still there.
    expect(page.locator("#form-errors")).to_contain_text("Nothing was saved")
    expect(page.locator("#id_base_branch-error")).to_contain_text("no branch “release”")
    expect(page.locator("#id_title")).to_have_value("Faster dashboard")
    expect(page.locator('input[name="constraints"]')).to_have_count(2)
    expect(page.locator('input[name="constraints"]').nth(1)).to_have_value("Do not remove any current filters")
    assert not Goal.objects.exists()

    page.fill("#id_base_branch", "main")
    page.get_by_role("button", name="Save and mark ready").click()
    expect(page.locator("#status-sentence")).to_have_text("Ready: start it when you are")
    goal = Goal.objects.get()
    assert goal.status == GoalStatus.READY
    assert goal.constraints == ["Do not change the visible table behavior", "Do not remove any current filters"]
    assert goal.owner == writer
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "goal-detail-phone.png", full_page=True)


def test_touch_targets_are_at_least_44px(live_url, phone, writer):
    page = phone
    sign_in(page, live_url, "writer", "writer-pass-123")
    page.goto(f"{live_url}/goals/new/")
    small = page.evaluate(
        """() => [...document.querySelectorAll('button, a.button, input[type=text], select, textarea')]
              .filter(el => el.offsetParent !== null)
              .map(el => [el.name || el.textContent.trim(), el.getBoundingClientRect().height])
              .filter(([, h]) => h < 44)"""
    )
    assert small == []


def test_the_form_works_without_javascript(browser, live_url, writer, git_repo):
    repository, profile = registered_repository(git_repo, users=[writer]), scripted_profile()

    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, live_url, "writer", "writer-pass-123")
        page.goto(f"{live_url}/goals/new/")
        page.fill("#id_title", "No JS goal")
        page.locator('input[name="constraints"]').first.fill("Keep the CSV columns")
        page.get_by_role("button", name="+ Add constraint").click()
        expect(page.locator('input[name="constraints"]')).to_have_count(2)
        expect(page.locator("#id_title")).to_have_value("No JS goal")
        page.locator('input[name="constraints"]').nth(1).fill("Keep the API")
        page.fill("#id_objective", "Remove the deprecated /api/v0 endpoints")
        page.locator('input[name="evidence_text"]').first.fill("pytest tests/test_api.py")
        page.select_option("#id_repository", str(repository.pk))
        page.select_option("#id_agent_profile", str(profile.pk))
        page.get_by_role("button", name="+ Add host").click()
        expect(page.locator('input[name="network_hosts"]')).to_have_count(2)
        page.locator('input[name="network_hosts"]').nth(1).fill("pypi.org:443")
        page.get_by_role("button", name="Save draft").click()
        expect(page.locator("h1")).to_have_text("No JS goal")
        goal = Goal.objects.get()
        assert goal.constraints == ["Keep the CSV columns", "Keep the API"]
        assert (goal.repository, goal.agent_profile, goal.network_hosts) == (repository, profile, ["pypi.org:443"])
    finally:
        context.close()


def test_the_paths_the_gates_know_fit_a_phone(live_url, browser, writer, git_repo, screenshots):
    goal = make_goal(writer, git_repo)
    long_pattern = "services/billing/generated/openapi/clients/typescript/**/*.generated.ts"
    goal.detected_paths = {
        "sha": "a" * 40,
        "rules": {
            "tests": {"patterns": ["/testing/", "/integration_tests/"], "sources": ["pyproject.toml", "package.json"]},
            "generated": {"patterns": [long_pattern], "sources": [".gitattributes"]},
        },
    }
    goal.save(update_fields=["detected_paths"])
    goal.repository.vendored_paths = "third_party/zlib/\nlib/extern/\n"
    goal.repository.save(update_fields=["vendored_paths"])
    context = browser.new_context(**{**PHONE, "viewport": {"width": 412, "height": 915}})
    page = context.new_page()
    try:
        sign_in(page, live_url, "writer", "writer-pass-123")
        page.goto(f"{live_url}/goals/{goal.pk}/")
        rules = page.locator(".path-rules")
        expect(rules).to_contain_text("Tests: testing/, integration_tests/ — from pyproject.toml and package.json")
        expect(rules).to_contain_text("Vendored: third_party/zlib/, lib/extern/ — set by staff")
        expect(rules).to_contain_text(f"Generated: {long_pattern} — from .gitattributes")
        rules.scroll_into_view_if_needed()
        page.screenshot(path=screenshots / "goal-path-rules-phone.png", full_page=True)
        assert no_horizontal_scroll(page)
    finally:
        context.close()

import pytest
from django.urls import reverse

from goals.models import Goal, GoalStatus
from tests.factories import HTMX, form_data

pytestmark = pytest.mark.django_db


def test_every_page_but_login_and_healthz_requires_login(client, goal):
    for url in ("/", "/goals/", "/goals/new/", f"/goals/{goal.pk}/", f"/goals/{goal.pk}/edit/"):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    assert client.get("/accounts/login/").status_code == 200


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("owner", 200, id="owner sees the goal"),
        pytest.param("approver", 200, id="approver sees the goal"),
        pytest.param("outsider", 404, id="outsider gets 404, never the goal"),
    ],
)
def test_goal_detail_per_user(client, goal, request, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.get(f"/goals/{goal.pk}/")
    assert response.status_code == status
    if status == 200:
        assert goal.title in response.text
        assert "Reduce the dashboard initial load time below 1.5s" in response.text
    else:
        assert goal.title not in response.text


def test_goal_page_says_which_paths_the_gates_know_and_where_each_came_from(as_owner, goal):
    response = as_owner.get(f"/goals/{goal.pk}/")
    assert "own config is read from <code>main</code> at the first step" in response.text
    goal.detected_paths = {
        "sha": "a" * 40,
        "rules": {
            "tests": {"patterns": ["/testing/", "/tests/"], "sources": ["pyproject.toml"]},
            "generated": {"patterns": ["api/gen/**"], "sources": [".gitattributes"]},
        },
    }
    goal.save(update_fields=["detected_paths"])
    goal.repository.vendored_paths = "lib/extern/\n"
    goal.repository.save(update_fields=["vendored_paths"])
    text = as_owner.get(f"/goals/{goal.pk}/").text
    assert "<li>Tests: testing/, tests/ — from pyproject.toml</li>" in text
    assert "<li>Generated: api/gen/** — from .gitattributes</li>" in text
    assert "<li>Vendored: lib/extern/ — set by staff</li>" in text
    assert "read from <code>main</code> at the first step" not in text
    partial = as_owner.get(f"/goals/{goal.pk}/", **HTMX).text
    assert "Tests: testing/" not in partial  # the live partial carries the status, not the contract


@pytest.mark.parametrize(
    ("who", "status"),
    [
        pytest.param("owner", 200, id="owner may edit"),
        pytest.param("approver", 403, id="approver may look but not edit"),
        pytest.param("outsider", 404, id="outsider gets 404"),
    ],
)
def test_goal_edit_per_user(client, goal, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(f"/goals/{goal.pk}/edit/").status_code == status
    post = client.post(f"/goals/{goal.pk}/edit/", form_data(goal.repository, title="Hijacked"))
    assert post.status_code == (302 if who == "owner" else status)
    goal.refresh_from_db()
    assert (goal.title == "Hijacked") == (who == "owner")


@pytest.mark.parametrize("who", ["owner", "approver", "outsider"])
def test_goal_list_shows_only_visible_goals(client, goal, request, who):
    client.force_login(request.getfixturevalue(who))
    response = client.get("/goals/")
    assert response.status_code == 200
    assert (goal.title in response.text) == (who != "outsider")


def test_goal_list_filters_by_status(as_owner, goal, owner):
    other = Goal.objects.create(
        owner=owner, title="Docs typo", objective="Remove the typo", repository=goal.repository,
        agent_profile=goal.agent_profile,
    )
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.READY)
    ready = as_owner.get("/goals/?status=ready")
    assert goal.title in ready.text and other.title not in ready.text
    unknown = as_owner.get("/goals/?status=nonsense")
    assert goal.title in unknown.text and other.title in unknown.text


def test_goal_list_partial_for_htmx(as_owner, goal):
    response = as_owner.get("/goals/?status=draft", **HTMX)
    assert response.status_code == 200
    assert 'id="goal-list"' in response.text
    assert "<html" not in response.text
    assert goal.title in response.text


def test_empty_goal_list_invites_a_first_goal(as_owner):
    response = as_owner.get("/goals/")
    assert "No goals yet" in response.text
    assert reverse("goals:create") in response.text


def test_creating_a_goal_saves_the_contract_and_records_an_event(as_owner, owner, repository):
    response = as_owner.post("/goals/new/", form_data(repository))
    goal = Goal.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/goals/{goal.pk}/"
    assert goal.owner == owner
    assert goal.status == GoalStatus.DRAFT
    assert goal.risk == "medium"
    assert goal.constraints == ["Do not change the visible table behavior", "Do not remove any current filters"]
    assert goal.evidence == [
        {"kind": "command", "command": "pytest tests/test_dashboard.py", "expect_exit": 0, "description": ""},
        {"kind": "manual", "command": "", "expect_exit": 0, "description": "The table looks the same"},
    ]
    assert goal.protected_paths == ["generated/**"]
    assert goal.events.filter(kind="created").exists()


def test_save_and_mark_ready_moves_a_clean_goal_to_ready(as_owner, repository):
    as_owner.post("/goals/new/", {**form_data(repository), "mark_ready": "1"})
    goal = Goal.objects.get()
    assert goal.status == GoalStatus.READY
    assert goal.events.filter(kind="status", data__status="ready").exists()


def test_save_and_mark_ready_keeps_a_vague_goal_in_draft(as_owner, repository):
    response = as_owner.post(
        "/goals/new/", {**form_data(repository, objective="Improve the dashboard."), "mark_ready": "1"}, follow=True
    )
    goal = Goal.objects.get()
    assert goal.status == GoalStatus.DRAFT
    assert "Saved as a draft" in response.text
    assert "meeting, not a goal" in response.text


def test_mark_ready_button(as_owner, goal):
    response = as_owner.post(f"/goals/{goal.pk}/ready/")
    assert response.status_code == 302
    goal.refresh_from_db()
    assert goal.status == GoalStatus.READY


def test_mark_ready_refuses_a_goal_with_blocking_findings(as_owner, goal):
    Goal.objects.filter(pk=goal.pk).update(constraints=[])
    response = as_owner.post(f"/goals/{goal.pk}/ready/", follow=True)
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DRAFT
    assert "Still a draft" in response.text


@pytest.mark.parametrize(("who", "status"), [("approver", 403), ("outsider", 404)])
def test_only_the_owner_marks_ready(client, goal, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.post(f"/goals/{goal.pk}/ready/").status_code == status
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DRAFT


def test_mark_ready_needs_post(as_owner, goal):
    assert as_owner.get(f"/goals/{goal.pk}/ready/").status_code == 405


def test_editing_a_ready_goal_into_a_vague_one_sends_it_back_to_draft(as_owner, goal):
    Goal.objects.filter(pk=goal.pk).update(status=GoalStatus.READY)
    as_owner.post(f"/goals/{goal.pk}/edit/", form_data(goal.repository, objective="Make onboarding better"))
    goal.refresh_from_db()
    assert goal.status == GoalStatus.DRAFT
    assert goal.events.filter(kind="status", data__status="draft").exists()


def test_lint_preview_full_page_is_not_a_thing_but_the_partial_is(as_owner, repository):
    response = as_owner.post("/goals/lint-preview/", {"objective": "Improve the dashboard."}, **HTMX)
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'data-rule="objective_no_target"' in response.text
    assert "meeting, not a goal" in response.text


def test_lint_preview_says_ready_for_a_good_contract(as_owner, repository):
    response = as_owner.post("/goals/lint-preview/", form_data(repository), **HTMX)
    assert "Ready to run" in response.text
    assert "Blocking" not in response.text


def test_lint_preview_catches_prose_typed_as_a_command(as_owner, repository):
    data = form_data(
        repository,
        evidence_kind=["command", "command"],
        evidence_text=["pytest tests/test_dashboard.py", "run the tests and check it works"],
        evidence_exit=["0", "0"],
    )

    response = as_owner.post("/goals/lint-preview/", data, **HTMX)

    assert 'data-rule="evidence_not_a_command"' in response.text
    assert "is prose, not a command" in response.text
    assert "mark it a manual check" in response.text
    assert "Ready to run" not in response.text


def test_lint_preview_never_fails_on_nonsense(as_owner):
    response = as_owner.post(
        "/goals/lint-preview/",
        {"budget_tokens": "lots", "work_type": "??", "risk": "extreme", "evidence_kind": ["command"], "evidence_exit": []},
        **HTMX,
    )
    assert response.status_code == 200
    assert 'data-rule="evidence_missing"' in response.text


def test_lint_preview_requires_login(client):
    response = client.post("/goals/lint-preview/", {"objective": "x"})
    assert response.status_code == 302


@pytest.mark.parametrize("field", ["constraints", "protected_paths", "evidence"])
def test_new_row_partial_for_htmx(as_owner, field):
    response = as_owner.get(f"/goals/rows/{field}/", **HTMX)
    assert response.status_code == 200
    assert response.text.strip().startswith("<li")
    expected_name = "evidence_text" if field == "evidence" else field
    assert f'name="{expected_name}"' in response.text


def test_new_row_for_an_unknown_list_is_404(as_owner):
    assert as_owner.get("/goals/rows/password/").status_code == 404


def test_form_full_page_renders_one_blank_row_per_list(as_owner):
    response = as_owner.get("/goals/new/")
    assert response.status_code == 200
    assert response.text.count('name="constraints"') == 1
    assert response.text.count('name="protected_paths"') == 1
    assert response.text.count('name="evidence_text"') == 1
    assert 'hx-post="/goals/lint-preview/"' in response.text


def test_add_row_without_javascript_keeps_what_was_typed_and_saves_nothing(as_owner, repository):
    data = {**form_data(repository, title="Half typed"), "add_row": "constraints"}
    response = as_owner.post("/goals/new/", data)
    assert response.status_code == 200
    assert not Goal.objects.exists()
    assert response.text.count('name="constraints"') == 3
    assert 'value="Half typed"' in response.text
    assert "Nothing was saved" not in response.text


def test_remove_row_without_javascript_drops_that_row(as_owner, repository):
    data = {**form_data(repository), "remove_row": "constraints:0"}
    response = as_owner.post("/goals/new/", data)
    assert response.text.count('name="constraints"') == 1
    assert "Do not remove any current filters" in response.text
    assert "Do not change the visible table behavior" not in response.text


def test_remove_evidence_row_without_javascript(as_owner, repository):
    response = as_owner.post("/goals/new/", {**form_data(repository), "remove_row": "evidence:1"})
    assert response.text.count('name="evidence_text"') == 1
    assert "pytest tests/test_dashboard.py" in response.text


def test_the_goal_page_says_which_isolation_is_in_effect(as_owner, goal):
    from goals import sandbox

    page = as_owner.get(f"/goals/{goal.pk}/").content.decode()
    if sandbox.sandbox_available():
        assert 'id="isolation">Sandbox: ' in page
        assert "no network" in page and "memory" in page and "CPU" in page
        if sandbox.identity().switched:
            assert f"uid {sandbox.identity().uid}, no capabilities" in page
    else:
        assert "No sandbox:" in page and sandbox.sandbox_reason() in page


def test_goal_detail_names_the_repository_the_agent_and_the_network_hosts(as_owner, goal):
    goal.network_hosts = ["pypi.org:443"]
    goal.save(update_fields=["network_hosts"])
    page = as_owner.get(f"/goals/{goal.pk}/").text
    assert goal.repository.name in page and goal.repository.source in page
    assert "Scripted" in page and "<code>pypi.org:443</code>" in page

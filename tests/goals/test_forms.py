import html

import pytest

from goals import lint
from goals.forms import GoalForm
from goals.models import Goal
from tests.factories import form_data

pytestmark = pytest.mark.django_db

LONG = "x" * 501


@pytest.fixture
def plain_dir(tmp_path):
    folder = tmp_path / "not-a-repo"
    folder.mkdir()
    return folder


BAD_INPUT = [
    pytest.param("title", "", "title", "This field is required", id="title missing"),
    pytest.param("title", "t" * 201, "title", "at most 200 characters", id="title too long"),
    pytest.param("objective", "", "objective", "This field is required", id="objective missing"),
    pytest.param("constraints", ["ok", LONG], "constraints", "Constraint 2 is 501 characters long", id="constraint too long"),
    pytest.param("constraints", ["c"] * 51, "constraints", "At most 50 constraints", id="too many constraints"),
    pytest.param("evidence_exit", ["abc", ""], "evidence", "Check 1: the expected exit code must be a whole number", id="exit code not a number"),
    pytest.param("evidence_exit", ["300", ""], "evidence", "from 0 to 255", id="exit code out of range"),
    pytest.param("evidence_kind", ["bogus", "manual"], "evidence", "Check 1: choose a command or a manual check", id="unknown check kind"),
    pytest.param("evidence_text", [LONG, "manual"], "evidence", "Check 1 is 501 characters long", id="check too long"),
    pytest.param("work_type", "bogus", "work_type", "Select a valid choice", id="unknown work type"),
    pytest.param("risk", "extreme", "risk", "Select a valid choice", id="unknown risk"),
    pytest.param("risk", "low", "risk", "UI refactor work is medium risk at least", id="risk below the work type"),
    pytest.param("budget_minutes", "-5", "budget_minutes", "greater than or equal to 0", id="negative minutes"),
    pytest.param("budget_steps", "many", "budget_steps", "Enter a whole number", id="steps not a number"),
    pytest.param("budget_tokens", "99999999999999", "budget_tokens", "less than or equal to", id="tokens too large"),
    pytest.param("budget_tokens", "9" * 5000, "budget_tokens", "Enter a whole number", id="a 5,000-digit budget"),
    pytest.param("budget_steps", "²", "budget_steps", "Enter a whole number", id="a superscript digit"),
    pytest.param("budget_files_per_step", "1.5", "budget_files_per_step", "Enter a whole number", id="files per step not whole"),
    pytest.param("budget_files_total", "-1", "budget_files_total", "greater than or equal to 0", id="negative files total"),
    pytest.param("budget_approvals", "x", "budget_approvals", "Enter a whole number", id="approvals not a number"),
    pytest.param("budget_retries", "-2", "budget_retries", "greater than or equal to 0", id="negative retries"),
    pytest.param("repeated_failure_threshold", "0", "repeated_failure_threshold", "At least 1", id="threshold zero"),
    pytest.param("repeated_failure_threshold", "", "repeated_failure_threshold", "This field is required", id="threshold missing"),
    pytest.param("protected_paths", [LONG], "protected_paths", "Protected path 1 is 501 characters long", id="protected path too long"),
    pytest.param("scope_paths", [LONG], "scope_paths", "Working area path 1 is 501 characters long", id="working area path too long"),
    pytest.param("approval_timeout_minutes", "0", "approval_timeout_minutes", "At least 1", id="timeout zero"),
    pytest.param("approval_timeout_minutes", "soon", "approval_timeout_minutes", "Enter a whole number", id="timeout not a number"),
    pytest.param("on_timeout", "approve", "on_timeout", "Select a valid choice", id="a timeout can never approve"),
    pytest.param("repository", "", "repository", "Choose the repository the goal works on", id="repository missing"),
    pytest.param("repository", "PLAIN_DIR", "repository", "Choose one of the repositories offered here", id="a typed path is not a registered repository"),
    pytest.param("repository", "/nonexistent/goalpost-repo", "repository", "Choose one of the repositories offered here", id="an unknown path"),
    pytest.param("repository", "THEIRS", "repository", "Choose one of the repositories offered here", id="somebody else's repository"),
    pytest.param("base_branch", "release", "base_branch", "The repository has no branch “release”", id="branch missing"),
    pytest.param("base_branch", "a..b", "base_branch", "“a..b” is not a valid branch name", id="branch name invalid"),
    pytest.param("base_branch", "", "base_branch", "This field is required", id="branch blank"),
    pytest.param("agent_profile", "skynet", "agent_profile", "Choose one of the agents offered here", id="unknown agent"),
    pytest.param("agent_profile", "STAFF_ONLY", "agent_profile", "Choose one of the agents offered here", id="an agent for others"),
    pytest.param("agent_model", "gpt-9", "agent_model", "Select a valid choice", id="a model no agent offers"),
    pytest.param("agent_script", "{not json", "agent_script", "Enter a valid JSON", id="script not JSON"),
    pytest.param("agent_script", "[" * 5000 + "]" * 5000, "agent_script", "nested deeper than 64 levels", id="script nested past the recursion limit"),
    pytest.param("agent_script", '{"a":' * 100 + "1" + "}" * 100, "agent_script", "nested deeper than 64 levels", id="script nested too deep"),
    pytest.param("agent_script", '[{"summary": "\\u0000"}]', "agent_script", "NUL characters", id="script with a NUL escape"),
    pytest.param("agent_script", '[{"summary": "\\ud800"}]', "agent_script", "lone surrogates", id="script with a lone surrogate"),
    pytest.param("agent_script", "[NaN]", "agent_script", "NaN", id="script with NaN"),
    pytest.param("agent_script", "[" + "9" * 5000 + "]", "agent_script", "Enter a valid JSON", id="script with a 5,000-digit number"),
    pytest.param("agent_script", '{"steps": []}', "agent_script", "must be a JSON list", id="script not a list"),
    pytest.param("agent_script", '[{"patch_file": "/etc/shadow"}]', "agent_script", "patch_file reads files on the server", id="script reading a server file"),
    pytest.param("agent_script", '[{"folder": "/root"}]', "agent_script", "folder reads files on the server", id="script naming a server folder"),
    pytest.param("agent_script", '[{"bogus": 1}]', "agent_script", "unknown key 'bogus'", id="script with an unknown key"),
    pytest.param("network_hosts", ["127.0.0.1:5432"], "network_hosts", "name a host, not an IP address", id="an IP literal"),
    pytest.param("network_hosts", ["[::1]:6379"], "network_hosts", "name a host, not an IP address", id="an IPv6 literal"),
    pytest.param("network_hosts", ["localhost:6379"], "network_hosts", "names this machine or a private network", id="localhost"),
    pytest.param("network_hosts", ["db.internal:5432"], "network_hosts", "names this machine or a private network", id="a private name"),
    pytest.param("network_hosts", ["redis:6379"], "network_hosts", "names this machine or a private network", id="a single-label name"),
    pytest.param("network_hosts", ["pypi.org"], "network_hosts", "is not host:port", id="no port"),
    pytest.param("approvers", ["999999"], "approvers", "Select a valid choice", id="unknown approver"),
    pytest.param("approvers", ["OWNER"], "approvers", "Select a valid choice", id="owner cannot approve their own goal"),
    pytest.param("approvers", ["9" * 30], "approvers", "Select a valid choice", id="an approver id past 64 bits"),
    pytest.param("viewers", ["-" + "9" * 30], "viewers", "Select a valid choice", id="a viewer id past 64 bits"),
]


@pytest.mark.parametrize(("key", "value", "field", "message"), BAD_INPUT)
def test_bad_input_rerenders_with_the_error_beside_the_field_and_keeps_what_was_typed(
    as_owner, owner, outsider, repository, plain_dir, make_repository, make_profile, key, value, field, message
):
    placeholders = {
        "PLAIN_DIR": lambda: str(plain_dir),
        "THEIRS": lambda: str(make_repository(plain_dir, users=[outsider]).pk),
        "STAFF_ONLY": lambda: str(make_profile("scripted", users=[outsider]).pk),
    }
    value = placeholders[value]() if isinstance(value, str) and value in placeholders else value
    if value == ["OWNER"]:
        value = [str(owner.pk)]
    typed_title = "Kept title ✓" if key != "title" else None
    data = form_data(repository, **{key: value})
    if typed_title:
        data["title"] = typed_title
    response = as_owner.post("/goals/new/", data)
    assert response.status_code == 422
    assert not Goal.objects.exists()
    page = html.unescape(response.text)
    assert "Nothing was saved" in page
    assert message in page, page[page.find("field-error") - 500 : page.find("field-error") + 500]
    form = response.context["form"]
    assert field in form.errors, form.errors
    if typed_title:
        assert f'value="{typed_title}"' in page
    assert "Do not remove any current filters" in page or key == "constraints"
    assert "pytest tests/test_dashboard.py" in page or key.startswith("evidence")


def test_blank_list_rows_are_dropped(owner, repository):
    data = form_data(repository, constraints=["  ", "Keep the API", ""], protected_paths=[""])
    form = GoalForm(_querydict(data), owner=owner)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["constraints"] == ["Keep the API"]
    assert form.cleaned_data["protected_paths"] == []


def test_blank_risk_takes_the_work_types_risk(owner, repository):
    form = GoalForm(_querydict(form_data(repository, work_type="migration", rollback_note="restore backup")), owner=owner)
    assert form.is_valid(), form.errors
    assert form.save().risk == "high"


def test_risk_may_be_raised_above_the_work_type(owner, repository):
    form = GoalForm(_querydict(form_data(repository, work_type="docs", risk="high")), owner=owner)
    assert form.is_valid(), form.errors
    assert form.save().risk == "high"


def test_blank_budget_is_saved_as_unbounded_and_flagged_by_the_linter(owner, repository):
    form = GoalForm(_querydict(form_data(repository, budget_tokens="")), owner=owner)
    assert form.is_valid(), form.errors
    goal = form.save()
    assert goal.budget_tokens is None
    assert "budget_unbounded" in {f.rule for f in goal.lint()}


def test_edit_form_shows_stored_evidence_rows(owner, goal):
    form = GoalForm(instance=goal, owner=owner)
    assert form["evidence"].value() == [{"kind": "command", "text": "pytest tests/test_dashboard.py", "exit": 0}]


def _querydict(data: dict):
    from django.http import QueryDict

    qd = QueryDict(mutable=True)
    for key, value in data.items():
        if isinstance(value, list):
            qd.setlist(key, value)
        else:
            qd[key] = value
    return qd


def test_a_new_form_starts_with_bounded_budgets(owner):
    form = GoalForm(owner=owner)
    for name, default in lint.DEFAULT_BUDGETS.items():
        assert form[f"budget_{name}"].value() == default
    assert form["repeated_failure_threshold"].value() == 3
    assert form["base_branch"].value() == "main"

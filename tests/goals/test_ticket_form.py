"""The ticket form: the agent picked from a list of profiles (the default one that can run here), evidence rows
that are a command or a labelled manual check, each field with the invoice-export ticket as its example, and
bad input that re-renders with everything typed."""

import pytest

from approvals.models import ApprovalRequest
from goals.forms import GoalForm
from goals.models import AgentProfile, Goal, GoalStatus
from tests.factories import form_data, make_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def offered(owner):
    """Three agents offered to everyone, by name: one with nothing to replay, one whose program is missing, one
    that can run (an OpenAI-compatible endpoint)."""
    AgentProfile.objects.all().delete()
    return {
        "empty": make_profile("scripted", name="A scripted, empty"),
        "missing": make_profile("command", name="B codex", preset="codex", executable="/nonexistent/bin/codex"),
        "local": make_profile("openai", name="C local model", base_url="http://127.0.0.1:11434/v1", models=["qwen"]),
    }


def test_a_new_goal_starts_with_the_first_agent_that_can_run_here(owner, offered, repository):
    form = GoalForm(owner=owner)
    assert form["agent_profile"].value() == offered["local"].pk


def test_the_agent_list_says_which_cannot_run_here(as_owner, offered, repository):
    page = as_owner.get("/goals/new/").text
    assert "B codex (Codex CLI) — cannot run here" in page
    assert "C local model (OpenAI-compatible endpoint)</option>" in page
    assert f'<option value="{offered["local"].pk}" selected>' in page


def test_a_scripted_agent_with_nothing_to_replay_is_refused_and_nothing_typed_is_lost(as_owner, offered, repository):
    data = form_data(repository, agent_profile=str(offered["empty"].pk), agent_script="[]", title="Invoice export")
    response = as_owner.post("/goals/new/", data)
    assert response.status_code == 422
    assert "A scripted, empty has no script to replay" in response.text
    assert 'value="Invoice export"' in response.text
    assert 'value="The table looks the same"' in response.text
    assert not Goal.objects.exists()


def test_the_same_agent_with_a_script_of_the_goal_s_own_is_accepted(as_owner, offered, repository):
    data = form_data(repository, agent_profile=str(offered["empty"].pk), agent_script='[{"summary": "Move it"}]')
    response = as_owner.post("/goals/new/", data)
    assert response.status_code == 302
    assert Goal.objects.get().agent_script == [{"summary": "Move it"}]


def test_no_agent_offered_says_so(as_owner, repository):
    AgentProfile.objects.all().delete()
    page = as_owner.get("/goals/new/").text
    assert "No agent is offered to you yet: ask staff to set one up" in page


def test_each_field_says_what_it_is_for_with_the_invoice_export_ticket(as_owner, repository):
    page = as_owner.get("/goals/new/").text
    for example in (
        "Move the invoice export from views.py to billing/export.py",
        "Do not change the invoice CSV columns",
        "pytest tests/test_invoice_export.py",
        "The downloaded CSV opens with the same three columns",
        "Revert the branch: the export move changes no data.",
        "billing/migrations/**",
    ):
        assert example in page, example


def test_evidence_rows_are_a_command_or_a_labelled_manual_check(as_owner, repository):
    data = form_data(
        repository,
        evidence_kind=["command", "manual"],
        evidence_text=["pytest tests/test_invoice_export.py", "The downloaded CSV keeps its three columns"],
        evidence_exit=["0", ""],
    )
    response = as_owner.post("/goals/new/", data)
    goal = Goal.objects.get()
    assert goal.evidence == [
        {"kind": "command", "command": "pytest tests/test_invoice_export.py", "expect_exit": 0, "description": ""},
        {
            "kind": "manual",
            "command": "",
            "expect_exit": 0,
            "description": "The downloaded CSV keeps its three columns",
        },
    ]
    page = as_owner.get(response["Location"]).text
    assert "manual: The downloaded CSV keeps its three columns" in page
    form = as_owner.get(f"/goals/{goal.pk}/edit/").text
    assert 'class="row evidence-row evidence-manual"' in form
    assert '<option value="manual" selected>Manual check</option>' in form
    assert "A person checks this at review; it is never run." in form


def test_the_reviewer_sees_manual_checks_as_manual(as_owner, goal):
    goal.evidence = [{"kind": "manual", "command": "", "expect_exit": 0, "description": "Open the CSV"}]
    goal.status = GoalStatus.WAITING
    goal.save(update_fields=["evidence", "status"])
    request = ApprovalRequest.open(goal, "plan", summary="s", step_number=1)
    assert "manual: Open the CSV" in as_owner.get(f"/approvals/{request.pk}/").text


def test_a_saved_goal_has_a_place_to_check_its_evidence(as_owner, goal):
    page = as_owner.get(f"/goals/{goal.pk}/edit/").text
    assert 'id="check-evidence"' in page
    new = as_owner.get("/goals/new/").text
    assert "Save the goal, then “Check evidence now”" in new


def test_the_script_field_is_tucked_away(as_owner, repository):
    page = as_owner.get("/goals/new/").text
    assert '<details class="script-field">' in page

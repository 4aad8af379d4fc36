"""`manage.py demo`: its password is set once, and every demo goal goes on to its next gate or to Done, whatever
a person decides, never to Failed (the real loop, on the demo's real repository)."""

import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from approvals.models import ApprovalRequest
from goals import loop
from goals.management.commands.demo import DEMO_GOALS, DEMO_PROFILE, Command
from goals.models import AgentProfile, Goal, GoalStatus, Repository
from tests.factories import form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_var(settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    settings.GOALPOST_WORKTREE_ROOT = tmp_path / "var" / "worktrees"
    return settings.VAR_DIR


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out, stderr=StringIO())
    return out.getvalue()


# The seed's ticket as a newcomer types it (the form's examples), raised to high risk: every step is reviewed.
SEED_TICKET = {
    "title": "Move the invoice export to billing/export.py",
    "objective": "Move the invoice export from views.py to billing/export.py",
    "constraints": ["Do not change the invoice CSV columns", "Keep the /invoices/export/ URL working"],
    "evidence_kind": ["command", "manual"],
    "evidence_text": [
        f"{sys.executable} -m pytest -q -p no:cacheprovider tests/test_invoice_export.py",
        "The downloaded CSV opens with the same three columns",
    ],
    "evidence_exit": ["0", ""],
    "done_criteria": "billing/export.py holds the export, views.py only calls it, and tests/test_invoice_export.py "
    "passes.",
    "work_type": "other",
    "risk": "high",
    "rollback_note": "Revert the branch: the export move changes no data.",
    "protected_paths": [""],
    "scope_paths": ["billing/**", "views.py", "tests/**"],
}


def step_until_it_waits(goal: Goal) -> None:
    for _ in range(10):
        if loop.run_step(goal.pk, worker="test").status != "continue":
            break
    goal.refresh_from_db()


def test_the_demo_password_is_set_when_the_user_is_created_and_never_again(client, monkeypatch):
    monkeypatch.setenv("GOALPOST_DEMO_PASSWORD", "first-demo-pass")
    user, password = Command().demo_user()
    assert password == "first-demo-pass"
    assert user.is_superuser and user.check_password("first-demo-pass")
    client.force_login(user)

    # A later start, even with another password in the environment: nothing changes, the session survives.
    monkeypatch.setenv("GOALPOST_DEMO_PASSWORD", "second-demo-pass")
    again, password = Command().demo_user()
    assert password is None
    again.refresh_from_db()
    assert again.check_password("first-demo-pass") and not again.check_password("second-demo-pass")
    response = client.get("/")
    assert response.status_code == 200 and response.wsgi_request.user.username == "demo"


def test_without_a_chosen_password_a_random_one_is_printed_once(monkeypatch):
    monkeypatch.delenv("GOALPOST_DEMO_PASSWORD", raising=False)
    user, password = Command().demo_user()
    assert len(password) >= 16 and user.check_password(password)
    assert Command().demo_user()[1] is None
    assert get_user_model().objects.get(username="demo").check_password(password)


@pytest.mark.usefixtures("demo_var")
@pytest.mark.parametrize("first_verdict", ["approve", "reject"])
def test_every_demo_goal_goes_on_to_its_next_gate_or_done_never_to_failed(monkeypatch, first_verdict):
    monkeypatch.setenv("GOALPOST_DEMO_PASSWORD", "demo-pass-for-tests")
    output = run_demo()
    demo = get_user_model().objects.get(username="demo")
    for spec in DEMO_GOALS:
        goal = Goal.objects.get(owner=demo, title=spec["title"])
        assert f"{goal.title}: shows {spec['shows']}" in output
        assert goal.events.filter(message__contains=spec["shows"]).exists()
        assert goal.status == GoalStatus.WAITING, (goal.title, goal.status_reason)

        asked, verdict = [], first_verdict
        for _ in range(4):
            request = goal.approval_requests.pending().get()
            asked.append(request.kind)
            request.decide(demo, verdict, comment="Try it another way" if verdict == "reject" else "")
            goal.refresh_from_db()
            if goal.status != GoalStatus.DONE:
                step_until_it_waits(goal)
            assert goal.status in (GoalStatus.WAITING, GoalStatus.DONE), (goal.title, asked, goal.status_reason)
            if goal.status == GoalStatus.DONE:
                break
            verdict = "approve"
        assert goal.status == GoalStatus.DONE, (goal.title, asked)
        assert asked[-1] == "done"
        assert not goal.steps.filter(status="failed").exists()
        if first_verdict == "reject":
            # The rejection reached the agent: its reply, not the next entry of its script, came next.
            replied = [entry["on_reject"]["summary"] for entry in spec["steps"] if "on_reject" in entry]
            assert goal.steps.filter(summary__in=replied).exists(), goal.title
    assert not ApprovalRequest.objects.pending().filter(goal__owner=demo).exists()


@pytest.mark.usefixtures("demo_var")
def test_a_newcomers_own_goal_from_the_form_reaches_done_on_the_default_agent(client, monkeypatch):
    """The demo user writes a goal of their own: the form offers the demo's agent by default, Start takes it, and
    the goal reaches Done through a rejection and an approval (high risk: every step is reviewed)."""
    monkeypatch.setenv("GOALPOST_DEMO_PASSWORD", "demo-pass-for-tests")
    run_demo()
    demo = get_user_model().objects.get(username="demo")
    profile = AgentProfile.objects.get(name=DEMO_PROFILE)
    assert not profile.cannot_run_here()
    repository = Repository.objects.filter(users=demo).latest("pk")
    client.force_login(demo)
    assert f'<option value="{profile.pk}" selected>' in client.get("/goals/new/").text

    data = form_data(repository, **SEED_TICKET, agent_profile=str(profile.pk), mark_ready="1")
    response = client.post("/goals/new/", data)
    assert response.status_code == 302, response.text
    goal = Goal.objects.get(owner=demo, title=SEED_TICKET["title"])
    assert goal.status == GoalStatus.READY and goal.agent_profile == profile and goal.agent_script == []
    loop.start(goal, demo)
    step_until_it_waits(goal)

    asked = []
    for verdict in ("reject", "approve", "approve"):
        request = goal.approval_requests.pending().get()
        asked.append(request.kind)
        request.decide(demo, verdict, comment="Test that the view only calls the export" if verdict == "reject" else "")
        goal.refresh_from_db()
        if goal.status == GoalStatus.DONE:
            break
        step_until_it_waits(goal)
        assert goal.status == GoalStatus.WAITING, (asked, goal.status_reason)
    assert asked == ["step", "step", "done"] and goal.status == GoalStatus.DONE
    assert goal.steps.filter(summary__startswith="Rework after your feedback").exists()
    assert not goal.steps.filter(status="failed").exists()

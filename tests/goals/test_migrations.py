"""The migration from typed repository paths and agent settings to registered repositories and agent profiles."""

import pytest

from goals.models import AgentProfile, Goal, Repository
from tests.factories import migrate, migrate_to_latest

pytestmark = pytest.mark.usefixtures("latest_schema_after")

BEFORE = [("goals", "0005_repositories_and_profiles")]  # the old columns and the new tables, side by side
AFTER = [("goals", "0007_drop_typed_repository_and_agent")]

STEPS = [{"summary": "one", "write": {"a.txt": "a"}}]




@pytest.mark.django_db(transaction=True)
def test_goals_keep_their_repository_and_agent_through_disabled_rows_listed_for_their_owners():
    old = migrate(BEFORE)
    users, goals = old.get_model("auth", "User"), old.get_model("goals", "Goal")
    alice, bob = users.objects.create(username="alice"), users.objects.create(username="bob")

    def goal(owner, title, repo_path, agent="scripted", agent_settings=None):
        return goals.objects.create(
            owner=owner, title=title, objective="o", repo_path=repo_path, base_branch="trunk", agent=agent,
            agent_settings=agent_settings if agent_settings is not None else {"steps": STEPS},
        ).pk

    ids = {
        "alice shop": goal(alice, "a1", "/srv/shop"),
        "bob shop": goal(bob, "b1", "/srv/shop"),
        "alice other shop": goal(alice, "a2", "/home/alice/shop/"),
        "codex": goal(alice, "a3", "/srv/shop", "command", {"preset": "codex", "executable": "/opt/codex", "args": ["-q"]}),
        "openai leak": goal(bob, "b2", "/srv/shop", "openai", {"base_url": "http://llm:8000/v1", "model": "qwen", "api_key_env": "DATABASE_URL"}),
        "openai default key": goal(bob, "b3", "/srv/shop", "openai", {"base_url": "http://llm:8000/v1", "model": "qwen"}),
        "patch file": goal(bob, "b4", "/srv/shop", "scripted", {"steps": [{"patch_file": "/srv/patches/1.diff"}]}),
    }

    migrate(AFTER)
    migrate_to_latest()  # the later migrations leave these rows alone; the models are today's
    assert Goal.objects.count() == len(ids)
    shop, other = Repository.objects.get(source="/srv/shop"), Repository.objects.get(source="/home/alice/shop/")
    assert (shop.name, other.name) == ("shop", "shop-2")
    assert not shop.enabled and not other.enabled and shop.default_branch == "trunk"
    assert {u.username for u in shop.users.all()} == {"alice", "bob"}
    assert {u.username for u in other.users.all()} == {"alice"}
    by_title = {g.title: g for g in Goal.objects.select_related("repository", "agent_profile")}
    assert by_title["a1"].repository == by_title["b1"].repository == shop and by_title["a2"].repository == other

    scripted = by_title["a1"].agent_profile
    assert (scripted.adapter, scripted.enabled, scripted.name) == ("scripted", False, "Migrated scripted")
    assert by_title["a1"].agent_script == STEPS and by_title["b1"].agent_profile == scripted
    assert {u.username for u in scripted.users.all()} == {"alice", "bob"}

    codex = by_title["a3"].agent_profile
    assert (codex.name, codex.preset, codex.executable, codex.extra_args) == ("Migrated command codex", "codex", "/opt/codex", ["-q"])
    assert [u.username for u in codex.users.all()] == ["alice"]

    leak, default = by_title["b2"].agent_profile, by_title["b3"].agent_profile
    assert (leak.name, leak.api_key_env, leak.models) == ("Migrated openai (key variable dropped)", "", ["qwen"])
    assert (default.api_key_env, by_title["b3"].agent_model) == ("OPENAI_API_KEY", "qwen")

    patches = by_title["b4"].agent_profile  # a step reading a server file moves into the (staff-reviewed) profile
    assert patches.options == {"steps": [{"patch_file": "/srv/patches/1.diff"}]} and by_title["b4"].agent_script == []

    for title in ("a1", "a3", "b2"):  # each goal builds its agent as before
        goal = by_title[title]
        assert goal.agent_profile.adapter_settings(goal)
    assert AgentProfile.objects.filter(enabled=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_disabled_migrated_repository_is_usable_by_its_owners_only():
    old = migrate(BEFORE)
    users, goals = old.get_model("auth", "User"), old.get_model("goals", "Goal")
    alice = users.objects.create(username="alice")
    users.objects.create(username="mallory")
    goals.objects.create(owner=alice, title="t", objective="o", repo_path="/srv/shop", agent="scripted", agent_settings={})
    migrate(AFTER)
    migrate_to_latest()  # the later migrations leave these rows alone; the models are today's
    from django.contrib.auth import get_user_model

    people = get_user_model().objects
    assert list(Repository.objects.usable_by(people.get(username="alice")).values_list("source", flat=True)) == ["/srv/shop"]
    assert not Repository.objects.usable_by(people.get(username="mallory")).exists()
    assert AgentProfile.objects.usable_by(people.get(username="alice")).count() == 1
    assert not AgentProfile.objects.usable_by(people.get(username="mallory")).exists()


@pytest.mark.django_db(transaction=True)
def test_what_agents_reported_joins_the_goals_usage(goal):
    from datetime import timedelta

    from django.utils import timezone

    old = migrate([("goals", "0008_reported_usage"), ("gateway", "0002_tables")])
    reports, calls = old.get_model("gateway", "AgentReport"), old.get_model("gateway", "GatewayCall")
    requests = old.get_model("approvals", "ApprovalRequest")
    reports.objects.create(goal_id=goal.pk, name="usage", tokens=700)
    reports.objects.create(goal_id=goal.pk, command="pytest", exit_code=0, passed=True, tokens=300)
    expires = timezone.now() + timedelta(hours=1)
    approved = requests.objects.create(goal_id=goal.pk, kind="step", origin="gateway", status="approved", expires_at=expires)
    rejected = requests.objects.create(goal_id=goal.pk, kind="step", origin="gateway", status="rejected", expires_at=expires)

    def call(verdict, paths, request=None):
        calls.objects.create(goal_id=goal.pk, tool_name="Write", call_key="k" * 64, verdict=verdict, paths=paths, request=request)

    call("allow", ["docs/a.md"])
    call("ask", ["src/b.py"], approved)
    call("ask", ["src/c.py"], rejected)
    call("deny", ["secrets/d"])

    migrate_to_latest()
    goal.refresh_from_db()
    assert goal.reported_tokens == 1000 and goal.reported_paths == ["docs/a.md", "src/b.py"]
    assert goal.usage().tokens == 1000 and goal.usage().files_total == 2

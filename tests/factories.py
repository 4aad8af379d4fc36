"""Builders the tests share: people by role, goals, repositories and agent profiles, form posts, git, the database
as other processes see it, and what Claude Code sends. Plain functions with keyword overrides; the fixtures in
tests/conftest.py are thin wrappers around them, and test modules import from here, never from each other."""

import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from approvals.models import ApprovalRequest, PushSubscription
from gateway.models import AgentToken, AlwaysAllowRule
from goals.models import AgentProfile, Goal, Repository

# --- people ---------------------------------------------------------------------------------------------------

# Who may call Goalpost, as the security tests name them: nobody signed in, a person with no part in the goal, one
# who watches it, one who approves for it, its owner, and an agent holding the goal's token.
ROLES = ("anonymous", "outsider", "viewer", "approver", "owner", "agent")


def password_for(username: str) -> str:
    return f"{username}-pass-123"


def make_user(username: str, **fields):
    """A person who signs in as `username` with password_for(username); `is_staff=True`, `pk=…` and any other
    field go to the user model."""
    email = f"{username}@example.invalid"
    return get_user_model().objects.create_user(username, email, password_for(username), **fields)

# --- git -----------------------------------------------------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def run_git(repo, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout


def make_git_repo(path: Path, files: dict[str, str] | None = None, message: str = "initial") -> Path:
    """A real git repository at `path` with a `main` branch holding one commit of `files` (app.py by default)."""
    path.mkdir(parents=True)
    run_git(path, "init", "-q", "-b", "main")
    for name, content in (files or {"app.py": "print('hello')\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(content)
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "-m", message)
    return path


def goal_git_dir(goal_id: int):
    """The git directory of a goal's own checkout (its branch lives there until the done review pushes it)."""
    from goals import loop

    return loop.worktree_root().parent / "gitdirs" / f"goal-{goal_id}.git"


# --- repositories and agent profiles ------------------------------------------------------------------------------


def registered_repository(path, users=(), groups=(), **fields) -> Repository:
    """The repository at `path`, registered (once) and usable by `users` and `groups`. Written directly, as
    staff would after Repository.clean() — tests pass tmp_path folders that are not always git repositories."""
    source = str(path)
    repository = Repository.objects.filter(source=source).first()
    if repository is None:
        name, number = fields.pop("name", "") or Path(source).name or "repository", 1
        while Repository.objects.filter(name=name).exists():
            number += 1
            name = f"{Path(source).name}-{number}"
        repository = Repository.objects.create(name=name, source=source, **fields)
    repository.users.add(*users)
    repository.groups.add(*groups)
    return repository


def scripted_profile() -> AgentProfile:
    """The scripted agent, offered to everyone: the default agent of test goals."""
    return AgentProfile.objects.get_or_create(name="Scripted", defaults={"adapter": "scripted"})[0]


def make_profile(adapter: str = "scripted", *, name: str = "", users=(), groups=(), check: bool = True, **fields):
    """An agent profile as staff write it, checked by its clean() (pass check=False for one the admin would
    refuse): make_profile("command", preset="codex", users=[…], …)."""
    profile = AgentProfile(name=name or f"{adapter} {AgentProfile.objects.count() + 1}", adapter=adapter, **fields)
    if check:
        profile.full_clean()
    profile.save()
    profile.users.add(*users)
    profile.groups.add(*groups)
    return profile


# --- goals and the goal form ------------------------------------------------------------------------------------

GOOD_OBJECTIVE = (
    "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, without changing the "
    "visible table behavior or removing any current filters"
)


def good_goal_fields(repo) -> dict:
    return {
        "title": "Dashboard under 1.5 s",
        "objective": GOOD_OBJECTIVE,
        "constraints": ["Do not change the visible table behavior", "Do not remove any current filters"],
        "evidence": [
            {"kind": "command", "command": "pytest tests/test_dashboard.py", "expect_exit": 0, "description": ""}
        ],
        "done_criteria": "Load time under 1.5 s three runs in a row",
        "work_type": "ui_refactor",
        "risk": "medium",
        "repository": registered_repository(repo),
        "base_branch": "main",
        "agent_profile": scripted_profile(),
    }


def make_goal(owner, repo, *, approvers=(), viewers=(), **fields) -> Goal:
    """A draft goal of `owner` with the good contract of good_goal_fields on `repo` (a path, registered and usable
    by the owner), decided by `approvers` and watched by `viewers`; keyword arguments replace any field
    (`status=GoalStatus.RUNNING`, `risk="high"`, `title=…`)."""
    goal = Goal.objects.create(owner=owner, **{**good_goal_fields(repo), **fields})
    goal.repository.users.add(owner)
    goal.approvers.add(*approvers)
    goal.viewers.add(*viewers)
    return goal


def form_data(repo, **overrides) -> dict:
    """A complete, valid goal form post as a browser sends it; `repo` is a Repository or a registered path."""
    repository = repo if isinstance(repo, Repository) else Repository.objects.get(source=str(repo))
    data = {
        "title": "Dashboard under 1.5 s",
        "objective": GOOD_OBJECTIVE,
        "constraints": ["Do not change the visible table behavior", "Do not remove any current filters"],
        "evidence_kind": ["command", "manual"],
        "evidence_text": ["pytest tests/test_dashboard.py", "The table looks the same"],
        "evidence_exit": ["0", ""],
        "done_criteria": "Load time under 1.5 s three runs in a row",
        "rollback_note": "",
        "work_type": "ui_refactor",
        "risk": "",
        "budget_minutes": "120",
        "budget_steps": "20",
        "budget_tokens": "2000000",
        "budget_files_per_step": "5",
        "budget_files_total": "50",
        "budget_approvals": "10",
        "budget_retries": "3",
        "repeated_failure_threshold": "3",
        "protected_paths": ["generated/**"],
        "scope_paths": ["dashboard/**", "tests/**"],
        "approval_timeout_minutes": "1440",
        "on_timeout": "deny_and_pause",
        "repository": str(repository.pk),
        "base_branch": "main",
        "agent_profile": str(scripted_profile().pk),
        "agent_model": "",
        "agent_script": "[]",
        "network_hosts": [""],
    }
    data.update(overrides)
    return data


# --- the security tests' world ----------------------------------------------------------------------------------


@dataclass
class World:
    """One goal with every kind of person around it (users by role), a pending step request, the agent's token
    secret, a spare token, an always-allow rule and the owner's phone: what the security tests call routes on."""

    goal: Goal
    users: dict
    request: ApprovalRequest
    secret: str
    spare_token: AgentToken
    rule: AlwaysAllowRule
    device: PushSubscription


def client_for(world: World, role: str, *, csrf: bool = True) -> Client:
    """A client as the role: signed in (with a CSRF cookie and header, or none), a bearer token, or nobody."""
    client = Client(enforce_csrf_checks=True)
    if role == "agent":
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.secret}"
    elif role != "anonymous":
        client.force_login(world.users[role])
    if csrf and role != "agent":
        token = _get_new_csrf_string()
        client.cookies["csrftoken"] = token
        client.defaults["HTTP_X_CSRFTOKEN"] = token
    return client


# --- what agents send ---------------------------------------------------------------------------------------


def pre_tool_use(repo, tool_name: str, tool_input: dict, **overrides) -> dict:
    """A PreToolUse hook input exactly as Claude Code sends it."""
    return {
        "session_id": "9a1c7f0e-5b7d-4c1e-9d2f-0b6f3c7e1a11",
        "transcript_path": "/home/dev/.claude/projects/-repo/9a1c7f0e.jsonl",
        "cwd": str(repo),
        "permission_mode": "default",
        "hook_event_name": "PreToolUse",
        "tool_name": tool_name,
        "tool_input": tool_input,
        "tool_use_id": f"toolu_{uuid.uuid4().hex[:24]}",
        **overrides,
    }


# --- the database -------------------------------------------------------------------------------------------


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL, for daphne or celery processes started by a test."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def migrate(targets):
    """Migrate the test database to `targets` ((app, migration or None) pairs); the apps as of them."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state([target for target in targets if target[1] is not None]).apps


def migrate_to_latest():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    return migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from approvals.models import ApprovalRequest
from goals.models import AgentProfile, Goal, GoalStatus, Repository

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}

GOOD_OBJECTIVE = (
    "Reduce the dashboard initial load time below 1.5s on the existing seeded dataset, without changing the "
    "visible table behavior or removing any current filters"
)


TEST_QUEUE = f"goalpost-tests-{os.getpid()}"
TEST_CHANNEL_PREFIX = f"goalpost-tests-{os.getpid()}"
# Processes a test starts (daphne, celery workers) inherit these.
os.environ["GOALPOST_CELERY_QUEUE"] = TEST_QUEUE
os.environ["GOALPOST_CHANNEL_PREFIX"] = TEST_CHANNEL_PREFIX


@pytest.fixture(autouse=True)
def private_redis_names(settings):
    """Tasks and websocket events of this test run stay apart from `make run` and from other runs on this Redis."""
    settings.CELERY_TASK_DEFAULT_QUEUE = TEST_QUEUE
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": TEST_CHANNEL_PREFIX}}}


@pytest.fixture(autouse=True, scope="session")
def drop_test_queue():
    yield
    import redis
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.REDIS_URL, socket_connect_timeout=1)
    try:
        client.delete(TEST_QUEUE)
    except redis.RedisError:
        pass
    finally:
        client.close()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Full-strength hashing costs about half a second a user; tests make thousands. The browser tests, whose
    # server checks passwords with the real hashers, put them back (tests/e2e/conftest.py).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def plain_static_storage(settings):
    # The manifest storage needs `collectstatic`; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def subprocess_database_url() -> str:
    """The test database as a DATABASE_URL, for daphne or celery processes started by a test."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def run_git(repo, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout


def goal_git_dir(goal_id: int):
    """The git directory of a goal's own checkout (its branch lives there until the done review pushes it)."""
    from goals import loop

    return loop.worktree_root().parent / "gitdirs" / f"goal-{goal_id}.git"


@pytest.fixture
def git_repo(tmp_path):
    """A real git repository with a `main` branch holding one commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run_git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "initial")
    return repo


@pytest.fixture
def owner(db):
    return get_user_model().objects.create_user("owner", "owner@example.invalid", "owner-pass-123")


@pytest.fixture
def approver(db):
    return get_user_model().objects.create_user("approver", "approver@example.invalid", "approver-pass-123")


@pytest.fixture
def outsider(db):
    return get_user_model().objects.create_user("outsider", "outsider@example.invalid", "outsider-pass-123")


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


@pytest.fixture
def make_repository(db):
    """make_repository(path, users=[…], groups=[…], enabled=…, …): a registered repository."""
    return registered_repository


@pytest.fixture
def make_profile(db):
    """make_profile(adapter="command", preset="codex", users=[…], …): an agent profile as staff write it,
    checked by its clean() (pass check=False for one the admin would refuse)."""

    def make(adapter: str = "scripted", *, name: str = "", users=(), groups=(), check: bool = True, **fields):
        profile = AgentProfile(name=name or f"{adapter} {AgentProfile.objects.count() + 1}", adapter=adapter, **fields)
        if check:
            profile.full_clean()
        profile.save()
        profile.users.add(*users)
        profile.groups.add(*groups)
        return profile

    return make


@pytest.fixture
def repository(owner, git_repo):
    """git_repo, registered and usable by the owner."""
    return registered_repository(git_repo, users=[owner])


@pytest.fixture
def goal(owner, approver, git_repo):
    goal = Goal.objects.create(owner=owner, **good_goal_fields(git_repo))
    goal.repository.users.add(owner)
    goal.approvers.add(approver)
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


@pytest.fixture
def fake(settings):
    """The local push service of tests/approvals/fake_push.py (VAPID, aes128gcm); a test ends with no violation."""
    from tests.approvals.fake_push import FakePushService

    with FakePushService(settings.VAPID_PUBLIC_KEY) as service:
        yield service
    assert service.violations == []


@pytest.fixture
def eager():
    """Queued tasks run at once, in this process (the on-commit callbacks run them)."""
    from config.celery import app as celery_app

    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def pending(goal):
    """A pending step request on the owner's medium-risk goal."""
    return ApprovalRequest.open(
        goal,
        "step",
        findings=[{"gate": "tests_weakened", "severity": "approval", "reason": "assert removed", "path": "t.py"}],
        summary="2 files, +3 −1, 1 test",
        step_number=4,
    )


@pytest.fixture(scope="module")
def live_url(django_db_setup, django_db_blocker):
    """A real daphne on a free port, serving the test database, for the module's tests."""
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    from tests.gateway.gateway_server import running_daphne

    with running_daphne(database_url) as (url, _):
        yield url


@pytest.fixture
def running(goal):
    """The goal running, with `secrets/**` protected: what an agent attached to it works under."""
    goal.status = GoalStatus.RUNNING
    goal.protected_paths = ["secrets/**"]
    goal.save()
    return goal


@pytest.fixture
def fake_codex_app_server() -> Path:
    """The fake `codex app-server` (run it with this Python): the far edge of the Codex bridge's tests."""
    return Path(__file__).parent / "clients" / "fakes" / "codex_app_server.py"


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


@pytest.fixture
def latest_schema_after():
    """Migrate the test database back to the latest schema after a test that migrated it elsewhere."""
    yield
    migrate_to_latest()

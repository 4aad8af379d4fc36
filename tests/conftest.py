"""The fixtures every test may ask for: the test run's settings, people by role, a goal and what hangs off it
(agent tokens, requests, the security tests' world), real processes and the far edge's fakes. Thin wrappers around
tests/factories.py and tests/support/, which test modules import directly."""

import os
from pathlib import Path

import pytest

from approvals.models import ApprovalRequest, PushSubscription
from gateway.models import AgentToken, AlwaysAllowRule
from goals.models import GoalStatus, Step, WorkerHeartbeat
from tests import factories
from tests.factories import (
    GREETING_PATCH,
    World,
    make_git_repo,
    make_goal,
    make_shop_repo,
    make_user,
    migrate_to_latest,
    registered_repository,
    subprocess_database_url,
)
from tests.support import agent_clients
from tests.support.fake_push import FakePushService
from tests.support.fakes import CODEX_APP_SERVER
from tests.support.processes import collect_static, running_daphne
from tests.support.stack import PrivateRedis, Stack

TEST_INSTANCE = f"tests-{os.getpid()}"
TEST_QUEUE = f"goalpost-tests-{os.getpid()}"
TEST_CHANNEL_PREFIX = f"goalpost-tests-{os.getpid()}"
TEST_BROKER_KEY_PREFIX = f"goalpost-{TEST_INSTANCE}:"
# Processes a test starts (daphne, celery workers) inherit these: they run on the test database, whose identity
# differs from the one this process's settings were derived from, so the instance is named, not derived.
os.environ["GOALPOST_INSTANCE"] = TEST_INSTANCE
os.environ["GOALPOST_CELERY_QUEUE"] = TEST_QUEUE
os.environ["GOALPOST_CHANNEL_PREFIX"] = TEST_CHANNEL_PREFIX
# The local fake push service listens on http at 127.0.0.1 (tests/support/fake_push.py).
os.environ["GOALPOST_PUSH_ALLOW_PRIVATE"] = "1"


# --- the test run's settings ------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def private_redis_names(settings):
    """Tasks and websocket events of this test run stay apart from `make run` and from other runs on this Redis."""
    settings.GOALPOST_INSTANCE = TEST_INSTANCE
    settings.GOALPOST_REDIS_PREFIX = TEST_BROKER_KEY_PREFIX
    settings.CELERY_TASK_DEFAULT_QUEUE = TEST_QUEUE
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS, "global_keyprefix": TEST_BROKER_KEY_PREFIX
    }
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {"default": {**layer, "CONFIG": {**layer["CONFIG"], "prefix": TEST_CHANNEL_PREFIX}}}


@pytest.fixture(autouse=True)
def local_push_service_allowed(settings):
    """Push endpoints on 127.0.0.1 over http (the fake push service); tests of the refusals turn it off."""
    settings.GOALPOST_PUSH_ALLOW_PRIVATE = True


@pytest.fixture(autouse=True, scope="session")
def drop_test_queue():
    yield
    import redis
    from django.conf import settings as django_settings

    client = redis.Redis.from_url(django_settings.REDIS_URL, socket_connect_timeout=1)
    try:
        client.delete(TEST_BROKER_KEY_PREFIX + TEST_QUEUE)
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


@pytest.fixture
def eager():
    """Queued tasks run at once, in this process (the on-commit callbacks run them)."""
    from config.celery import app as celery_app

    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def worktrees_in_tmp(settings, tmp_path):
    """Goal checkouts go under this test's tmp_path, not var/."""
    settings.GOALPOST_WORKTREE_ROOT = tmp_path / "worktrees"


@pytest.fixture
def latest_schema_after():
    """Migrate the test database back to the latest schema after a test that migrated it elsewhere."""
    yield
    migrate_to_latest()


# --- people by role: each signs in with password_for(username), "owner" with "owner-pass-123" -------------------------


@pytest.fixture
def owner(db):
    """The person whose goals they are."""
    return make_user("owner")


@pytest.fixture
def approver(db):
    """A person who answers the goal's approval requests (the goal fixture names them)."""
    return make_user("approver")


@pytest.fixture
def viewer(goal):
    """A person who sees the goal and its requests but decides nothing: one of the goal's viewers."""
    user = make_user("viewer")
    goal.viewers.add(user)
    return user


@pytest.fixture
def outsider(db):
    """A signed-in person with no part in the goal: gets 404s, never a hint."""
    return make_user("outsider")


@pytest.fixture
def staff(db):
    """Staff (not a superuser): registers repositories and agent profiles, sees every enabled one."""
    return make_user("staff", is_staff=True)


@pytest.fixture
def as_owner(client, owner):
    """The test client, signed in as the owner."""
    client.force_login(owner)
    return client


# --- repositories, profiles and goals ---------------------------------------------------------------------------------


@pytest.fixture
def git_repo(tmp_path):
    """A real git repository with a `main` branch holding one commit: app.py prints hello."""
    return make_git_repo(tmp_path / "repo")


@pytest.fixture
def shop_repo(tmp_path):
    """The loop's shop repository: total() and its passing test (tests.factories.make_shop_repo)."""
    return make_shop_repo(tmp_path / "shop")


@pytest.fixture
def repository(owner, git_repo):
    """git_repo, registered and usable by the owner."""
    return registered_repository(git_repo, users=[owner])


@pytest.fixture
def make_repository(db):
    """make_repository(path, users=[…], groups=[…], enabled=…, …): a registered repository."""
    return factories.registered_repository


@pytest.fixture
def make_profile(db):
    """make_profile(adapter="command", preset="codex", users=[…], …): tests.factories.make_profile."""
    return factories.make_profile


@pytest.fixture
def goal(owner, approver, git_repo):
    """The owner's draft goal on git_repo, with the approver named: a good contract, the scripted agent."""
    return make_goal(owner, git_repo, approvers=[approver])


@pytest.fixture
def running(goal):
    """The goal running, with `secrets/**` protected: what an agent attached to it works under."""
    goal.status = GoalStatus.RUNNING
    goal.protected_paths = ["secrets/**"]
    goal.save()
    return goal


@pytest.fixture
def agent_token(goal, owner):
    """(token, secret) of an agent token for the goal, issued by its owner (the secret is never stored)."""
    return AgentToken.issue(goal, owner)


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


@pytest.fixture
def world(goal, owner, approver, viewer, outsider, agent_token) -> World:
    """The goal with every kind of person around it, a pending step request with a diff, the agent's token and a
    spare one, an always-allow rule, the owner's phone and a live worker: see tests.factories.World."""
    Step.objects.create(goal=goal, number=1, status="waiting", diff=GREETING_PATCH, diff_stats={"files": 1})
    request = ApprovalRequest.open(goal, "step", summary="1 file", step_number=1)
    spare_token = AgentToken.issue(goal, owner, name="spare")[0]
    rule = AlwaysAllowRule.objects.create(goal=goal, kind="path", value="docs/**", created_by=owner)
    device = PushSubscription.objects.create(
        user=owner, endpoint="https://push.example.invalid/owner", p256dh="x", auth="y"
    )
    WorkerHeartbeat.beat("security-tests")
    users = {"owner": owner, "approver": approver, "viewer": viewer, "outsider": outsider}
    return World(goal, users, request, agent_token[1], spare_token, rule, device)


# --- real processes and the far edge's fakes -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_url(django_db_setup, django_db_blocker):
    """A real daphne on a free port, serving the test database, for the module's tests."""
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    with running_daphne(database_url) as (url, _):
        yield url


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """Static files collected once per test process, as `make run` does (daphne serves them with DEBUG off)."""
    return collect_static(tmp_path_factory.mktemp("static"))


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of the test's own, on a free port, that the test may stop and start again."""
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def stack(private_redis, tmp_path, collected_static):
    """daphne, celery workers and beat on the test database and the private Redis, as the test starts them."""
    processes = Stack(private_redis.url, tmp_path, collected_static)
    yield processes
    processes.stop()


@pytest.fixture
def fake(settings):
    """The local push service of tests/support/fake_push.py (VAPID, aes128gcm); a test ends with no violation."""
    with FakePushService(settings.VAPID_PUBLIC_KEY) as service:
        yield service
    assert service.violations == []


@pytest.fixture
def fake_codex_app_server() -> Path:
    """The fake `codex app-server` (run it with this Python): the far edge of the Codex bridge's tests."""
    return CODEX_APP_SERVER


# --- the real agent clients (tests/support/agent_clients.py) -------------------------------------------------------


@pytest.fixture(scope="session")
def codex_cli() -> Path:
    """The real Codex CLI from npm, at the pinned version (the newest under `make agents-check`)."""
    return agent_clients.executable("codex")


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The real Claude Code from npm, at the pinned version (the newest under `make agents-check`)."""
    return agent_clients.executable("claude")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """This test process opens its connections without psycopg's pool. Test scaffolding (threads of cross-thread
    tests, in-process servers) uses the ORM from threads that end without giving their connection back, which
    over a whole run drains a pool of 20 and stalls a later test for 30 s. The processes the tests start (daphne,
    celery workers) read the settings themselves and pool as in production; tests/faults/test_pooled_connections.py
    measures them."""
    from django.conf import settings

    settings.DATABASES["default"].get("OPTIONS", {}).pop("pool", None)

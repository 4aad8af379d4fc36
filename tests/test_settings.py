import os
import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import INSTANCE_PATTERN, celery_broker_url, database_from_env, instance_from_env
from tests.support.processes import run_python

SHOW_SETTINGS = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup()
from django.conf import settings as s
print(s.DEBUG, s.DATABASES["default"]["ENGINE"], s.REDIS_URL, s.PORT, s.CELERY_BROKER_URL, len(s.SECRET_KEY) >= 50)
"""


def test_settings_load_with_no_environment_at_all(tmp_path):
    result = run_python(SHOW_SETTINGS, {"GOALPOST_VAR_DIR": str(tmp_path / "var")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "False", "django.db.backends.sqlite3", "redis://127.0.0.1:6379/0", "8000", "redis://127.0.0.1:6379/0", "True",
    ]


def test_settings_load_with_an_empty_environment_and_the_default_var_dir():
    result = run_python(SHOW_SETTINGS, {})
    assert result.returncode == 0, result.stderr


def test_secret_key_is_generated_once_and_kept_private(tmp_path):
    env = {"GOALPOST_VAR_DIR": str(tmp_path)}
    code = "import config.settings as s; print(s.SECRET_KEY)"
    first = run_python(code, env).stdout.strip()
    second = run_python(code, env).stdout.strip()
    assert first and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_sqlite_default_uses_wal(tmp_path):
    code = SHOW_SETTINGS.replace("print(", "from django.db import connection\nc = connection.cursor()\n"
                                 "c.execute('PRAGMA journal_mode')\nprint(c.fetchone()[0]) or print(")
    result = run_python(code, {"GOALPOST_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "wal"


def test_deploy_check_is_clean_with_the_documented_production_variables(tmp_path):
    env = {
        "GOALPOST_VAR_DIR": str(tmp_path),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "goalpost.example.com",
        "GOALPOST_HTTPS": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    result = run_python("", env, "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_deploy_checks_still_find_the_security_and_csrf_middleware(tmp_path):
    """Without the production variables, the warnings Django gives for its own middleware's settings remain."""
    env = {"GOALPOST_VAR_DIR": str(tmp_path), "SECRET_KEY": secrets.token_urlsafe(50)}
    result = run_python("", env, "manage.py", "check", "--deploy")
    for warning in ("security.W004", "security.W008", "security.W016"):
        assert warning in result.stderr + result.stdout, warning
    assert "goalpost.W001" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("redis_url", "broker"),
    [
        pytest.param("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", id="tcp is unchanged"),
        pytest.param("unix:///work/var/redis.sock", "redis+socket:///work/var/redis.sock", id="unix socket for kombu"),
        pytest.param("unix:///s.sock?db=2", "redis+socket:///s.sock?db=2", id="socket keeps its query"),
    ],
)
def test_celery_broker_url_from_redis_url(redis_url, broker):
    assert celery_broker_url(redis_url) == broker


def test_makemigrations_is_clean(tmp_path):
    result = run_python("", {"GOALPOST_VAR_DIR": str(tmp_path)}, "manage.py", "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_migrations_apply_forwards_and_backwards_on_sqlite(tmp_path):
    env = {"GOALPOST_VAR_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.sqlite3"}
    for args in (["migrate"], ["migrate", "goals", "zero"], ["migrate"]):
        result = run_python("", env, "manage.py", *args, "--noinput", "-v", "0")
        assert result.returncode == 0, result.stderr


def test_migrations_apply_forwards_and_backwards_on_postgresql(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    name = f"goalpost_migrate_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({error})")
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"GOALPOST_VAR_DIR": str(tmp_path), "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{name}"}
        for args in (["migrate"], ["migrate", "goals", "zero"], ["migrate"]):
            result = run_python("", env, "manage.py", *args, "--noinput", "-v", "0")
            assert result.returncode == 0, result.stderr
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def sqlite(name: str) -> dict:
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}


def postgres(name: str, host: str = "127.0.0.1", port: str = "5432") -> dict:
    return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "HOST": host, "PORT": port}


@pytest.mark.parametrize(
    ("first", "second", "same"),
    [
        pytest.param(sqlite("/srv/a.sqlite3"), sqlite("/srv/b.sqlite3"), False, id="two-sqlite-files"),
        pytest.param(sqlite("/srv/a.sqlite3"), sqlite("/srv/../srv/a.sqlite3"), True, id="one-file-two-spellings"),
        pytest.param(postgres("goalpost"), postgres("goalpost_2"), False, id="two-postgres-databases"),
        pytest.param(postgres("goalpost"), postgres("goalpost", host="db.internal"), False, id="two-postgres-hosts"),
        pytest.param(postgres("goalpost"), postgres("goalpost", port="5433"), False, id="two-postgres-ports"),
        pytest.param(postgres("goalpost"), postgres("goalpost"), True, id="one-database"),
    ],
)
def test_the_instance_follows_the_database(monkeypatch, first, second, same):
    monkeypatch.delenv("GOALPOST_INSTANCE", raising=False)
    names = instance_from_env(first), instance_from_env(second)
    assert (names[0] == names[1]) is same
    assert all(INSTANCE_PATTERN.fullmatch(name) for name in names)


def test_goalpost_instance_names_it_and_must_be_safe_for_keys_and_paths(monkeypatch):
    monkeypatch.setenv("GOALPOST_INSTANCE", "Staging-2")
    assert instance_from_env(sqlite("/srv/a.sqlite3")) == "staging-2"
    for bad in ("../up", "a b", "a:b", "x" * 33, "-lead"):
        monkeypatch.setenv("GOALPOST_INSTANCE", bad)
        with pytest.raises(ImproperlyConfigured):
            instance_from_env(sqlite("/srv/a.sqlite3"))

@pytest.mark.parametrize(
    ("env", "pool"),
    [
        pytest.param({}, None, id="sqlite has no pool"),
        pytest.param(
            {"DATABASE_URL": "postgres://u@db:5432/goalpost"},
            {"min_size": 1, "max_size": 20, "timeout": 30},
            id="postgresql pools by default",
        ),
        pytest.param(
            {"DATABASE_URL": "postgres://u@db:5432/goalpost", "GOALPOST_DB_POOL_MIN": "2",
             "GOALPOST_DB_POOL_MAX": "8", "GOALPOST_DB_POOL_TIMEOUT": "5"},
            {"min_size": 2, "max_size": 8, "timeout": 5},
            id="the pool's size and wait from the environment",
        ),
    ],
)
def test_postgresql_connections_are_pooled_per_process(monkeypatch, tmp_path, env, pool):
    monkeypatch.setattr("config.settings.VAR_DIR", tmp_path)
    for name in ("DATABASE_URL", "GOALPOST_DB_POOL_MIN", "GOALPOST_DB_POOL_MAX", "GOALPOST_DB_POOL_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    database = database_from_env()
    assert database["OPTIONS"].get("pool") == pool
    assert database["CONN_MAX_AGE"] == 0  # Django refuses a pool beside persistent connections

"""Goalpost settings: every knob comes from an environment variable with a safe default.

Production: set SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, REDIS_URL and GOALPOST_HTTPS=1 (see docs/deploy.md);
`python manage.py check --deploy` is then clean.
"""

import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.management.utils import get_random_secret_key
from redis.exceptions import ConnectionError as RedisConnectionError

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("GOALPOST_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    return value in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_secret(name: str, filename: str) -> str:
    """The variable's value, else a secret generated once and kept in var/ (readable by the owner only)."""
    value = os.environ.get(name, "").strip()
    if value:
        return value
    path = VAR_DIR / filename
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    secret = get_random_secret_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret


SECRET_KEY = env_secret("SECRET_KEY", "secret_key")
# Encrypts the secrets staff store in the database (forge tokens, model API keys): separate from SECRET_KEY so a
# database dump alone reveals none of them and rotating SECRET_KEY (sessions) loses none of them.
GOALPOST_FIELD_KEY = env_secret("GOALPOST_FIELD_KEY", "field_key")
DEBUG = env_bool("DEBUG")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
PORT = env_int("PORT", 8000)

# HTTPS hardening follows an explicit production switch, not `not DEBUG`: `make run` over plain http on a
# phone in the same network must keep working.
HTTPS = env_bool("GOALPOST_HTTPS")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("GOALPOST_BEHIND_PROXY"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "template_partials",
    "channels",
    "axes",
    "csp",
    "config.apps.GoalpostConfig",
    "goals",
    "approvals",
    "gateway",
]

# Django's middleware, through config/middleware.py where its hooks would otherwise take a thread for the whole of
# a request that waits (XFrameOptionsMiddleware runs after the view only). The deploy checks that look for the
# security and CSRF middleware by their dotted paths run in config/checks.py instead.
MIDDLEWARE = [
    "config.middleware.SecurityMiddleware",
    "config.middleware.StaticFilesMiddleware",
    "config.middleware.SessionMiddleware",
    "config.middleware.CommonMiddleware",
    "config.middleware.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.LoginRequiredMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W003"]
# Every body, a form's or the API's, is at most 1 MB (config.bodies.MAX_BODY_BYTES, the limit goalpost_client trims
# to); more answers 413 with a JSON reason (config.bodies.bad_request), Claude Code's hook a deny.
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "approvals.context_processors.pending_count",
            ],
        },
    }
]


def database_from_env() -> dict:
    url = env_str("DATABASE_URL")
    if not url:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{VAR_DIR / 'goalpost.sqlite3'}"
    config = dj_database_url.parse(url, conn_max_age=0, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets the web process read while a worker writes; IMMEDIATE takes the write lock up front so
        # two writers queue on the timeout instead of failing with "database is locked" mid-transaction.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        # A file, not :memory:, so a daphne or celery process started by a test sees the test database.
        # One per process: two test runs side by side must not share a file.
        config["TEST"] = {"NAME": str(VAR_DIR / f"test-goalpost-{os.getpid()}.sqlite3")}
    elif config["ENGINE"] == "django.db.backends.postgresql":
        # One pool per process (docs/deploy.md, "Connections", sizes it): a burst of requests queues for a
        # connection instead of opening one each and running PostgreSQL out of them. Workers' forked children
        # open their own (config/celery.py).
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": env_int("GOALPOST_DB_POOL_MIN", 1),
            "max_size": env_int("GOALPOST_DB_POOL_MAX", 20),
            "timeout": env_int("GOALPOST_DB_POOL_TIMEOUT", 30),
        }
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTANCE_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def instance_from_env(database: dict) -> str:
    """This Goalpost's name among others on one Redis or one var/: GOALPOST_INSTANCE, else a short hash of the
    database's identity (engine, host, port and name; a SQLite file by its absolute path). Queue names, broker
    keys, the channel layer's prefix and worktree folders all carry it, so two instances never share work."""
    value = env_str("GOALPOST_INSTANCE").lower()
    if value:
        if not INSTANCE_PATTERN.fullmatch(value):
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "GOALPOST_INSTANCE: 1-32 of a-z, 0-9, '-' and '_', starting with a letter or digit."
            )
        return value
    name = str(database.get("NAME") or "")
    if database["ENGINE"] == "django.db.backends.sqlite3" and name and name != ":memory:":
        name = str(Path(name).expanduser().resolve())
    identity = "|".join([database["ENGINE"], str(database.get("HOST") or ""), str(database.get("PORT") or ""), name])
    return hashlib.sha256(identity.encode()).hexdigest()[:10]


GOALPOST_INSTANCE = instance_from_env(DATABASES["default"])
# The keys Goalpost itself writes in Redis (which workers and beats are alive) start with this.
GOALPOST_REDIS_PREFIX = f"goalpost-{GOALPOST_INSTANCE}:"
# Set by `make run`'s launcher for its children: the JSON file where it says which of them are up.
GOALPOST_LAUNCHER_STATUS = env_str("GOALPOST_LAUNCHER_STATUS")


def redis_url_from_env() -> str:
    return env_str("REDIS_URL", "redis://127.0.0.1:6379/0")


def celery_broker_url(redis_url: str) -> str:
    """kombu names a unix socket `redis+socket://`; redis-py and channels-redis say `unix://`."""
    parsed = urlparse(redis_url)
    if parsed.scheme == "unix":
        query = f"?{parsed.query}" if parsed.query else ""
        return f"redis+socket://{parsed.path}{query}"
    return redis_url


REDIS_URL = redis_url_from_env()

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # A pooled connection that outlived a Redis restart is reopened and the command tried once more,
            # instead of failing the first websocket or broadcast after the restart; a Redis that is down fails fast.
            # Reads wait longer than the layer's 5 s blocking pop (redis-py's default is also 5 s: sockets then
            # closed with 1011 under load).
            "hosts": [
                {
                    "address": REDIS_URL,
                    "socket_connect_timeout": 2,
                    "socket_timeout": 15,
                    "retry_on_error": [RedisConnectionError],
                }
            ],
            "prefix": env_str("GOALPOST_CHANNEL_PREFIX", f"goalpost-{GOALPOST_INSTANCE}"),
        },
    }
}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", celery_broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every key kombu writes (queues, unacked messages, the control and event channels) starts with the instance.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 6 * 60 * 60),
    "global_keyprefix": GOALPOST_REDIS_PREFIX,
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "goals.tasks.record_worker_heartbeat", "schedule": 15.0},
    "expire-approval-requests": {"task": "approvals.tasks.expire_overdue_approval_requests", "schedule": 30.0},
    "requeue-lost-steps": {
        "task": "goals.tasks.requeue_lost_steps",
        "schedule": float(env_int("GOALPOST_REAPER_INTERVAL_S", 30)),
    },
    "find-stalled-goals": {"task": "goals.tasks.find_stalled_goals", "schedule": 60.0},
}
CELERY_TASK_DEFAULT_QUEUE = env_str("GOALPOST_CELERY_QUEUE", f"goalpost-{GOALPOST_INSTANCE}")
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = False

# The goal loop: a worker's lease on a goal (renewed every quarter), the evidence commands' time limit, and
# how long a goal may go without progress (or a request unanswered) before the phone is told it stalled.
GOALPOST_STEP_LEASE_S = env_int("GOALPOST_STEP_LEASE_S", 120)
# A queued step not claimed within this many seconds (a broker that was down, a message lost) is queued again by
# the reaper; whichever message arrives first runs the step, the other claims nothing. 0: max(30 s, the lease).
GOALPOST_REQUEUE_AFTER_S = env_int("GOALPOST_REQUEUE_AFTER_S", 0)
GOALPOST_EVIDENCE_TIMEOUT_S = env_int("GOALPOST_EVIDENCE_TIMEOUT_S", 600)
GOALPOST_STALL_AFTER_MINUTES = env_int("GOALPOST_STALL_AFTER_MINUTES", 30)
GOALPOST_WORKTREE_ROOT = Path(env_str("GOALPOST_WORKTREE_ROOT", str(VAR_DIR / "worktrees")))

# The sandbox (goals/sandbox.py). A worker running as root runs agents and evidence as this uid/gid, which
# must own the worktrees and own nothing else; a worker that is not root runs them as its own user.
GOALPOST_SANDBOX_UID = env_int("GOALPOST_SANDBOX_UID", 10001)
GOALPOST_SANDBOX_GID = env_int("GOALPOST_SANDBOX_GID", 10001)
# Paths hidden inside the sandbox besides var/, /root, /run and the databases' files (comma-separated).
GOALPOST_SANDBOX_HIDE = env_list("GOALPOST_SANDBOX_HIDE", "")
# Folders the agent's box binds read-only even where they lie under a hidden path (comma-separated): an agent
# CLI installed under /root, say. Install agents elsewhere (e.g. /opt) and this stays empty.
GOALPOST_SANDBOX_READ_ONLY = env_list("GOALPOST_SANDBOX_READ_ONLY", "")
# What one step (or one evidence run) may use; 0 turns a limit off.
GOALPOST_SANDBOX_LIMITS = {
    "cpu_seconds": env_int("GOALPOST_SANDBOX_CPU_SECONDS", 600),
    "memory_mb": env_int("GOALPOST_SANDBOX_MEMORY_MB", 2048),
    "processes": env_int("GOALPOST_SANDBOX_PROCESSES", 256),
    "file_size_mb": env_int("GOALPOST_SANDBOX_FILE_SIZE_MB", 512),
    "disk_mb": env_int("GOALPOST_SANDBOX_DISK_MB", 1024),
    "tmp_mb": env_int("GOALPOST_SANDBOX_TMP_MB", 512),
}

# /healthz calls the worker down when its last heartbeat is older than this.
WORKER_HEARTBEAT_MAX_AGE = timedelta(seconds=env_int("GOALPOST_WORKER_HEARTBEAT_MAX_AGE", 60))

# Web Push ----------------------------------------------------------------------------------------------------
# VAPID identifies this server to the browsers' push services. VAPID_PRIVATE_KEY is the raw P-256 private key,
# base64url (what `python manage.py vapid_keys` prints; a PEM key is accepted too). Unset, one is generated
# once into var/ like SECRET_KEY. VAPID_PUBLIC_KEY, the browser's applicationServerKey (the uncompressed point,
# base64url), always follows from the private key; set it too and it must match.


def vapid_private_key_raw(value: str) -> str:
    """The VAPID private key as raw base64url (32 bytes), from raw base64url or PEM."""
    import base64

    from cryptography.hazmat.primitives import serialization

    value = value.strip().replace("\\n", "\n")
    if "-----BEGIN" not in value:
        return value
    key = serialization.load_pem_private_key(value.encode(), password=None)
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def vapid_public_key_for(private_raw: str) -> str:
    """The browser's applicationServerKey for a raw base64url private key."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    number = int.from_bytes(base64.urlsafe_b64decode(private_raw + "=" * (-len(private_raw) % 4)), "big")
    point = ec.derive_private_key(number, ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def env_vapid_private_key() -> str:
    """VAPID_PRIVATE_KEY, else a key generated once and kept in var/ (readable by the owner only)."""
    import base64

    from cryptography.hazmat.primitives.asymmetric import ec

    value = os.environ.get("VAPID_PRIVATE_KEY", "").strip()
    if value:
        return vapid_private_key_raw(value)
    path = VAR_DIR / "vapid_private_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        raw = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process wrote it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    return path.read_text().strip()


VAPID_PRIVATE_KEY = env_vapid_private_key()
VAPID_PUBLIC_KEY = vapid_public_key_for(VAPID_PRIVATE_KEY)
if env_str("VAPID_PUBLIC_KEY", VAPID_PUBLIC_KEY) != VAPID_PUBLIC_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY: set both from one pair.")
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "mailto:admin@localhost")
# Pushes of one fan-out sent at once (each thread keeps one connection per push service). Push services answer
# in tens to hundreds of milliseconds: raise it for many devices; on a local network 2-4 is fastest.
GOALPOST_PUSH_THREADS = max(1, env_int("GOALPOST_PUSH_THREADS", 4))
# Push endpoints are https on public addresses only (approvals.push.endpoint_refusal, checked again at each
# connection). The tests' local fake push service, on http at 127.0.0.1, needs this: never set it in production.
GOALPOST_PUSH_ALLOW_PRIVATE = env_bool("GOALPOST_PUSH_ALLOW_PRIVATE")
# ------------------------------------------------------------------------------------------------ end Web Push

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# A phone stays signed in for a month of use: the session is renewed on every request.
SESSION_COOKIE_AGE = 60 * 60 * 24 * 30
SESSION_SAVE_EVERY_REQUEST = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Pages carry the CSRF token in <body hx-headers>; no script reads the cookie, so scripts may not.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"


def websocket_sources(hosts: list[str], https: bool) -> list[str]:
    """connect-src entries for /ws/ on the allowed hosts (older Safari does not match ws: with 'self').

    CSP has no syntax for an IPv6 literal: such a host relies on 'self'."""
    schemes = ["wss"] if https else ["ws", "wss"]
    if "*" in hosts:
        return [f"{scheme}:" for scheme in schemes]
    names = [f"*{host}" if host.startswith(".") else host for host in hosts if not host.startswith("[")]
    return [f"{scheme}://{name}:*" for scheme in schemes for name in names]


# Content-Security-Policy (django-csp): no inline script or style, no eval, nothing from another origin; see
# docs/security.md. htmx's own indicator <style> and eval are switched off by <meta name="htmx-config">.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", *websocket_sources(ALLOWED_HOSTS, HTTPS)],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
    }
}

# Failed logins: five tries per username and address, then a 15-minute cool-off.
AXES_FAILURE_LIMIT = env_int("GOALPOST_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "servestatic.storage.CompressedManifestStaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = DEBUG

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"redact_secrets": {"()": "config.redact.RedactSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # django.template's DEBUG records carry whole template contexts (a token shown once among them).
    "loggers": {"django.request": {"level": "ERROR"}, "django.template": {"level": "INFO"}},
}

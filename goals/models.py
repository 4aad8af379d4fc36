from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone

from goals import agents, evidence, gates, lint, repopaths
from goals.agents.command import CODEX_DEFAULT_BASE_URL
from goals.fields import EncryptedTextField

RISK_CHOICES = [("low", "Low"), ("medium", "Medium"), ("high", "High")]

WORK_TYPE_CHOICES = [
    ("docs", "Documentation"),
    ("test_repair", "Test repair"),
    ("ui_refactor", "UI refactor"),
    ("auth_billing", "Auth or billing"),
    ("migration", "Data or schema migration"),
    ("other", "Other"),
]

AGENT_CHOICES = [
    ("scripted", "Scripted (replays patches)"),
    ("command", "Command-line agent (Codex CLI, Claude Code, Aider)"),
    ("openai", "OpenAI-compatible endpoint"),
]
PRESET_CHOICES = [("codex", "Codex CLI"), ("claude", "Claude Code"), ("aider", "Aider"), ("custom", "Custom command")]
# Command presets that take the profile's model provider (base URL and key): each is given them its own way.
PROVIDER_PRESETS = frozenset({"codex", "claude"})
FORGE_CHOICES = [("", "None"), ("github", "GitHub"), ("gitlab", "GitLab"), ("gitea", "Gitea")]
# What staff may put in a profile's options, per adapter (the rest of the adapter's settings have fields).
PROFILE_OPTIONS = {
    "scripted": frozenset({"folder", "steps"}),
    "command": frozenset({"command", "timeout_s"}),
    "openai": frozenset({"temperature", "max_tokens", "timeout_s"}),
}
# Script entry keys that read files on the server: only a staff-written profile may give them.
SERVER_PATH_KEYS = frozenset({"patch_file", "folder"})

# Budget name (as the API and the linter say it) -> model field.
BUDGET_FIELDS = {name: f"budget_{name}" for name in lint.BUDGET_NAMES}



# --- repositories and agent profiles: registered by staff, picked by owners -----------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9][A-Za-z0-9.-]*):(?P<path>[^\s]+)$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Names that reach this machine or its private network, refused in an owner's network hosts.
PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".intranet", ".corp")


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def forbidden_roots() -> list[Path]:
    """Goalpost's own checkout and its var/ (the database, SECRET_KEY, worktrees), as typed and resolved."""
    roots = []
    for root in (Path(settings.BASE_DIR), Path(settings.VAR_DIR)):
        roots += [Path(os.path.normpath(os.path.abspath(root))), Path(os.path.realpath(root))]
    return roots


def demo_root() -> Path:
    """Where `manage.py demo` makes its example repositories: the one folder of var/ a repository may live in
    (it holds nothing but those repositories)."""
    return Path(settings.VAR_DIR) / "demo"


def check_local_source(path: str, branch: str) -> str:
    """The repository's top-level path, or ValidationError: it must be a git work tree outside Goalpost's own
    checkout and var/, whether as typed or once symlinks are followed."""
    from goals.workspace import RepositoryError, check_repository  # the worker's git helpers

    typed = Path(os.path.normpath(path))
    candidates = [typed, Path(os.path.realpath(typed))]

    demo = [Path(os.path.normpath(os.path.abspath(demo_root()))), Path(os.path.realpath(demo_root()))]

    def refuse_forbidden(paths: list[Path]) -> None:
        for candidate in paths:
            if any(_inside(candidate, folder) and candidate != folder for folder in demo):
                continue
            if any(_inside(candidate, root) for root in forbidden_roots()):
                raise ValidationError(
                    {"source": f"{path} is inside Goalpost's own files: register a repository elsewhere."}
                )

    refuse_forbidden(candidates)
    try:
        toplevel = check_repository(str(typed), branch)
    except RepositoryError as error:
        field = "default_branch" if error.field == "base_branch" else "source"
        raise ValidationError({field: str(error)}) from error
    refuse_forbidden([Path(toplevel), Path(os.path.realpath(toplevel))])
    return toplevel


def check_remote_source(source: str) -> str:
    """An https://, ssh:// or scp-like (git@host:path) URL, or ValidationError; never file://, ext:: or an
    option."""
    if source.startswith("-") or "::" in source or any(ch.isspace() or ord(ch) < 32 for ch in source):
        raise ValidationError({"source": "Give an absolute path, an https:// or ssh:// URL, or git@host:path."})
    if "://" in source:
        try:
            split = urlsplit(source)
            host = split.hostname or ""
        except ValueError:
            split, host = None, ""
        user = (split.username or "") if split is not None else ""
        as_option = host.startswith("-") or user.startswith("-")  # ssh would read it as an option
        if split is None or split.scheme not in ("https", "ssh") or not host or as_option:
            raise ValidationError({"source": "Only https:// and ssh:// URLs are accepted (not file://, git://, http://)."})
        if split.password:  # it would show on every goal page: a token belongs in forge_token, encrypted
            raise ValidationError({"source": "Leave the password or token out of the URL: set the forge token."})
        return source
    match = _SCP_LIKE.match(source)
    if match is None or match["path"].startswith("-"):
        raise ValidationError({"source": "Give an absolute path, an https:// or ssh:// URL, or git@host:path."})
    return source


def _is_http_url(url: str) -> bool:
    try:
        split = urlsplit(url)
        return split.scheme in ("http", "https") and bool(split.hostname)
    except ValueError:
        return False


def _is_branch_name(name: str) -> bool:
    if not name or name.startswith("-"):
        return False
    check = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, timeout=10)
    return check.returncode == 0


def check_host_port(entry: object, *, public_only: bool) -> str:
    """A "host:port" network destination, or ValueError saying what is wrong. With ``public_only`` (what an
    owner writes), IP literals and names of this machine or a private network are refused."""
    if not isinstance(entry, str) or not entry.strip():
        raise ValueError("Write each one as host:port, like pypi.org:443.")
    host, sep, port = entry.strip().rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"“{entry}” is not host:port (a port from 1 to 65535), like pypi.org:443.")
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(bare)
        literal = True
    except ValueError:
        literal = False
    if literal:
        if public_only:
            raise ValueError(f"“{entry}”: name a host, not an IP address.")
        return f"{host}:{int(port)}"
    if not _HOST.match(host):
        raise ValueError(f"“{host}” is not a host name.")
    name = host.lower().rstrip(".")
    if public_only and (name == "localhost" or "." not in name or name.endswith(PRIVATE_SUFFIXES)):
        raise ValueError(f"“{host}” names this machine or a private network: only public hosts are allowed.")
    return f"{name}:{int(port)}"


def _users_and_groups_q(model, user) -> Q:
    """Rows of `model` listing the user, directly or through one of their groups."""
    direct = model.users.through.objects.filter(user=user).values(f"{model._meta.model_name}_id")
    via_groups = model.groups.through.objects.filter(group__user=user).values(f"{model._meta.model_name}_id")
    return Q(pk__in=direct) | Q(pk__in=via_groups)


def _listed_directly_q(model, user) -> Q:
    return Q(pk__in=model.users.through.objects.filter(user=user).values(f"{model._meta.model_name}_id"))


class RepositoryQuerySet(models.QuerySet):
    def usable_by(self, user) -> RepositoryQuerySet:
        """See Repository's docstring for the rule."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_staff or user.is_superuser:
            enabled = Q(enabled=True)
        else:
            enabled = Q(enabled=True) & _users_and_groups_q(Repository, user)
        return self.filter(enabled | (Q(enabled=False) & _listed_directly_q(Repository, user)))


class Repository(models.Model):
    """A git repository staff registered for goals to work on: a local work tree or a URL to mirror.

    Who may point a goal at it (`Repository.objects.usable_by(user)`):
    - an ENABLED repository: the users listed on it, and the members of the groups listed on it; staff and
      superusers may use every enabled repository. Nobody listed means staff only.
    - a DISABLED repository: only the users listed on it directly (not through a group, not staff as such).
      The migration from typed paths registers the old paths disabled and lists the goals' owners, so their
      goals keep working until staff review and enable them.
    """

    name = models.CharField(max_length=100, unique=True)
    source = models.CharField(
        max_length=1000,
        unique=True,
        help_text="An absolute path to a git work tree on this server, or an https://, ssh:// or git@host:path URL.",
    )
    default_branch = models.CharField(max_length=255, default="main")
    enabled = models.BooleanField(default=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="repositories")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="repositories")
    forge = models.CharField(max_length=10, choices=FORGE_CHOICES, blank=True)
    forge_url = models.URLField("forge API URL", blank=True, help_text="e.g. https://api.github.com")
    forge_project = models.CharField(max_length=200, blank=True, help_text="e.g. owner/name")
    forge_token = EncryptedTextField(blank=True, help_text="Stored encrypted; never shown again.")
    test_paths = models.TextField(
        blank=True,
        help_text="Where tests live, one gitignore-style pattern a line (e.g. /testing/ or *_check.py). Blank: "
        "what the repository's pytest / package.json config says, besides the built-in tests/, test/, spec/ ….",
    )
    generated_paths = models.TextField(
        blank=True,
        help_text="Generated files, one pattern a line; the gates stop on an edit. Blank: what .gitattributes "
        "marks linguist-generated, besides the built-in dist/, *_pb2.py, *.min.js ….",
    )
    vendored_paths = models.TextField(
        blank=True,
        help_text="Vendored copies of other projects, one pattern a line; the gates stop on an edit. Blank: what "
        ".gitattributes marks linguist-vendored, besides the built-in vendor/, _vendor/, third_party/, packages/ "
        "…; write !packages/ when packages/ holds the project's own code.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = RepositoryQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "repositories"

    def __str__(self) -> str:
        return self.name

    @property
    def is_url(self) -> bool:
        from goals.workspace import is_url  # the worker's own reading of a source, so both always agree

        return is_url(self.source)

    @property
    def mirror_name(self) -> str:
        """The folder of Goalpost's own copy (a bare mirror) of the repository, local or remote, in var/repos/."""
        slug = re.sub(r"[^\w.-]+", "_", self.source).strip("_")[-80:] or "repository"
        return f"{self.pk}-{slug}.git"

    @property
    def mirror_dir(self) -> Path:
        """Where the worker keeps its mirror of the repository (goals take their objects from it)."""
        return Path(settings.VAR_DIR) / "repos" / self.mirror_name

    def clean(self) -> None:
        self.source = (self.source or "").strip()
        if not self.source:
            raise ValidationError({"source": "Give a path or a URL."})
        if self.forge_url and not _is_http_url(self.forge_url):
            raise ValidationError({"forge_url": "Use an http(s) URL."})
        if self.source.startswith("/"):
            self.source = check_local_source(self.source, self.default_branch)
        else:
            self.source = check_remote_source(self.source)
            if not _is_branch_name(self.default_branch):
                raise ValidationError({"default_branch": f"“{self.default_branch}” is not a valid branch name."})


class AgentProfileQuerySet(models.QuerySet):
    def usable_by(self, user) -> AgentProfileQuerySet:
        """See AgentProfile's docstring for the rule."""
        if not getattr(user, "is_authenticated", False):
            return self.none()
        if user.is_staff or user.is_superuser:
            enabled = Q(enabled=True)
        else:
            nobody_listed = ~Q(pk__in=AgentProfile.users.through.objects.values("agentprofile_id")) & ~Q(
                pk__in=AgentProfile.groups.through.objects.values("agentprofile_id")
            )
            enabled = Q(enabled=True) & (nobody_listed | _users_and_groups_q(AgentProfile, user))
        return self.filter(enabled | (Q(enabled=False) & _listed_directly_q(AgentProfile, user)))


class AgentProfile(models.Model):
    """An agent set up by staff: the adapter, its executable or endpoint, its key, its egress and options.
    Owners pick a profile and, at most, one of its models (and, for a scripted profile, their own script).

    Who may pick it (`AgentProfile.objects.usable_by(user)`):
    - an ENABLED profile with no users and no groups listed: every signed-in user;
    - an ENABLED profile with users or groups listed: those users and the groups' members; staff and
      superusers may pick every enabled profile;
    - a DISABLED profile: only the users listed on it directly (how migrated goals keep their agent).
    """

    name = models.CharField(max_length=100, unique=True)
    adapter = models.CharField(max_length=20, choices=AGENT_CHOICES, default="scripted")
    preset = models.CharField(max_length=20, choices=PRESET_CHOICES, blank=True, help_text="Command agents only.")
    executable = models.CharField(
        max_length=1000, blank=True, help_text="Command agents: the program to run (default: the preset's)."
    )
    # A CharField checked in clean(): staff may name a single-label host (a container's name), which URLField refuses.
    base_url = models.CharField(
        "base URL",
        max_length=500,
        blank=True,
        help_text="The model API: an OpenAI-compatible endpoint (e.g. http://127.0.0.1:11434/v1); for Codex, a "
        "Responses API base URL; for Claude Code, an Anthropic Messages API base URL (empty: the vendor's own).",
    )
    api_key = EncryptedTextField("API key", blank=True, help_text="Stored encrypted; never shown again.")
    api_key_env = models.CharField(
        "API key variable",
        max_length=100,
        blank=True,
        help_text="Or: the name of a server environment variable holding the key.",
    )
    egress_hosts = models.JSONField(
        default=list, blank=True, help_text='"host:port" entries the agent may reach, e.g. ["api.openai.com:443"].'
    )
    extra_args = models.JSONField(default=list, blank=True, help_text="Command agents: extra arguments.")
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Adapter options: timeout_s; temperature, max_tokens (openai); command (the custom argv, with '
        '"{prompt}"); folder (scripted).',
    )
    run_unsandboxed = models.BooleanField(
        default=False,
        help_text="DANGER: run this agent WITHOUT the sandbox, with the worker's own rights over the whole server. "
        "Only for an agent you trust as much as the server itself.",
    )
    enabled = models.BooleanField(default=True)
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="agent_profiles")
    groups = models.ManyToManyField("auth.Group", blank=True, related_name="agent_profiles")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # Last: from here on in this class body, `models` names the field, not django.db.models.
    models = models.JSONField(
        default=list,
        blank=True,
        help_text='Model names owners may pick from, e.g. ["gpt-5-codex"]; empty: the adapter\'s default.',
    )

    objects = AgentProfileQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.adapter == "command":
            if not self.preset:
                errors["preset"] = "Choose how to call the command-line agent."
        elif self.preset or self.executable or self.extra_args:
            errors["preset"] = "Preset, executable and extra arguments are for command agents only."
        if self.adapter == "openai":
            if not self.base_url:
                errors["base_url"] = "Name the endpoint, e.g. http://127.0.0.1:11434/v1."
            elif not _is_http_url(self.base_url):
                errors["base_url"] = "Use an http(s) URL, like http://127.0.0.1:11434/v1."
            if not self.models:
                errors["models"] = "Name at least one model."
        elif self.base_url and not _is_http_url(self.base_url):
            errors["base_url"] = "Use an http(s) URL, like http://127.0.0.1:8080/v1."
        if (self.base_url or self.api_key or self.api_key_env) and not self.takes_provider():
            errors["base_url"] = "Endpoint and key are for OpenAI-compatible agents and the Codex and Claude Code " \
                "presets."
        if self.api_key and self.api_key_env:
            errors["api_key_env"] = "Give the key or the variable's name, not both."
        if self.api_key_env and not _ENV_NAME.match(self.api_key_env):
            errors["api_key_env"] = "An environment variable name: letters, digits and _."
        if not isinstance(self.models, list) or not all(isinstance(m, str) and m.strip() for m in self.models):
            errors["models"] = 'A JSON list of model names, e.g. ["gpt-5-codex"].'
        if not isinstance(self.extra_args, list) or not all(isinstance(a, str) for a in self.extra_args):
            errors["extra_args"] = "A JSON list of strings."
        if not isinstance(self.egress_hosts, list):
            errors["egress_hosts"] = 'A JSON list of "host:port" entries.'
        else:
            try:
                self.egress_hosts = [check_host_port(e, public_only=False) for e in self.egress_hosts]
            except ValueError as error:
                errors["egress_hosts"] = str(error)
        if not isinstance(self.options, dict):
            errors["options"] = "A JSON object."
        else:
            unknown = sorted(set(self.options) - PROFILE_OPTIONS.get(self.adapter, frozenset()))
            if unknown:
                allowed = ", ".join(sorted(PROFILE_OPTIONS.get(self.adapter, ()))) or "none"
                errors["options"] = f"Unknown option {', '.join(unknown)} for this adapter (allowed: {allowed})."
        if errors:
            raise ValidationError(errors)
        try:  # what the adapter itself says of these settings (a custom argv without "{prompt}", a bad folder…)
            agents.get_agent(self.adapter, self.adapter_settings(None, api_key="checked"))
        except agents.AgentError as error:
            raise ValidationError({"options": error.message}) from error

    def cannot_run_here(self, *, goal_script: bool = False) -> str:
        """Why this profile cannot run a step on this server, or "": a scripted profile with nothing to replay
        (``goal_script``: the goal brings its own script), a command agent whose program is not installed."""
        options = self.options if isinstance(self.options, dict) else {}
        if self.adapter == "scripted":
            if options.get("folder") or options.get("steps") or goal_script:
                return ""
            return f"{self.name} has no script to replay: write one for the goal, or choose another agent."
        if self.adapter == "command":
            from goals.agents.command import PRESETS

            command = options.get("command") if self.preset == "custom" else None
            preset = PRESETS.get(self.preset or "custom")
            program = self.executable or (command[0] if isinstance(command, list) and command else "")
            program = program or (preset.executable if preset else "")
            if not program:
                return f"{self.name} names no program to run."
            if shutil.which(program) is None:
                return f"{self.name} needs {program}, which is not installed on this server."
        return ""

    def takes_provider(self) -> bool:
        """Whether the adapter is given the profile's base URL and key."""
        return self.adapter == "openai" or (self.adapter == "command" and self.preset in PROVIDER_PRESETS)

    def provider_host(self) -> str:
        """Where the adapter's model API lives, as an egress entry ("host:port"), or "" when it takes none: the
        base URL's host, or the vendor's own for a Codex profile that names only a key. The agent may always
        reach it (Goal.egress), and nothing else unless staff list it."""
        if not self.takes_provider() or not (self.base_url or self.api_key or self.api_key_env):
            return ""
        url = self.base_url or (CODEX_DEFAULT_BASE_URL if self.preset == "codex" else "")
        if not url:
            return ""
        split = urlsplit(url)
        if not split.hostname:
            return ""
        try:
            port = split.port or (443 if split.scheme == "https" else 80)
        except ValueError:  # a port out of range: no host to allow
            return ""
        host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
        return f"{host}:{port}"

    def resolve_api_key(self) -> str:
        """The key the worker sends: the stored secret, else the staff-named variable's value. Never logged."""
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env, "")
        return ""

    def adapter_settings(self, goal: Goal | None, *, api_key: str | None = None) -> dict:
        """The settings the adapter class takes (goals/agents: `allowed_settings`), from this staff-written
        profile plus what the goal's owner may choose: one of `models`, and for a scripted profile the steps."""
        options = dict(self.options or {})
        model = (goal.agent_model if goal else "") or (self.models[0] if self.models else "")
        if goal is not None and goal.agent_model and goal.agent_model not in self.models:
            raise agents.AgentError(f"The profile {self.name} offers no model {goal.agent_model!r}.", permanent=True)
        if self.adapter == "scripted":
            if "folder" in options:
                return {"folder": options["folder"]}
            steps = list(goal.agent_script) if goal is not None and goal.agent_script else options.get("steps", [])
            if goal is not None and goal.agent_script:
                check_script(goal.agent_script)
            return {"steps": steps}
        if self.adapter == "command":
            settings_: dict = {"preset": self.preset or "custom"}
            if self.executable:
                settings_["executable"] = self.executable
            args = list(self.extra_args or [])
            if model and self.preset != "custom":
                args += ["--model", model]
            if args:
                settings_["args"] = args
            for key in ("command", "timeout_s"):
                if key in options:
                    settings_[key] = options[key]
            if self.preset in PROVIDER_PRESETS and (self.base_url or self.api_key or self.api_key_env):
                key = self.resolve_api_key() if api_key is None else api_key
                settings_["provider"] = {"base_url": self.base_url, "api_key": key}
            return settings_
        if self.adapter == "openai":
            settings_ = {"base_url": self.base_url, "model": model}
            settings_["api_key"] = self.resolve_api_key() if api_key is None else api_key
            for key in ("temperature", "max_tokens", "timeout_s"):
                if key in options:
                    settings_[key] = options[key]
            return settings_
        return dict(options)


def check_script(script: object) -> list:
    """An owner's script for a scripted profile: a JSON list of entries that read no file on the server."""
    if not isinstance(script, list) or not all(isinstance(entry, dict) for entry in script):
        raise agents.AgentError("The script must be a JSON list of step objects.", permanent=True)
    for number, entry in enumerate(script, start=1):
        named = sorted(SERVER_PATH_KEYS & set(entry))
        if named:
            raise agents.AgentError(
                f"Script step {number}: {', '.join(named)} reads files on the server; only staff profiles may.",
                permanent=True,
            )
    return script


class GoalStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    READY = "ready", "Ready"
    RUNNING = "running", "Running"
    WAITING = "waiting", "Waiting for a human"
    STALLED = "stalled", "Stalled"
    PAUSED = "paused", "Paused"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class OnTimeout(models.TextChoices):
    DENY_AND_PAUSE = "deny_and_pause", "Deny the step and pause the goal"
    DENY_AND_CONTINUE = "deny_and_continue", "Deny the step; the agent tries another way"


class GoalNotReady(Exception):
    """Raised when a goal with blocking lint findings is asked to leave draft."""

    def __init__(self, findings: list[lint.Finding]):
        self.findings = findings
        super().__init__("; ".join(f.message for f in findings if f.severity == lint.BLOCKING))


def _approved_by(user):
    """The ids of the goals a user approves for, as a subquery on the approvers table's user index.

    Joining the approvers and filtering `owner OR approver` needs DISTINCT and defeats the indexes (PostgreSQL scans
    every goal: ~70 ms per query at 10,000 goals); `owner OR id IN (…)` uses both indexes and returns each goal once.
    """
    return Goal.approvers.through.objects.filter(user=user).values("goal_id")


class GoalQuerySet(models.QuerySet):
    def visible_to(self, user) -> GoalQuerySet:
        """Goals a user owns, approves for or watches as a viewer; nobody else's."""
        if not user.is_authenticated:
            return self.none()
        watched = Goal.viewers.through.objects.filter(user=user).values("goal_id")
        return self.filter(Q(owner=user) | Q(pk__in=_approved_by(user)) | Q(pk__in=watched))

    def decidable_by(self, user) -> GoalQuerySet:
        """Goals whose requests a user answers: the ones they own or approve for (viewers only watch)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(Q(owner=user) | Q(pk__in=_approved_by(user)))


class Goal(models.Model):
    """A durable goal: the contract an agent works under, with its budgets and its reviewers."""

    title = models.CharField(max_length=200)
    objective = models.TextField(
        help_text="The measurable target: a number with a unit, a named test, or an end state."
    )
    constraints = models.JSONField(default=list, blank=True, help_text="What the agent must not change.")
    evidence = models.JSONField(
        default=list,
        blank=True,
        help_text='Checks: {"kind": "command", "command": "…", "expect_exit": 0} or {"kind": "manual", …}.',
    )
    done_criteria = models.TextField(blank=True)
    rollback_note = models.TextField(blank=True)

    work_type = models.CharField(max_length=20, choices=WORK_TYPE_CHOICES, default="other")
    risk = models.CharField(max_length=10, choices=RISK_CHOICES, default="medium")

    budget_minutes = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["minutes"], verbose_name="wall-clock minutes"
    )
    budget_steps = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["steps"], verbose_name="steps"
    )
    budget_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["tokens"], verbose_name="tokens"
    )
    budget_files_per_step = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["files_per_step"], verbose_name="files per step"
    )
    budget_files_total = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["files_total"], verbose_name="files in total"
    )
    budget_approvals = models.PositiveIntegerField(
        null=True, blank=True, default=lint.DEFAULT_BUDGETS["approvals"], verbose_name="approvals"
    )
    budget_retries = models.PositiveIntegerField(
        null=True,
        blank=True,
        default=lint.DEFAULT_BUDGETS["retries"],
        verbose_name="retries of the same failure",
        help_text="Retries after a failure first occurs: with 3, the 4th occurrence ends the budget.",
    )
    repeated_failure_threshold = models.PositiveSmallIntegerField(
        default=3,
        verbose_name="ask a human after the same failure",
        help_text="The repeated-failure gate asks a human when one failure occurs this many times.",
    )

    protected_paths = models.JSONField(
        default=list, blank=True, help_text="Glob patterns the agent must not edit."
    )
    scope_paths = models.JSONField(
        default=list,
        blank=True,
        verbose_name="working area",
        help_text="Globs the goal is expected to touch; a change elsewhere proposes a follow-up goal.",
    )
    approval_timeout_minutes = models.PositiveIntegerField(
        default=24 * 60, verbose_name="a request waits for an answer (minutes)"
    )
    on_timeout = models.CharField(
        max_length=20,
        choices=OnTimeout.choices,
        default=OnTimeout.DENY_AND_PAUSE,
        help_text="What an unanswered request becomes. Never an approval.",
    )

    repository = models.ForeignKey(Repository, on_delete=models.PROTECT, related_name="goals")
    base_branch = models.CharField(max_length=255, default="main")
    # What the worker detected from the base commit's config files (goals/repopaths.py): {"sha", "rules"}.
    detected_paths = models.JSONField(default=dict, blank=True, editable=False)

    agent_profile = models.ForeignKey(
        AgentProfile, on_delete=models.PROTECT, related_name="goals", verbose_name="agent"
    )
    agent_model = models.CharField("model", max_length=200, blank=True, help_text="One of the profile's models.")
    agent_script = models.JSONField(
        "script", default=list, blank=True, help_text="Scripted agents: the steps to replay, a JSON list."
    )
    network_hosts = models.JSONField(
        default=list,
        blank=True,
        help_text='Public "host:port" the agent and the evidence commands may reach, besides the profile\'s own.',
    )

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="goals")
    approvers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="goals_to_approve")
    viewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="goals_to_watch",
        help_text="People who see the goal, its requests and its timeline, but decide nothing and get no push.",
    )
    status = models.CharField(
        max_length=20, choices=GoalStatus.choices, default=GoalStatus.DRAFT, db_index=True
    )

    require_sandbox = models.BooleanField(
        default=False, help_text="Refuse to start unless the agent can run in a bubblewrap sandbox."
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
        help_text="The goal this one was split off from as a follow-up.",
    )

    # The loop's bookkeeping: when the goal started, and the lease of the worker running its step.
    started_at = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    step_enqueued_at = models.DateTimeField(null=True, blank=True)
    last_progress_at = models.DateTimeField(null=True, blank=True)
    # What agents running elsewhere reported through the gateway, counted in the goal's usage beside its steps'
    # (goals/judge.py is the one writer): the tokens they used, the files their allowed or approved calls wrote.
    reported_tokens = models.PositiveBigIntegerField(default=0)
    reported_paths = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GoalQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "status"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("goals:detail", args=[self.pk])

    @property
    def budgets(self) -> dict[str, int | None]:
        return {name: getattr(self, field) for name, field in BUDGET_FIELDS.items()}

    @property
    def minimum_risk(self) -> str:
        return lint.minimum_risk(self.work_type)

    def path_rules(self) -> repopaths.RepoPaths:
        """The path rules the gates judge this goal with: staff's settings on the repository where set, else what
        was detected from the goal's base commit (nothing yet before the first step: the built-in tables)."""
        detected = repopaths.RepoPaths.from_dict((self.detected_paths or {}).get("rules"))
        repository = self.repository
        return detected.with_staff(
            tests=repository.test_paths, generated=repository.generated_paths, vendored=repository.vendored_paths
        )

    def contract(self) -> lint.Contract:
        """The goal as the pure linter and gates see it."""
        return lint.Contract(
            objective=self.objective,
            constraints=tuple(self.constraints),
            evidence=tuple(lint.EvidenceCheck(**check) for check in self.evidence),
            done_criteria=self.done_criteria,
            work_type=self.work_type,
            risk=self.risk,
            rollback_note=self.rollback_note,
            budgets=self.budgets,
            protected_paths=tuple(self.protected_paths),
            scope_paths=tuple(self.scope_paths),
            repeated_failure_threshold=self.repeated_failure_threshold,
        )

    def lint(self) -> list[lint.Finding]:
        return lint.lint(self.contract())

    def build_agent(self) -> agents.Agent:
        """The goal's agent, set up from its profile; a permanent AgentError when staff have since taken the
        repository or the profile away from the owner (revoking holds for running goals too)."""
        if not Repository.objects.usable_by(self.owner).filter(pk=self.repository_id).exists():
            raise agents.AgentError(
                f"The repository {self.repository} is no longer offered to the owner.", permanent=True
            )
        if not AgentProfile.objects.usable_by(self.owner).filter(pk=self.agent_profile_id).exists():
            raise agents.AgentError(
                f"The agent {self.agent_profile} is no longer offered to the owner.", permanent=True
            )
        return agents.get_agent(self.agent_profile.adapter, self.agent_profile.adapter_settings(self))

    def egress(self) -> list[tuple[str, bool]]:
        """Where the agent and the checks may connect: ("host:port", private_ok). The profile's model API and
        hosts are staff-written (private ones allowed); the goal's own are owner-written, public only."""
        provider = self.agent_profile.provider_host()
        hosts = [provider] if provider else []
        staff = [(host, True) for host in dict.fromkeys([*hosts, *self.agent_profile.egress_hosts])]
        return staff + [(host, False) for host in self.network_hosts if (host, True) not in staff]

    def can_edit(self, user) -> bool:
        return user.pk == self.owner_id

    def can_decide(self, user) -> bool:
        """The owner and the named approvers answer the goal's approval requests."""
        if not getattr(user, "is_authenticated", False):
            return False
        return user.pk == self.owner_id or self.approvers.filter(pk=user.pk).exists()

    def set_status(
        self, status: str, actor=None, reason: str = "", *, only_from: tuple[str, ...] = ()
    ) -> bool:
        """Move to `status` (only from the given states, when named), writing the trail; True if it moved."""
        goals = Goal.objects.filter(pk=self.pk)
        if only_from:
            goals = goals.filter(status__in=only_from)
        with transaction.atomic():
            if not goals.exclude(status=status).update(status=status, updated_at=timezone.now()):
                return False
            self.status = status
            self.record("status", reason or f"Now {self.get_status_display().lower()}.", actor, status=status)
        return True

    def status_reason(self) -> str:
        """Why the goal is in its state, from the trail: the last status change's message without its label."""
        event = self.events.filter(kind="status").only("message").first()
        if event is None:
            return ""
        label, colon, rest = event.message.partition(": ")
        return rest if colon and label.lower() in ("failed", "paused", "stalled") else event.message

    def status_sentence(self, pending: list | None = None, last_step: int | None = None) -> str:
        """The status as a sentence a person reads: "Waiting for you: plan for step 1", "Running step 3",
        "Failed: <reason> — Retry or Resume", "Done: branch goalpost/12 pushed". `pending` (the goal's pending
        requests) and `last_step` (its highest step number) may be given to save the queries."""
        status = self.status
        if status == GoalStatus.DRAFT:
            return "Draft: clear the checklist's blocking findings, then mark it ready"
        if status == GoalStatus.READY:
            return "Ready: start it when you are"
        if status == GoalStatus.RUNNING:
            running = self.steps.filter(status=StepStatus.RUNNING).order_by("number").first()
            if running is not None:
                return f"Running step {running.number}"
            if last_step is None:
                last_step = self.steps.aggregate(n=models.Max("number"))["n"] or 0
            return f"Running step {last_step + 1}"
        if status == GoalStatus.WAITING:
            if pending is None:
                pending = list(self.approval_requests.filter(status="pending").order_by("created_at"))
            if len(pending) > 1:
                return f"Waiting for you: {len(pending)} requests"
            if pending:
                return f"Waiting for you: {_asked(pending[0])}"
            return "Waiting for a decision"
        if status == GoalStatus.DONE:
            return f"Done: {self.publish_state()}"
        if status == GoalStatus.FAILED:
            reason = self.status_reason().rstrip(".") or "the last step could not run"
            return f"Failed: {reason} — Retry or Resume"
        if status in (GoalStatus.PAUSED, GoalStatus.STALLED):
            label, reason = self.get_status_display(), self.status_reason().rstrip(".")
            if not reason or reason.lower().startswith(label.lower()):
                return reason or label
            return f"{label}: {reason}"
        return self.get_status_display()

    @property
    def branch(self) -> str:
        return f"goalpost/{self.pk}"

    def publish_state(self) -> str:
        """What became of a done goal's branch, from the trail of loop.publish."""
        event = self.events.filter(kind="publish").only("message", "data").first()
        if event is None:
            return f"branch {self.branch} is being pushed"
        if event.data.get("pushed"):
            return f"branch {self.branch} pushed"
        return f"branch {self.branch} not pushed ({event.message.rstrip('.')})"

    def record(self, kind: str, message: str, actor=None, **data) -> GoalEvent:
        return GoalEvent.objects.create(goal=self, kind=kind, message=message, actor=actor, data=data)

    def step_history(self, before_number: int) -> gates.History:
        """What the gates need to know of the steps before this one: failures, attempts, files kept."""
        earlier = list(self.steps.filter(number__lt=before_number).order_by("number"))
        touched = sorted({f["path"] for s in earlier if s.kept for f in s.files if f.get("path")})
        return gates.History(
            failure_signatures=tuple(s.failure_signature or None for s in earlier),
            attempts=tuple(f"Step {s.number}: {s.summary or s.error}"[:200] for s in earlier),
            touched_paths=tuple(touched),
        )

    def usage(self) -> gates.Usage:
        """What the goal has used of its budgets so far, whoever reported it: finished steps and what agents
        elsewhere reported (tokens, files written), time since start, requests."""
        finished = self.steps.exclude(status=StepStatus.RUNNING)
        minutes = (timezone.now() - self.started_at).total_seconds() / 60 if self.started_at else 0.0
        touched = {f["path"] for s in finished.filter(status__in=KEPT_STEP_STATUSES) for f in s.files if f.get("path")}
        touched |= {str(path) for path in self.reported_paths or () if path}
        return gates.Usage(
            minutes=minutes,
            steps=finished.count(),
            tokens=(finished.aggregate(t=Sum("tokens"))["t"] or 0) + self.reported_tokens,
            files_total=len(touched),
            approvals=self.approval_requests.exclude(status="superseded").count(),
            retries=same_failure_retries([s.failure_signature for s in finished.order_by("number")]),
        )

    def exhausted_budget(self) -> gates.GateFinding | None:
        """A budget already used up before the next step starts (the gates catch the ones a step uses up)."""
        usage = self.usage()
        for name, used in (
            ("steps", usage.steps),
            ("tokens", usage.tokens),
            ("minutes", usage.minutes),
            ("approvals", usage.approvals),
            ("retries", usage.retries),
            ("files_total", usage.files_total),
        ):
            allowed = self.budgets.get(name)
            if allowed and used >= allowed:
                return gates.budget_finding(name, used, allowed)
        return None

    def extend_budgets(self, extend: dict[str, int], actor) -> None:
        """Raise budgets by the given amounts (an unbounded budget stays unbounded)."""
        updates = {BUDGET_FIELDS[name]: F(BUDGET_FIELDS[name]) + amount for name, amount in extend.items()}
        with transaction.atomic():
            Goal.objects.filter(pk=self.pk).update(**updates, updated_at=timezone.now())
            self.refresh_from_db(fields=[*updates, "updated_at"])
            described = ", ".join(f"{name.replace('_', ' ')} +{amount:,}" for name, amount in extend.items())
            self.record("budget", f"Budget extended: {described}.", actor, extend=extend)

    def mark_ready(self, actor) -> None:
        """Draft → ready, only with no blocking lint finding."""
        findings = self.lint()
        if not lint.is_ready(findings):
            raise GoalNotReady(findings)
        self.set_status(
            GoalStatus.READY,
            actor,
            "Marked ready: the contract passes the linter.",
            only_from=(GoalStatus.DRAFT,),
        )

    def current_baseline(self) -> EvidenceBaseline | None:
        """The newest baseline of the goal's current checks (a pending one included), or None."""
        for baseline in self.baselines.order_by("-created_at", "-id")[:20]:
            if baseline.matches(self):
                return baseline
        return None

    def done_comparison(self, after: list[dict]) -> dict:
        """What a done review shows of the baseline: its headline, and "before: 1 failing; after: all 3 pass"
        against ``after`` (the last runs of the same checks); {} when the goal has no finished baseline."""
        baseline = self.current_baseline()
        if baseline is None or baseline.status != BaselineStatus.DONE:
            return {}
        return {
            "headline": baseline.headline(),
            "base_sha": baseline.base_sha,
            **evidence.compare_to_baseline(baseline.checks, after),
        }

    def back_to_draft(self, actor, reason: str) -> None:
        """Ready → draft, when an edit brings back a blocking finding."""
        self.set_status(GoalStatus.DRAFT, actor, reason, only_from=(GoalStatus.READY,))


class StepStatus(models.TextChoices):
    RUNNING = "running", "Running"
    PASSED = "passed", "Passed the gates"
    WAITING = "waiting", "Waiting for a human"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected and reverted"
    FAILED = "failed", "Failed"
    SET_ASIDE = "set_aside", "Set aside by a retry"


# Steps whose commit stays on the goal's branch.
KEPT_STEP_STATUSES = (StepStatus.PASSED, StepStatus.APPROVED)


class Step(models.Model):
    """One turn of the agent: its commit, its diff, the evidence after it and what the gates said."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="steps")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=20, choices=StepStatus.choices, default=StepStatus.RUNNING)
    attempts = models.PositiveSmallIntegerField(
        default=1, help_text="Runs of this step (a worker lost mid-step reruns it)."
    )
    run_index = models.PositiveIntegerField(
        default=0, help_text="How many agent runs the goal had before this one."
    )

    summary = models.TextField(blank=True)
    tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.FloatField(null=True, blank=True)
    agent_done = models.BooleanField(default=False)
    reported_bugs = models.JSONField(default=list, blank=True)
    plan = models.TextField(blank=True)
    agent_log = models.TextField(blank=True)
    error = models.TextField(blank=True)

    parent_sha = models.CharField(max_length=64, blank=True)
    commit_sha = models.CharField(max_length=64, blank=True)
    diff = models.TextField(blank=True)
    diff_truncated = models.BooleanField(default=False)
    diff_stats = models.JSONField(default=dict, blank=True)
    files = models.JSONField(default=list, blank=True)
    evidence = models.JSONField(default=list, blank=True)
    findings = models.JSONField(default=list, blank=True)
    failure_signature = models.CharField(max_length=500, blank=True)

    worker = models.CharField(max_length=255, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["goal", "number"]
        constraints = [models.UniqueConstraint(fields=["goal", "number"], name="one_step_per_number")]

    def __str__(self) -> str:
        return f"{self.goal_id} step {self.number} ({self.status})"

    @property
    def kept(self) -> bool:
        return self.status in KEPT_STEP_STATUSES

    @property
    def evidence_summary(self) -> str:
        return "; ".join(run.get("summary", "") for run in self.evidence if run.get("summary"))

    @property
    def passed_evidence(self) -> bool:
        return all(run.get("passed") for run in self.evidence)


class BaselineStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Checking"
    DONE = "done", "Done"
    FAILED = "failed", "Could not run"


# What a baseline keeps of each check's output: the end, enough to read why it failed.
BASELINE_OUTPUT_CHARS = 4_000


def command_checks(evidence: list) -> list[dict]:
    """The command checks of a goal's evidence, as stored on the goal (manual checks are a person's)."""
    return [
        check
        for check in evidence or ()
        if isinstance(check, dict)
        and check.get("kind", "command") == "command"
        and str(check.get("command") or "").strip()
    ]


class EvidenceBaseline(models.Model):
    """The goal's checks run once on its base branch, before any agent work: which fail today. The done review
    compares the last step's checks against it ("before: 1 failing; after: all 3 pass").

    A row per run rather than a field on the goal: a run is queued from the page and claimed by a worker (an
    atomic conditional update on ``status``), the page shows "checking…" meanwhile, and an earlier baseline
    stays readable while a new one runs. ``commands`` is the goal's checks as they were run: a baseline counts
    for the goal only while its checks are still the same.
    """

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="baselines")
    status = models.CharField(max_length=10, choices=BaselineStatus.choices, default=BaselineStatus.QUEUED)
    base_branch = models.CharField(max_length=255)
    base_sha = models.CharField(max_length=64, blank=True)
    commands = models.JSONField(default=list, help_text="The goal's command checks as they were run.")
    checks = models.JSONField(
        default=list,
        blank=True,
        help_text="Per check: name, command, resolved, passed, exit_code, timed_out, failing_tests, summary, "
        "message, output_tail.",
    )
    error = models.TextField(blank=True, help_text="Why the checks could not run at all.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["goal", "status"])]

    def __str__(self) -> str:
        return f"{self.goal_id} baseline @{self.base_sha[:12]} ({self.status})"

    @property
    def pending(self) -> bool:
        return self.status in (BaselineStatus.QUEUED, BaselineStatus.RUNNING)

    @property
    def failing(self) -> list[dict]:
        return [check for check in self.checks if not check.get("passed")]

    @property
    def unresolved(self) -> list[str]:
        """One sentence per check whose command does not name anything that runs in the sandbox."""
        return [check["message"] for check in self.checks if check.get("resolved") is False]

    @property
    def failing_tests(self) -> list[str]:
        return [str(test) for check in self.failing for test in check.get("failing_tests") or []]

    def headline(self) -> str:
        """ "Baseline on main @abc1234: 1 of 3 failing — test_tax_rounding"."""
        where = f"Baseline on {self.base_branch}" + (f" @{self.base_sha[:7]}" if self.base_sha else "")
        if self.status == BaselineStatus.FAILED:
            return f"{where}: could not run: {self.error}"
        if self.pending:
            return f"{where}: checking…"
        total, failing = len(self.checks), len(self.failing)
        if not failing:
            return f"{where}: all {total} pass"
        names = self.failing_tests[:3] or [str(check.get("name") or check.get("command")) for check in self.failing[:3]]
        return f"{where}: {failing} of {total} failing — {', '.join(names)}"

    def matches(self, goal: Goal) -> bool:
        """Whether this baseline ran the goal's current checks (an edit to the evidence makes it stale)."""
        return self.commands == _comparable(command_checks(goal.evidence))

    def as_dict(self) -> dict:
        """The baseline as the goal API and the done review show it."""
        return {
            "status": self.status,
            "base_branch": self.base_branch,
            "base_sha": self.base_sha,
            "headline": self.headline(),
            "checked_at": (self.finished_at or self.created_at).isoformat(),
            "error": self.error,
            "checks": [
                {
                    key: check.get(key)
                    for key in (
                        "name",
                        "command",
                        "resolved",
                        "passed",
                        "exit_code",
                        "timed_out",
                        "failing_tests",
                        "summary",
                        "message",
                    )
                }
                for check in self.checks
            ],
        }


def _comparable(checks: list[dict]) -> list[dict]:
    return [
        {"command": str(check.get("command") or "").strip(), "expect_exit": int(check.get("expect_exit") or 0)}
        for check in checks
    ]


def baseline_commands(goal: Goal) -> list[dict]:
    """The goal's checks in the shape a baseline keeps them (to compare an old baseline with the goal)."""
    return _comparable(command_checks(goal.evidence))


def _asked(request) -> str:
    """What a pending request asks of a person, in a few words: "plan for step 1", "the done review"."""
    step = f" for step {request.step_number}" if request.step_number else ""
    return {
        "plan": f"plan{step}",
        "step": f"review of step {request.step_number}" if request.step_number else "a step review",
        "budget": "more budget",
        "stall": "the goal stalled",
        "done": "the done review",
        "follow_up": f"a follow-up{step}",
        "stop": "the agent broke a rule",
    }.get(request.kind, f"{request.kind} request{step}")


def same_failure_retries(signatures: list[str]) -> int:
    """Retries of the failure the goal is stuck on: consecutive repeats of the last signature, after the first."""
    return max(0, gates.failure_streak(signatures) - 1)


class GoalEvent(models.Model):
    """One line of a goal's audit trail: who changed what, and when."""

    goal = models.ForeignKey(Goal, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=40)
    message = models.CharField(max_length=500)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.goal_id} {self.kind}: {self.message}"


class WorkerHeartbeat(models.Model):
    """The last time each celery worker proved it was alive; /healthz reads the newest."""

    hostname = models.CharField(max_length=255, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, hostname: str) -> None:
        cls.objects.update_or_create(hostname=hostname, defaults={"seen_at": timezone.now()})

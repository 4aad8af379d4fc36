"""Builders the tests share: people by role, repositories and agent profiles, goals and the goal form, steps and
approval requests, the loop's shop and its scripted steps, an agent adapter's step, the security tests' world, what
a browser and Claude Code send, git, and the database as other processes see it.

Plain functions with keyword overrides. The fixtures in tests/conftest.py are thin wrappers around them; test
modules import from here and from tests/support/, never from each other or from a conftest (tests/test_layout.py)."""

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client

from approvals.models import ApprovalRequest, PushSubscription
from gateway.models import AgentToken, AlwaysAllowRule
from goals.agents.base import AgentContext
from goals.diffs import parse_diff
from goals.lint import Contract, EvidenceCheck
from goals.models import AgentProfile, Goal, GoalStatus, Repository, Step

# --- people -----------------------------------------------------------------------------------------------------------

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


# --- repositories and agent profiles ----------------------------------------------------------------------------------

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


# What the test goals' scripted agent replays when the goal brings no script of its own: one quiet step, so the
# profile can run here (a scripted profile with nothing to replay is refused by the goal form).
QUIET_SCRIPT = [{"summary": "Nothing to change"}]


def scripted_profile() -> AgentProfile:
    """The scripted agent, offered to everyone: the default agent of test goals."""
    defaults = {"adapter": "scripted", "options": {"steps": QUIET_SCRIPT}}
    return AgentProfile.objects.get_or_create(name="Scripted", defaults=defaults)[0]


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


# --- goals and the goal form ------------------------------------------------------------------------------------------

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


# --- steps and approval requests, as the loop leaves them -------------------------------------------------------------

def commit_diff(repo, files: dict, renames: dict | None = None) -> str:
    """Write (str), write binary (bytes) or delete (None) files and rename others, commit, return git's diff."""
    for old, new in (renames or {}).items():
        (repo / new).parent.mkdir(parents=True, exist_ok=True)
        run_git(repo, "mv", old, new)
    for path, content in files.items():
        target = repo / path
        if content is None:
            target.unlink()
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    run_git(repo, "add", "-A")
    diff = run_git(repo, "diff", "--cached", "-M", "HEAD")
    run_git(repo, "commit", "-q", "-m", "step")
    return diff


def many_files_diff(files: int, lines_per_file: int) -> str:
    """A synthetic git diff: `files` Python files, each with lines_per_file/2 lines replaced."""
    chunks = []
    half = lines_per_file // 2
    for i in range(files):
        path = f"pkg/module_{i}.py"
        chunks.append(
            f"diff --git a/{path} b/{path}\nindex 1111111..2222222 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -1,{half} +1,{half} @@\n"
        )
        chunks.extend(f"-old_value_{j} = compute({j}, 'x')\n+new_value_{j} = compute({j}, 'y')\n" for j in range(half))
    return "".join(chunks)


def run_record(passed=True, summary="pytest 41 passed", output="41 passed in 1.20s", name="pytest", **extra) -> dict:
    """An evidence run as the loop stores it on a step."""
    return {
        "name": name,
        "command": "pytest -q",
        "expected_exit": 0,
        "exit_code": 0 if passed else 1,
        "passed": passed,
        "timed_out": False,
        "duration_s": 3.2,
        "output": output,
        "counts": {},
        "failing_tests": [] if passed else ["tests/test_shop.py::test_total"],
        "counts_from": "pytest",
        "summary": summary,
        **extra,
    }


def finding(reason="Tests weakened in tests/test_shop.py: assertion removed", gate="tests_weakened",
            severity="approval", path=None, lines=()) -> dict:  # fmt: skip
    """A gate's finding as the loop stores it on a step and a request."""
    return {"gate": gate, "severity": severity, "reason": reason, "path": path, "lines": list(lines), "kind": "step",
            "data": {}}  # fmt: skip


def make_step(goal, number: int, diff: str = "", evidence=None, findings=None, plan: str = "") -> Step:
    """A step waiting for a person, with `diff` parsed as the loop parses it (one passing check by default)."""
    parsed = parse_diff(diff)
    return Step.objects.create(
        goal=goal,
        number=number,
        status="waiting",
        summary=f"Step {number}",
        diff=diff,
        diff_stats={**parsed.stats.__dict__, "summary": parsed.summary_line()},
        files=parsed.compact(),
        evidence=evidence if evidence is not None else [run_record()],
        findings=findings or [],
        plan=plan,
    )


def open_request(goal, kind="step", step=None, findings=None, summary="Step 1: 2 files, +3 −1", **kw) -> ApprovalRequest:
    """A pending request on the goal (for `step`, when given), with one weakened-test finding by default."""
    findings = findings if findings is not None else [finding()]
    return ApprovalRequest.open(
        goal, kind, findings=findings, summary=summary, step_number=step.number if step else None, **kw
    )


# --- the loop's shop: a real repository and a scripted agent working on it --------------------------------------------

SHOP_PY = "def total(items):\n    return sum(items)\n"
SHOP_TEST = "from shop import total\n\n\ndef test_total():\n    assert total([2, 3]) == 5\n"

# Steps of the scripted agent (goals/agents/scripted.py): what it writes, and what it says it spent.
GOOD_STEP = {
    "summary": "Add a discount argument",
    "write": {
        "shop.py": "def total(items, discount=0):\n    return sum(items) - discount\n",
        "tests/test_shop.py": SHOP_TEST + "\n\ndef test_discount():\n    assert total([2, 3], discount=1) == 4\n",
    },
    "tokens": 1200,
}
SEVEN_FILES = {"summary": "Touch everything", "write": {f"pkg/m{i}.py": f"X = {i}\n" for i in range(7)}}
WEAKEN = {"summary": "Relax the test", "write": {"tests/test_shop.py": SHOP_TEST.replace("== 5", ">= 0")}}


def make_shop_repo(path: Path) -> Path:
    """The shop at `path`: total() and its passing test, committed on main (conftest.py puts shop on the path)."""
    return make_git_repo(path, {"shop.py": SHOP_PY, "tests/test_shop.py": SHOP_TEST, "conftest.py": ""}, "shop")


def make_scripted_goal(owner, repo, steps: list[dict], **fields) -> Goal:
    """A running goal on `repo` whose scripted agent plays `steps`, one a step, and whose evidence runs the
    repository's tests with this Python; keyword arguments replace any field."""
    defaults = {
        "title": "Totals handle discounts",
        "objective": "Make total() accept a discount argument, tested in tests/test_shop.py",
        "constraints": ["Keep total([2, 3]) == 5"],
        "evidence": [
            {"kind": "command", "command": f"{sys.executable} -m pytest -q -p no:cacheprovider tests",
             "expect_exit": 0, "description": ""}
        ],
        "work_type": "other",
        "risk": "medium",
        "repository": registered_repository(repo, users=[owner]),
        "base_branch": "main",
        "agent_profile": scripted_profile(),
        "agent_script": steps,
        "status": GoalStatus.RUNNING,
    }
    defaults.update(fields)
    return Goal.objects.create(owner=owner, **defaults)


def step_once(goal: Goal):
    """One step of the managed loop on the goal, in this process; its outcome, with the goal refreshed."""
    from goals import loop

    outcome = loop.run_step(goal.pk, worker="test")
    goal.refresh_from_db()
    return outcome


# --- one step for an agent adapter: the greeting goal on a worktree where app.py prints hello -------------------------

GREETING_PATCH = """\
diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-print('hello')
+print('hi')
"""

GREETING_CONTRACT = Contract(
    objective="Change the greeting printed by app.py from hello to hi",
    constraints=("Keep app.py printing exactly one line",),
    evidence=(EvidenceCheck(kind="command", command="python app.py", expect_exit=0),),
    done_criteria="`python app.py` prints hi",
    protected_paths=("generated/**",),
    scope_paths=("app.py", "tests/**"),
)


def make_agent_context(worktree: Path, **changes: object) -> AgentContext:
    """What an agent adapter gets for one step of the greeting goal on ``worktree``; keyword arguments replace any
    field."""
    fields: dict = {
        "contract": GREETING_CONTRACT,
        "goal_title": "Friendlier greeting",
        "step_number": 1,
        "run_index": 0,
        "worktree": worktree,
        "timeout_s": 60,
    }
    fields.update(changes)
    return AgentContext(**fields)


# --- the security tests' world: one goal with everyone around it ------------------------------------------------------

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


# --- what a browser sends, and what it gets back ----------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
)
# Text that runs script if a page forgets to escape it, in an element or in an attribute.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def inbox_count(html: str) -> str | None:
    """The inbox count an htmx answer swaps into the header out of band, if it swaps one."""
    match = re.search(r'<span id="inbox-count"[^>]*hx-swap-oob="true">(\d+)</span>', html)
    return match.group(1) if match else None


# --- what Claude Code sends -------------------------------------------------------------------------------------------

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


# --- git --------------------------------------------------------------------------------------------------------------

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
    from django.conf import settings

    from goals import loop

    return loop.worktree_root().parent / "gitdirs" / settings.GOALPOST_INSTANCE / f"goal-{goal_id}.git"


def goal_worktree(goal_id: int):
    """The worktree of a goal's own checkout, where its agent works."""
    from django.conf import settings

    from goals import loop

    return loop.worktree_root() / settings.GOALPOST_INSTANCE / f"goal-{goal_id}"


# --- the database, as other processes see it --------------------------------------------------------------------------

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

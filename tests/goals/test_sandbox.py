import dataclasses
import os
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from django.conf import settings as django_settings

from goals.egress import Rule
from goals.sandbox import (
    Box,
    Identity,
    Limits,
    SandboxError,
    Session,
    describe,
    identity,
    sandbox_available,
    sandbox_python,
    sandbox_reason,
    scrubbed_env,
)
from goals.workspace import Workspace
from tests.factories import run_git
from tests.support.sandbox import give_to_sandbox_user, require_sandbox

SECRET = "not-for-agents-5f2c"
ROOMY = Limits(cpu_seconds=60, memory_mb=512, processes=128, file_size_mb=64, disk_mb=256, tmp_mb=64)


class Server(NamedTuple):
    base: Path
    repo: Path
    var: Path
    workspace: Workspace

    @property
    def worktree(self) -> Path:
        return self.workspace.path

    @property
    def probe(self) -> str:
        """A file name no other test run uses, for writes that must not reach the host."""
        return f"{self.base.name}-probe"

    def box(self, **options) -> Box:
        git_dir, objects = self.workspace.git_dirs()
        return Box(self.worktree, git_dir=git_dir, read_only=(objects,), hide=(self.var,), **options)


class Outcome(NamedTuple):
    returncode: int
    stdout: str
    stderr: str
    exceeded: str
    refused: list[str]


@pytest.fixture
def server(outside_tmp):
    """A server laid out as in production, outside /tmp: var/ holds the secret key and the worktrees, which
    the sandbox user owns."""
    require_sandbox()
    base = outside_tmp
    repo, var = base / "repo", base / "var"
    repo.mkdir()
    var.mkdir()
    (var / "secret_key").write_text(SECRET)
    run_git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("print('hello')\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "initial")
    workspace = Workspace(repo, 1, "main", var / "worktrees")
    workspace.ensure()
    give_to_sandbox_user(workspace.path)
    return Server(base, repo, var, workspace)


def run_in(box: Box, argv: list[str], timeout: float = 60, **env) -> Outcome:
    with Session(box) as session:
        result = subprocess.run(
            session.wrap(argv),
            cwd=box.worktree,
            env=session.env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return Outcome(result.returncode, result.stdout, result.stderr, session.exceeded, session.refused)


def run_inside(server: Server, script: str, **options) -> Outcome:
    return run_in(server.box(limits=options.pop("limits", ROOMY)), ["bash", "-c", script], **options)


def require_switch() -> Identity:
    who = identity()
    if not who.switched:
        pytest.skip("the server is not root here: the sandbox runs as this user")
    return who


# --- what the box allows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "succeeds", "prints", "host_check"),
    [
        pytest.param(
            "echo made > made.txt && cat made.txt",
            True,
            "made",
            lambda server: (server.worktree / "made.txt").read_text() == "made\n",
            id="it-writes-in-the-worktree",
        ),
        pytest.param(
            "echo changed >> {repo}/app.py",
            False,
            "",
            lambda server: (server.repo / "app.py").read_text() == "print('hello')\n",
            id="it-cannot-write-the-main-checkout",
        ),
        pytest.param(
            "touch /etc/{probe}",
            False,
            "",
            lambda server: not Path(f"/etc/{server.probe}").exists(),
            id="it-cannot-write-etc",
        ),
        pytest.param(
            "touch {base}/{probe}",
            False,
            "",
            lambda server: not (server.base / server.probe).exists(),
            id="it-cannot-write-next-to-the-worktree",
        ),
        pytest.param(
            "cat {var}/secret_key; ls -A {var}",
            True,
            "worktrees",
            None,
            id="it-cannot-read-the-hidden-secret-key",
        ),
        pytest.param(
            "echo x > /tmp/{probe} && cat /tmp/{probe} && echo y > $HOME/{probe} && cat $HOME/{probe}",
            True,
            "x\ny",
            lambda server: not Path(f"/tmp/{server.probe}").exists(),
            id="its-tmp-and-home-are-private",
        ),
        pytest.param(
            "echo new > new.txt && git status --porcelain && git log --format=%s",
            True,
            "?? new.txt\ninitial",
            None,
            id="git-works-in-the-worktree",
        ),
        pytest.param(
            "git config core.fsmonitor 'touch /tmp/owned'",
            False,
            "",
            lambda server: "fsmonitor" not in (server.workspace.git_dir / "config").read_text(),
            id="it-cannot-change-the-git-config",
        ),
        pytest.param(
            "printf '#!/bin/sh\\n' > $GIT_DIR/hooks/pre-commit || printf '#!/bin/sh\\n' > {repo}/.git/hooks/pre-commit",
            False,
            "",
            lambda server: not (server.workspace.git_dir / "hooks" / "pre-commit").exists()
            and not (server.repo / ".git" / "hooks" / "pre-commit").exists(),
            id="it-cannot-plant-a-hook",
        ),
        pytest.param(
            "echo x >> $GIT_DIR/HEAD || echo x >> $GIT_DIR/objects/info/alternates",
            False,
            "",
            lambda server: (server.workspace.git_dir / "HEAD").read_text() == f"ref: refs/heads/{server.workspace.branch}\n",
            id="its-git-directory-and-objects-are-read-only",
        ),
        pytest.param("ls -A /run", True, "", None, id="no-local-daemon-sockets"),
        pytest.param("ls -A {goalpost_var}", True, "", None, id="goalposts-own-var-is-hidden"),
        pytest.param("env", True, "HOME=/tmp/home", None, id="it-gets-the-scrubbed-environment"),
    ],
)
def test_what_a_sandboxed_command_can_and_cannot_do(server, monkeypatch, script, succeeds, prints, host_check):
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", f"postgres://goalpost:{SECRET}@127.0.0.1/goalpost")
    script = script.format(
        repo=server.repo, var=server.var, base=server.base, probe=server.probe, goalpost_var=django_settings.VAR_DIR
    )
    result = run_inside(server, script)

    assert (result.returncode == 0) is succeeds, result.stderr
    assert prints in result.stdout
    assert SECRET not in result.stdout + result.stderr
    if not prints:
        assert result.stdout.strip() == ""
    if host_check is not None:
        assert host_check(server)
    assert result.exceeded == ""


def test_the_command_is_an_unprivileged_user_without_capabilities(server):
    who = require_switch()
    result = run_inside(server, "id -u; id -g; grep -E '^(CapEff|CapPrm|NoNewPrivs):' /proc/self/status")
    assert result.stdout.split() == [
        str(who.uid),
        str(who.gid),
        "CapPrm:",
        "0000000000000000",
        "CapEff:",
        "0000000000000000",
        "NoNewPrivs:",
        "1",
    ]


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("cat /etc/shadow", id="etc-shadow"),
        # Root's home is an empty tmpfs but for the server's own toolchain, when it lives there, bound read-only.
        pytest.param("ls -A /root | grep -v '^.pyenv$' | grep .", id="roots-home"),
        pytest.param("cat root-only.txt", id="a-root-only-file-in-the-worktree"),
    ],
)
def test_what_only_root_may_read_stays_unreadable(server, script):
    require_switch()
    secret = server.worktree / "root-only.txt"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    result = run_inside(server, script)
    assert result.returncode != 0
    assert SECRET not in result.stdout + result.stderr


def test_files_it_creates_belong_to_the_sandbox_user(server):
    who = require_switch()
    assert run_inside(server, "mkdir made && echo x > made/file").returncode == 0
    made = server.worktree / "made" / "file"
    assert (made.stat().st_uid, made.stat().st_gid) == (who.uid, who.gid)


def test_it_has_its_own_process_ids(server):
    result = run_inside(server, "ls /proc | grep -c '^[0-9]'")
    assert int(result.stdout) < 10, result.stdout


def test_a_worktree_under_a_hidden_folder_stays_reachable(server):
    # The worktree lives in var/worktrees and var/ is hidden: it is bound back on top.
    assert server.worktree.is_relative_to(server.var)
    result = run_inside(server, "pwd && cat app.py")
    assert result.stdout == f"{server.worktree}\nprint('hello')\n"


def test_extra_read_only_paths_come_back_from_under_a_hidden_folder(server):
    tools = server.var / "tools"
    tools.mkdir()
    (tools / "tool.sh").write_text("echo tool ran\n")
    script = f"bash {tools}/tool.sh && ! touch {tools}/x && ! cat {server.var}/secret_key"
    box = Box(server.worktree, hide=(server.var,), read_only=(tools,), limits=ROOMY)
    result = run_in(box, ["bash", "-c", script])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tool ran\n"


def test_a_worktree_the_sandbox_user_cannot_reach_is_refused(outside_tmp):
    require_sandbox()
    require_switch()
    closed = outside_tmp / "closed"
    closed.mkdir(mode=0o700)
    worktree = closed / "worktree"
    worktree.mkdir()
    give_to_sandbox_user(worktree)
    with pytest.raises(SandboxError, match="cannot reach the worktree"), Session(Box(worktree)):
        pass


def test_a_worktree_the_sandbox_user_does_not_own_is_refused(outside_tmp):
    require_sandbox()
    require_switch()
    worktree = outside_tmp / "root-owned"
    worktree.mkdir(mode=0o755)
    with pytest.raises(SandboxError, match="cannot write in the worktree .*: it must own it"), Session(Box(worktree)):
        pass


def test_the_session_cleans_up_its_cgroups_and_folder(server):
    with Session(server.box(limits=ROOMY)) as session:
        made = [*session._cgroups.values(), session._dir]
        assert all(path.exists() for path in made)
    assert not any(path.exists() for path in made)


# --- limits ----------------------------------------------------------------------------------------------


def small(**changes) -> Limits:
    return dataclasses.replace(ROOMY, **changes)


def require_cgroups() -> None:
    if "limits off" in describe(Box(Path("/"))):
        pytest.skip(describe(Box(Path("/"))))


def python_inside() -> str:
    python = sandbox_python()
    if python is None:
        pytest.skip("no Python the sandbox user can run")
    return python


@pytest.mark.parametrize(
    ("limits", "program", "reason", "needs_cgroups"),
    [
        pytest.param(
            small(memory_mb=64),
            "x = bytearray(256 * 1024 * 1024)",
            "The step used more than 64 MB of memory and was stopped.",
            True,
            id="memory",
        ),
        pytest.param(
            small(processes=16),
            "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(20)\n        os._exit(0)",
            "The step tried to run more than 16 processes at once and was stopped.",
            True,
            id="processes",
        ),
        pytest.param(
            small(file_size_mb=1),
            "open('big', 'wb').write(b'x' * 3 * 1024 * 1024)",
            "The step tried to write a file larger than 1 MB and was stopped.",
            False,
            id="file-size-in-python",
        ),
    ],
)
def test_a_program_that_goes_past_a_limit_is_stopped_with_a_reason(server, limits, program, reason, needs_cgroups):
    if needs_cgroups:
        require_cgroups()
    result = run_in(server.box(limits=limits), [python_inside(), "-c", program], timeout=30)
    assert result.returncode != 0
    assert result.exceeded == reason


@pytest.mark.parametrize(
    ("limits", "script", "reason"),
    [
        pytest.param(
            small(cpu_seconds=1),
            "while :; do :; done",
            "The step used more than 1 s of CPU time and was stopped.",
            id="cpu",
        ),
        pytest.param(
            small(file_size_mb=1),
            "head -c 3000000 /dev/zero > big",
            "The step tried to write a file larger than 1 MB and was stopped.",
            id="file-size",
        ),
        pytest.param(
            small(disk_mb=2),
            "for i in $(seq 100); do head -c 500000 /dev/zero > f$i; sleep 0.05; done",
            "The step grew the worktree by more than 2 MB and was stopped.",
            id="disk",
        ),
    ],
)
def test_a_shell_that_goes_past_a_limit_is_stopped_with_a_reason(server, limits, script, reason):
    result = run_inside(server, script, limits=limits, timeout=30)
    assert result.returncode != 0
    assert result.exceeded == reason
    if "disk" in reason:
        assert len(list(server.worktree.glob("f*"))) < 100


CPU_HOGS = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        while time.process_time() < 1.5:  # each stays under the per-process limit of 2 s
            pass
        time.sleep(20)
        os._exit(0)
time.sleep(20)
"""


def test_cpu_time_counts_for_the_whole_box_not_each_process(server):
    require_cgroups()
    started = time.monotonic()
    result = run_in(server.box(limits=small(cpu_seconds=2)), [python_inside(), "-c", CPU_HOGS], timeout=30)
    assert result.exceeded == "The step used more than 2 s of CPU time and was stopped."
    assert time.monotonic() - started < 15


def test_cgroups_left_by_a_dead_worker_are_removed(server):
    require_cgroups()
    with Session(server.box(limits=ROOMY)) as session:
        parents = [group.parent for group in session._cgroups.values()]
    stale = [parent / "999999999-0123456789ab" for parent in parents]
    for group in stale:
        group.mkdir()
    with Session(server.box(limits=ROOMY)):
        assert not any(group.exists() for group in stale)


@pytest.mark.parametrize(
    ("rules", "network"),
    [
        pytest.param((), "no network", id="no-rules"),
        pytest.param(
            (Rule.parse("api.openai.com:443"), Rule.parse("[::1]:8080", private_ok=True)),
            "network: api.openai.com:443, [::1]:8080 only",
            id="rules",
        ),
    ],
)
def test_describe_says_who_runs_the_command_and_its_limits(server, rules, network):
    who = identity()
    limits = small(memory_mb=2048, processes=256, cpu_seconds=600, disk_mb=1024)
    line = describe(server.box(limits=limits, egress=rules))
    user = f"uid {who.uid}, no capabilities" if who.switched else f"runs as your own user (uid {who.uid})"
    assert line.startswith(f"Sandbox: {user}, {network}, ")
    assert line.endswith("10 min CPU, 1 GB disk, 64 MB per file, 64 MB /tmp")


def test_describe_says_why_there_is_no_sandbox(monkeypatch):
    monkeypatch.setattr("goals.sandbox.sandbox_reason", lambda bwrap="bwrap": "bubblewrap is not installed")
    assert describe(Box(Path("/"))) == "No sandbox: bubblewrap is not installed."


def test_limits_come_from_settings(settings):
    settings.GOALPOST_SANDBOX_LIMITS = {"memory_mb": 100}
    limits = Limits.from_settings()
    assert (limits.memory_mb, limits.processes) == (100, 256)


# --- probing ---------------------------------------------------------------------------------------------


@pytest.fixture
def open_folder(outside_tmp):
    outside_tmp.chmod(0o755)
    return outside_tmp


@pytest.mark.parametrize(
    ("binary", "reason"),
    [
        pytest.param("goalpost-no-such-bwrap", "bubblewrap is not installed", id="not-installed"),
        pytest.param("false", "bubblewrap cannot create namespaces here: exit 1", id="fails-silently"),
        pytest.param(
            "{fake}",
            "bubblewrap cannot create namespaces here: bwrap: No permissions to create new namespace",
            id="no-user-namespaces",
        ),
    ],
)
def test_an_unusable_bubblewrap_is_reported_in_one_line(open_folder, binary, reason):
    fake = open_folder / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    binary = binary.format(fake=fake)
    assert sandbox_available(binary) is False
    assert sandbox_reason(binary) == reason


def test_a_usable_bubblewrap_has_no_reason():
    require_sandbox()
    assert sandbox_reason() == ""


# --- the environment -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "kept"),
    [
        pytest.param("SECRET_KEY", False, id="secret-key"),
        pytest.param("DATABASE_URL", False, id="database-url"),
        pytest.param("REDIS_URL", False, id="redis-url"),
        pytest.param("GITHUB_TOKEN", False, id="tokens"),
        pytest.param("OPENAI_API_KEY", False, id="api-keys"),
        pytest.param("AWS_SECRET_ACCESS_KEY", False, id="aws"),
        pytest.param("DJANGO_SETTINGS_MODULE", False, id="anything-else"),
        pytest.param("LANG", True, id="lang"),
        pytest.param("LC_ALL", True, id="locale"),
        pytest.param("TERM", True, id="term"),
        pytest.param("TZ", True, id="timezone"),
    ],
)
def test_scrubbed_env_keeps_only_harmless_variables(monkeypatch, variable, kept):
    monkeypatch.setenv(variable, "value-1")
    env = scrubbed_env()
    assert (env.get(variable) == "value-1") is kept
    assert env["PATH"] == os.environ["PATH"]
    assert env["HOME"] == "/tmp"


def test_scrubbed_env_adds_the_extra_variables_last():
    env = scrubbed_env({"HOME": "/tmp/home", "GOALPOST_STEP": "3"})
    assert (env["HOME"], env["GOALPOST_STEP"]) == ("/tmp/home", "3")


def test_the_agents_home_is_writable_inside_and_counts_towards_the_disk_limit(server):
    home = server.var / "agent-homes" / "goal-1"
    home.mkdir(parents=True)
    give_to_sandbox_user(home)
    box = server.box(limits=small(disk_mb=2), writable=(home,))
    wrote = run_in(box, ["bash", "-c", f"echo state > {home}/state.txt && ls {server.var}"], timeout=30)
    assert wrote.returncode == 0, wrote.stderr
    assert (home / "state.txt").read_text() == "state\n"
    assert "agent-homes" in wrote.stdout and "secret_key" not in wrote.stdout  # the rest of var/ stays hidden
    script = f"for i in $(seq 100); do head -c 500000 /dev/zero > {home}/f$i; sleep 0.05; done"
    filled = run_in(box, ["bash", "-c", script], timeout=30)
    assert filled.exceeded == "The step grew the worktree by more than 2 MB and was stopped."
    assert len(list(home.glob("f*"))) < 100

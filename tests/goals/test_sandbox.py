import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

from goals.sandbox import sandbox_available, sandbox_reason, sandboxed, scrubbed_env
from goals.workspace import Workspace
from tests.conftest import run_git

SECRET = "not-for-agents-5f2c"


def require_sandbox() -> None:
    """Skip when bubblewrap cannot run here; on CI, a bubblewrap that is installed but unusable fails."""
    if sandbox_available():
        return
    if os.environ.get("CI") and shutil.which("bwrap"):
        pytest.fail(f"bubblewrap is installed but unusable on CI: {sandbox_reason()}")
    pytest.skip(f"no usable sandbox here: {sandbox_reason()}")


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


def folder_outside_tmp() -> Path:
    # The sandbox gives every command an empty /tmp, which would hide pytest's tmp_path whatever the rules.
    for candidate in (Path("/var/tmp"), Path.home()):
        resolved = candidate.resolve()
        if resolved.is_dir() and not resolved.is_relative_to("/tmp") and os.access(resolved, os.W_OK):
            return resolved
    pytest.skip("no writable folder outside /tmp to lay out a server in")


@pytest.fixture
def server():
    """A server laid out as in production, outside /tmp: var/ holds the secret key and the worktrees."""
    require_sandbox()
    base = Path(tempfile.mkdtemp(prefix="goalpost-sandbox-", dir=folder_outside_tmp()))
    try:
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
        yield Server(base, repo, var, workspace)
    finally:
        shutil.rmtree(base)


def run_inside(server: Server, argv: list[str], **options) -> subprocess.CompletedProcess:
    command = sandboxed(
        argv,
        server.worktree,
        hide=[server.var],
        extra_ro=server.workspace.git_dirs(),
        **options,
    )
    return subprocess.run(command, capture_output=True, text=True, env=scrubbed_env(), timeout=60, check=False)


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
            "cat {var}/secret_key; ls -A {var}",
            True,
            "worktrees",
            None,
            id="it-cannot-read-the-hidden-secret-key",
        ),
        pytest.param(
            "echo x > /tmp/{probe} && cat /tmp/{probe}",
            True,
            "x",
            lambda server: not Path(f"/tmp/{server.probe}").exists(),
            id="its-tmp-is-private",
        ),
        pytest.param(
            "echo new > new.txt && export GIT_DIR={gitdir} GIT_WORK_TREE=. && git status --porcelain && git log --format=%s",
            True,
            "?? new.txt\ninitial",
            None,
            id="git-works-in-the-worktree",
        ),
        pytest.param(
            "git config core.fsmonitor 'touch /tmp/owned'",
            False,
            "",
            lambda server: "fsmonitor" not in (server.repo / ".git" / "config").read_text(),
            id="it-cannot-change-the-git-config",
        ),
        pytest.param(
            "printf '#!/bin/sh\\n' > {repo}/.git/hooks/pre-commit",
            False,
            "",
            lambda server: not (server.repo / ".git" / "hooks" / "pre-commit").exists(),
            id="it-cannot-plant-a-hook",
        ),
        pytest.param(
            "echo x >> {gitdir}/HEAD || echo refused; git --git-dir={gitdir} config core.fsmonitor evil",
            False,
            "refused",
            lambda server: "evil" not in (server.workspace.git_dir / "config").read_text(),
            id="its-git-directory-is-read-only",
        ),
        pytest.param("ls -A /run", True, "", None, id="no-local-daemon-sockets-without-network"),
        pytest.param("env", True, "HOME=/tmp", None, id="it-gets-the-scrubbed-environment"),
    ],
)
def test_what_a_sandboxed_command_can_and_cannot_do(server, script, succeeds, prints, host_check):
    script = script.format(repo=server.repo, var=server.var, probe=server.probe, gitdir=server.workspace.git_dir)
    result = run_inside(server, ["bash", "-c", script])

    assert (result.returncode == 0) is succeeds, result.stderr
    assert prints in result.stdout
    assert SECRET not in result.stdout + result.stderr
    if not prints:
        assert result.stdout.strip() == ""
    if host_check is not None:
        assert host_check(server)


@pytest.mark.parametrize(
    ("network", "connects"),
    [
        pytest.param(False, False, id="network-off-by-default"),
        pytest.param(True, True, id="network-on-request"),
    ],
)
def test_the_network_is_off_unless_asked_for(server, network, connects):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=10)"
        result = run_inside(server, [sys.executable, "-c", connect], network=network)
    assert (result.returncode == 0) is connects, result.stderr


def test_a_worktree_under_a_hidden_folder_stays_reachable(server):
    # The worktree lives in var/worktrees and var/ is hidden: it is bound back on top.
    assert server.worktree.is_relative_to(server.var)
    result = run_inside(server, ["bash", "-c", "pwd && cat app.py"])
    assert result.stdout == f"{server.worktree}\nprint('hello')\n"


def test_extra_read_only_paths_come_back_from_under_a_hidden_folder(server):
    tools = server.var / "tools"
    tools.mkdir()
    (tools / "tool.sh").write_text("echo tool ran\n")
    command = sandboxed(
        ["bash", "-c", f"bash {tools}/tool.sh && ! touch {tools}/x && ! cat {server.var}/secret_key"],
        server.worktree,
        hide=[server.var],
        extra_ro=[tools],
    )
    result = subprocess.run(command, capture_output=True, text=True, env=scrubbed_env(), timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "tool ran\n"


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
def test_an_unusable_bubblewrap_is_reported_in_one_line(tmp_path, binary, reason):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    binary = binary.format(fake=fake)
    assert sandbox_available(binary) is False
    assert sandbox_reason(binary) == reason


def test_a_usable_bubblewrap_has_no_reason():
    require_sandbox()
    assert sandbox_reason() == ""


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

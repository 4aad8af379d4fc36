"""Run agent and evidence commands inside bubblewrap: the filesystem read-only except the goal's worktree
(and the git directories it needs), the server's secrets hidden, no network unless asked for.

Pure: paths and strings in, a command line out. The caller passes the paths from settings.
"""

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

PROBE_TIMEOUT_S = 10
ISOLATION = ("--die-with-parent", "--new-session", "--unshare-pid")
# /tmp is a fresh tmpfs inside the sandbox, private to the one command.
BASE_MOUNTS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp")  # noqa: S108
KEPT_VARIABLES = frozenset({"PATH", "LANG", "LANGUAGE", "TERM", "TZ"})
SANDBOX_HOME = "/tmp"  # noqa: S108
# Files in a git directory that decide which programs git runs or where it looks. Writable, they would let
# the agent plant code that the server's own git calls, or the user's, run outside the sandbox.
GIT_CONTROL_FILES = ("config", "config.worktree", "commondir", "gitdir", "hooks")


@functools.cache
def _probe(bwrap: str) -> str:
    """Why bubblewrap cannot run here, or "" when it can."""
    binary = shutil.which(bwrap)
    if binary is None:
        return "bubblewrap is not installed"
    try:
        result = subprocess.run(
            [binary, *ISOLATION, *BASE_MOUNTS, "--unshare-net", "--", "true"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"bubblewrap did not start within {PROBE_TIMEOUT_S} s"
    except OSError as error:
        return f"bubblewrap cannot run here: {error.strerror or error}"
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        detail = lines[-1] if lines else f"exit {result.returncode}"
        return f"bubblewrap cannot create namespaces here: {detail}"
    return ""


def sandbox_available(bwrap: str = "bwrap") -> bool:
    """True when ``bwrap`` really runs a command here (checked once per binary by running ``true``)."""
    return _probe(bwrap) == ""


def sandbox_reason(bwrap: str = "bwrap") -> str:
    """Why commands cannot be sandboxed, in one line for the goal page; "" when they can."""
    return _probe(bwrap)


def _git_control_paths(worktree: Path, git_dirs: Iterable[Path]) -> list[Path]:
    paths = [worktree / ".git"] if (worktree / ".git").is_file() else []
    for git_dir in git_dirs:
        paths += [git_dir / name for name in GIT_CONTROL_FILES]
        worktrees = git_dir / "worktrees"
        if worktrees.is_dir():
            paths += [admin / name for admin in sorted(worktrees.iterdir()) for name in GIT_CONTROL_FILES]
    return [path for path in dict.fromkeys(paths) if path.exists() and not path.is_symlink()]


def sandboxed(
    argv: list[str],
    worktree: Path,
    *,
    network: bool = False,
    hide: Iterable[Path] = (),
    extra_ro: Iterable[Path] = (),
    git_dirs: Iterable[Path] = (),
    bwrap: str = "bwrap",
) -> list[str]:
    """The bubblewrap command line that runs ``argv`` in ``worktree``.

    Inside: the whole filesystem read-only, a fresh /dev, /proc and /tmp; each path in ``hide`` replaced by
    an empty tmpfs (a hidden file by /dev/null); ``extra_ro`` bound read-only again on top of that; the
    worktree and ``git_dirs`` read-write (even under a hidden path), except the files of those git
    directories that make git run programs (config, hooks) or point it elsewhere. No network unless
    ``network`` is true; without it /run (local daemons' sockets) is hidden too. Its own pid namespace and
    session, killed when the caller dies.
    """
    worktree = Path(worktree).resolve()
    args = [bwrap, *ISOLATION, *BASE_MOUNTS]
    hidden = [Path(path).resolve() for path in hide]
    if not network:
        args.append("--unshare-net")
        # A unix socket stays reachable on a read-only mount: no network means no local daemons either.
        hidden.append(Path("/run").resolve())
    for path in dict.fromkeys(hidden):
        if path.is_dir():
            args += ["--tmpfs", str(path)]
        elif path.exists():
            args += ["--ro-bind", "/dev/null", str(path)]
    # The server's own Python stays visible (read-only) even when it lives under /tmp or a hidden path, so
    # evidence commands that run it (`python -m pytest`) work inside.
    toolchain = [Path(sys.prefix), Path(sys.base_prefix)]
    for path in dict.fromkeys(Path(path).resolve() for path in [*toolchain, *extra_ro]):
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    writable = dict.fromkeys([worktree, *(Path(path).resolve() for path in git_dirs)])
    # Parents first, so binding a parent never covers a child bound before it.
    for path in sorted(writable, key=lambda path: len(path.parts)):
        args += ["--bind", str(path), str(path)]
    for path in _git_control_paths(worktree, list(writable)[1:]):
        args += ["--ro-bind", str(path), str(path)]
    return [*args, "--chdir", str(worktree), "--", *argv]


def scrubbed_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for agent and evidence commands without the server's secrets.

    Keeps PATH, the locale (LANG, LC_*), TERM and TZ; HOME becomes /tmp (private inside the sandbox);
    everything else (SECRET_KEY, DATABASE_URL, REDIS_URL, tokens, cloud keys …) is dropped. ``extra`` is
    added last.
    """
    env = {key: value for key, value in os.environ.items() if key in KEPT_VARIABLES or key.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    env["HOME"] = SANDBOX_HOME
    env.update(extra or {})
    return env

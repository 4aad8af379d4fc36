"""What every agent adapter shares: the context of a step, its result, the error, and the worktree guards.

Pure Python plus subprocess: no Django here, so the loop, a management command and the tests can all drive
an agent. Every failure an adapter can meet leaves it as an :class:`AgentError` with a one-line reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from goals.lint import Contract

LOG_LIMIT = 20_000  # characters of an agent's output kept for the step page
OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes of a stream kept in memory (the tail: results come last)
GIT_TIMEOUT_S = 60
KILL_GRACE_S = 2


class AgentError(Exception):
    """A step the agent could not do. ``permanent``: retrying will not help (bad settings, no such agent)."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


@dataclass(frozen=True)
class AgentContext:
    """Everything an agent needs for one step of a goal."""

    contract: Contract
    goal_title: str
    step_number: int
    run_index: int  # runs of the agent already made for this goal, 0-based
    worktree: Path
    history: tuple[str, ...] = ()  # one-line summaries of earlier steps, oldest first
    last_findings: tuple[dict, ...] = ()  # the previous step's gate findings
    human_comments: tuple[str, ...] = ()
    # How each earlier step ended, oldest first: a step status ("passed", "approved", "failed"…), or "rejected"
    # when a person rejected it or the request about it (a done review included).
    outcomes: tuple[str, ...] = ()
    remaining: dict = field(default_factory=dict)  # budget name -> amount left
    timeout_s: float = 3600
    env: dict | None = None  # the environment for CLI agents, already scrubbed of the server's secrets
    wrap: Callable[[list[str]], list[str]] | None = None  # argv -> sandboxed argv
    # The worker's git on this worktree (explicit git dir, trusted config only); None: plain `git -C worktree`.
    git: Callable[..., subprocess.CompletedProcess] | None = None
    # A requests.Session for the adapter's own HTTP calls that obeys the goal's egress rules; None: none allowed
    # beyond plain requests (tests of the adapter alone).
    http: Callable[[], object] | None = None
    # The goal's own folder for the agent's state (Codex's CODEX_HOME): outside the worktree, so never committed;
    # writable in the box, kept between steps, bound into no other goal's box. None: the adapter makes do.
    home: Path | None = None


@dataclass(frozen=True)
class AgentResult:
    """What one step of an agent produced besides its edits to the worktree."""

    summary: str
    tokens: int = 0
    done: bool = False
    reported_bugs: tuple[str, ...] = ()
    plan: str = ""
    cost_usd: float | None = None
    log: str = ""


class Agent:
    """Base class of the adapters: validate settings in ``__init__``, edit the worktree in ``run_step``."""

    name: str = ""
    allowed_settings: frozenset[str] = frozenset()

    def __init__(self, settings: dict):
        if not isinstance(settings, dict):
            raise AgentError(f"{self.name} agent settings must be a JSON object.", permanent=True)
        unknown = sorted(set(settings) - self.allowed_settings)
        if unknown:
            allowed = ", ".join(sorted(self.allowed_settings)) or "none"
            raise AgentError(
                f"Unknown {self.name} agent setting {', '.join(map(repr, unknown))} (allowed: {allowed}).",
                permanent=True,
            )
        self.settings = dict(settings)

    def run_step(self, ctx: AgentContext) -> AgentResult:
        """Edit files in ``ctx.worktree`` (never commit), say what was done; raise AgentError on failure."""
        raise NotImplementedError


# --- small helpers ---------------------------------------------------------------------------------------


def one_line(text: object, limit: int = 300) -> str:
    """Text on one line, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def cap_tail(text: str, limit: int = LOG_LIMIT) -> str:
    """The last ``limit`` characters of ``text``, saying how much was dropped before them."""
    if len(text) <= limit:
        return text
    return f"[… {len(text) - limit:,} characters dropped …]\n" + text[-limit:]


def timeout_setting(settings: dict, agent: str) -> float | None:
    """The optional ``timeout_s`` setting, checked: a positive number of seconds."""
    value = settings.get("timeout_s")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise AgentError(f"{agent} agent: timeout_s must be a positive number of seconds.", permanent=True)
    return float(value)


def effective_timeout(setting: float | None, ctx: AgentContext) -> float:
    """The step's timeout: the adapter's own limit, never beyond what the loop allows."""
    return min(setting, ctx.timeout_s) if setting is not None else ctx.timeout_s


def worktree_of(ctx: AgentContext) -> Path:
    """The step's worktree as a resolved path; an AgentError when it is gone."""
    worktree = Path(ctx.worktree).resolve()
    if not worktree.is_dir():
        raise AgentError(f"The worktree {worktree} does not exist.")
    return worktree


# --- git -------------------------------------------------------------------------------------------------


GitRunner = Callable[..., subprocess.CompletedProcess]


def git(
    worktree: Path, *args: str, input: bytes | None = None, runner: GitRunner | None = None
) -> subprocess.CompletedProcess:
    """Run git on the worktree: through ``runner`` (the workspace's own git, which never discovers a ``.git``
    the agent planted) when given, else in the folder with the host's config ignored; a git that hangs becomes
    an AgentError."""
    from goals.workspace import hardened_env, safe_config_args

    try:
        if runner is not None:
            return runner(*args, input=input)
        return subprocess.run(
            ["git", *safe_config_args(), "-C", str(worktree), *args],
            input=input,
            capture_output=True,
            timeout=GIT_TIMEOUT_S,
            env=hardened_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise AgentError(f"git {args[0]} took longer than {GIT_TIMEOUT_S} s.") from error
    except OSError as error:
        raise AgentError(f"git could not run: {error}", permanent=True) from error


def first_error(stderr: bytes | str, default: str = "no reason given") -> str:
    """The first meaningful line of a tool's error output."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith(("error", "fatal"))]
    return one_line((errors or lines or [default])[0], 240)


def tracked_files(worktree: Path, runner: GitRunner | None = None) -> list[str]:
    """The files git tracks in the worktree (empty outside a repository)."""
    listing = git(worktree, "ls-files", "-z", runner=runner)
    if listing.returncode != 0:
        return []
    return [name for name in listing.stdout.decode("utf-8", "replace").split("\0") if name]


# --- keeping edits inside the worktree -------------------------------------------------------------------


def _is_inside(path: str, root: Path) -> bool:
    return Path(path) == root or Path(path).is_relative_to(root)


def confined_path(worktree: Path, relative: str) -> Path:
    """The worktree file that ``relative`` names; AgentError when it is absolute, climbs out with ``..``,
    enters ``.git`` or leads outside through a symlink."""
    if not isinstance(relative, str) or not relative.strip() or "\0" in relative:
        raise AgentError(f"Refused the path {relative!r}: not a file name.")
    parts = Path(relative).parts
    if Path(relative).is_absolute():
        raise AgentError(f"Refused the absolute path {relative}: edits stay inside the worktree.")
    if ".." in parts:
        raise AgentError(f"Refused the path {relative}: “..” would leave the worktree.")
    if ".git" in parts:
        raise AgentError(f"Refused the path {relative}: the agent never edits .git.")
    target = worktree / relative
    resolved = os.path.realpath(target)
    if not _is_inside(resolved, worktree) or _is_inside(resolved, worktree / ".git"):
        raise AgentError(f"Refused the path {relative}: a symlink leads it outside the worktree.")
    return target


def check_confinement(worktree: Path, runner: GitRunner | None = None) -> None:
    """After a run: refuse (and remove) any new or changed symlink that leads outside the worktree or into
    .git, so that neither the next step nor the evidence commands can write through it."""
    status = git(worktree, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", runner=runner)
    if status.returncode != 0:
        return
    escapes = []
    for entry in status.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if len(entry) < 4:
            continue
        path = worktree / entry[3:]
        if not path.is_symlink():
            continue
        resolved = os.path.realpath(path)
        if _is_inside(resolved, worktree) and not _is_inside(resolved, worktree / ".git"):
            continue
        escapes.append(f"{entry[3:]} -> {os.readlink(path)}")
        path.unlink()
    if escapes:
        raise AgentError(f"Refused a symlink leading outside the worktree: {', '.join(escapes)} (removed).")


# --- patches ---------------------------------------------------------------------------------------------

_BINARY = re.compile(rb"^(?:GIT binary patch|Binary files .* differ)\s*$", re.MULTILINE)
_GIT_HEADER = re.compile(r'^diff --git ("?)a/(.+?)\1 ("?)b/(.+?)\3\s*$')
_EXTENDED_HEADER = re.compile(r"^(?:rename|copy) (?:from|to) (.+)$")


def _header_path(line: str) -> str:
    path = line[4:].split("\t", 1)[0].strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1]
    return path


def inspect_patch(patch: str) -> tuple[list[str], int]:
    """The paths a unified diff touches (as the worktree names them) and the ``-p`` level to apply it with:
    1 for git-style ``a/``/``b/`` paths, 0 for diffs that name files bare (as models often write them)."""
    lines = patch.splitlines()
    git_paths: list[str] = []
    pairs: list[str] = []
    for index, line in enumerate(lines):
        header = _GIT_HEADER.match(line)
        if header:
            git_paths += [header.group(2), header.group(4)]
            continue
        extended = _EXTENDED_HEADER.match(line)
        if extended and git_paths:
            git_paths.append(extended.group(1).strip('"'))
            continue
        # A removed line "-- x" shows as "--- x": only a "---" directly followed by "+++" is a header.
        if line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1].startswith("+++ "):
            pairs += [_header_path(line), _header_path(lines[index + 1])]
    named = [path for path in pairs if path != "/dev/null"]
    prefixed = bool(named) and all(path.startswith(("a/", "b/")) for path in named)
    strip = 1 if git_paths or prefixed else 0
    paths = list(git_paths)
    for path in named:
        stripped = path.split("/", 1)[1] if strip and "/" in path else path
        paths.append(stripped)
    unique = list(dict.fromkeys(paths))
    return unique, strip


def _snapshot(worktree: Path, paths: Iterable[str]) -> dict[str, bytes | None]:
    saved: dict[str, bytes | None] = {}
    for relative in paths:
        path = worktree / relative
        saved[relative] = path.read_bytes() if path.is_file() and not path.is_symlink() else None
    return saved


def _restore(worktree: Path, saved: dict[str, bytes | None], runner=None) -> None:
    for relative, content in saved.items():
        path = worktree / relative
        if content is None:
            if path.is_file() or path.is_symlink():
                path.unlink()
        else:
            path.write_bytes(content)
    git(worktree, "reset", "-q", "--", *saved, runner=runner)


def apply_patch(
    worktree: Path, patch: str | bytes, runner: GitRunner | None = None
) -> list[str]:
    """Apply a unified diff with ``git apply`` (checked first, then a three-way merge as a fallback) and
    return the paths it touched. Binary patches and paths outside the worktree are refused; a patch that
    does not apply leaves the worktree as it was."""
    data = patch.encode("utf-8", "surrogateescape") if isinstance(patch, str) else patch
    if not data.strip():
        raise AgentError("The patch is empty.")
    if _BINARY.search(data):
        raise AgentError("Refused a binary patch: only text diffs are applied.")
    if not data.endswith(b"\n"):
        data += b"\n"
    paths, strip = inspect_patch(data.decode("utf-8", "surrogateescape"))
    if not paths:
        raise AgentError("The patch is not a unified diff: it names no file.")
    for path in paths:
        confined_path(worktree, path)
    command = ["apply", "--whitespace=nowarn", "--recount", f"-p{strip}"]
    check = git(worktree, *command, "--check", input=data, runner=runner)
    if check.returncode == 0:
        applied = git(worktree, *command, input=data, runner=runner)
        if applied.returncode != 0:
            raise AgentError(f"The patch does not apply: {first_error(applied.stderr)}")
        return paths
    saved = _snapshot(worktree, paths)
    merged = git(worktree, *command, "--3way", input=data, runner=runner)
    if merged.returncode == 0:
        return paths
    _restore(worktree, saved, runner)
    raise AgentError(f"The patch does not apply: {first_error(check.stderr)}")


# --- running a command-line agent ------------------------------------------------------------------------


class _TailReader(threading.Thread):
    """Drains one pipe so the child never blocks, keeping only the last ``limit`` bytes."""

    def __init__(self, stream, limit: int):
        super().__init__(daemon=True)
        self.stream = stream
        self.limit = limit
        self.buffer = bytearray()
        self.dropped = 0

    def run(self) -> None:
        try:
            while chunk := self.stream.read1(65536):
                self.buffer += chunk
                if len(self.buffer) > 2 * self.limit:  # trim in batches: each trim moves the whole tail
                    excess = len(self.buffer) - self.limit
                    del self.buffer[:excess]
                    self.dropped += excess
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        if len(self.buffer) > self.limit:
            self.dropped += len(self.buffer) - self.limit
            del self.buffer[: len(self.buffer) - self.limit]
        text = self.buffer.decode("utf-8", "replace")
        if self.dropped:
            # Start at a line boundary so that the first kept line is whole.
            text = text.split("\n", 1)[1] if "\n" in text else ""
        return text


@dataclass(frozen=True)
class ProcessOutput:
    """What a finished command printed (each stream's tail) and how it exited."""

    returncode: int
    stdout: str
    stderr: str
    dropped: int = 0  # bytes of stdout dropped from its start


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_process(
    argv: list[str],
    *,
    cwd: Path,
    env: dict | None,
    timeout_s: float,
    wrap: Callable[[list[str]], list[str]] | None = None,
    label: str = "",
) -> ProcessOutput:
    """Run a command in its own process group with no stdin; on timeout stop the whole group and raise.
    Whatever the command left running in its group is stopped when it exits, too."""
    label = label or Path(argv[0]).name
    if wrap is not None:
        try:
            argv = list(wrap(list(argv)))
        except Exception as error:  # the sandbox helper is the caller's code: any failure is a setup problem
            raise AgentError(f"The sandbox could not wrap {label}: {error}", permanent=True) from error
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError as error:
        raise AgentError(
            f"{label} was not found ({argv[0]}): install it or set “executable”.", permanent=True
        ) from error
    except PermissionError as error:
        raise AgentError(f"{label} is not executable ({argv[0]}).", permanent=True) from error
    except (OSError, ValueError, TypeError) as error:
        raise AgentError(f"{label} could not start: {error}") from error
    readers = [_TailReader(process.stdout, OUTPUT_LIMIT), _TailReader(process.stderr, OUTPUT_LIMIT // 4)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=KILL_GRACE_S)
    finally:
        _kill_group(process.pid, signal.SIGKILL)
        process.wait()
    for reader in readers:
        # A process that left the group (setsid) may hold a pipe open: never wait for it for long.
        reader.join(timeout=KILL_GRACE_S)
    for reader, stream in zip(readers, (process.stdout, process.stderr), strict=True):
        if not reader.is_alive():  # closing a pipe another thread still reads would block on its lock
            stream.close()
    if timed_out:
        raise AgentError(f"{label} timed out after {timeout_s:g} s and was stopped.")
    stdout, stderr = readers
    return ProcessOutput(process.returncode, stdout.text(), stderr.text(), stdout.dropped)

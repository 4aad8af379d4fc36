"""Git repositories, and the per-goal checkouts where agents work one committed step at a time.

Everything the agent writes is hostile, and the worker runs git as root outside the sandbox. So the worker's
git never trusts anything the agent could have written:

- it reads no system or global config, runs no hooks, no fsmonitor, no pager, no external diff or textconv,
  and only config that Goalpost wrote itself (the goal's git directory and the mirror are Goalpost's);
- each goal works in Goalpost's own checkout: a git directory under ``var/gitdirs/`` (root-owned, outside the
  worktree, shown to the sandbox read-only) whose objects come from Goalpost's mirror of the registered
  repository (``var/repos/``), and a worktree with no ``.git`` in it at all. Git is always pointed at both
  with ``--git-dir`` and ``--work-tree``, so it never discovers anything;
- a ``.git`` the agent leaves anywhere in the worktree, or a FIFO, socket or device, fails the step before
  the worker's git looks at the tree, and is removed without being read;
- the user's repository is written in one place only: :meth:`Workspace.publish`, which pushes the goal's
  branch once its done review is approved, with the receiving side run as the repository's owner.
"""

import contextlib
import fcntl
import logging
import os
import re
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT_S = 10
log = logging.getLogger(__name__)


class RepositoryError(ValueError):
    """A repository path or branch that a goal cannot work on; the message is fit for a form."""

    def __init__(self, message: str, field: str = "repo_path"):
        super().__init__(message)
        self.field = field


# --- the worker's git: trusted config only -------------------------------------------------------------

# Command-line config outranks every config file: no hooks, no signing, no fsmonitor daemon, no attributes or
# excludes files from outside the repository, no submodule recursion, and no background gc after a commit.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.untrackedCache=false",
    "core.pager=cat",
    "commit.gpgsign=false",
    "tag.gpgsign=false",
    "diff.external=",
    "submodule.recurse=false",
    "status.submoduleSummary=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.ext.allow=never",
)
# Diffs in the shape goals.diffs parses, whatever the user's own git config says.
DIFF_ARGS = (
    "--binary",
    "-M",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
    "--ignore-submodules=all",
)


def hardened_env(extra: dict[str, str] | None = None, *, global_config: str = os.devnull) -> dict[str, str]:
    """The environment of every git the worker runs: the server's own GIT_* variables dropped (GIT_DIR,
    GIT_CONFIG_PARAMETERS … would point git elsewhere), no system config, and only ``global_config`` (by
    default none) as the global one."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {
        **env,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": global_config,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
        **(extra or {}),
    }


def safe_config_args() -> list[str]:
    return [arg for item in SAFE_CONFIG for arg in ("-c", item)]


@contextlib.contextmanager
def _trusting(*paths: Path) -> Iterator[str]:
    """A global config naming exactly ``paths`` (and their ``.git``) as safe directories, for reading a
    registered repository that another user owns. Never ``*``."""
    with tempfile.NamedTemporaryFile("w", prefix="goalpost-git-", suffix=".config") as config:
        for path in paths:
            for safe in (path, path / ".git"):
                config.write(f"[safe]\n\tdirectory = {safe}\n")
        config.flush()
        yield config.name


def git(repo: str | Path, *args: str) -> subprocess.CompletedProcess:
    """A short read-only git command in a registered repository (no config of the host, hooks or fsmonitor)."""
    with _trusting(Path(repo).absolute()) as trusted:
        return subprocess.run(
            ["git", *safe_config_args(), "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=hardened_env(global_config=trusted),
            check=False,
        )


def is_url(source: str) -> bool:
    """A remote repository (https://, ssh://, git://, or scp-like user@host:path) rather than a local path."""
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", source)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", source))


def check_repository(path: str, branch: str) -> str:
    """Return the repository's absolute top-level path, or raise RepositoryError saying what is wrong."""
    if not path:
        raise RepositoryError("Give the path of a git repository on the server.")
    repo = Path(path).expanduser()
    if not repo.is_absolute():
        raise RepositoryError("Use an absolute path (it starts with /).")
    if not repo.is_dir():
        raise RepositoryError(f"No folder at {repo}.")
    repo = repo.resolve()
    toplevel = git(repo, "rev-parse", "--show-toplevel")
    if toplevel.returncode != 0:
        bare = git(repo, "rev-parse", "--is-bare-repository")
        if bare.returncode == 0 and bare.stdout.strip() == "true":
            raise RepositoryError(f"{repo} is a bare repository: give a clone with a work tree.")
        raise RepositoryError(f"{repo} is not a git repository.")
    if not branch:
        raise RepositoryError("Name the base branch the goal starts from.", field="base_branch")
    if git(repo, "check-ref-format", "--branch", branch).returncode != 0:
        raise RepositoryError(f"“{branch}” is not a valid branch name.", field="base_branch")
    if git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").returncode != 0:
        raise RepositoryError(f"The repository has no branch “{branch}”.", field="base_branch")
    return toplevel.stdout.strip()


# --- per-goal checkouts ------------------------------------------------------------------------------------

WORKTREE_GIT_TIMEOUT_S = 300
FETCH_TIMEOUT_S = 600
SUBJECT_LIMIT = 72
DIFF_CAP = 8_000_000  # bytes of a step's diff the worker reads; past it the diff is cut and the step asks a human
READ_CHUNK = 1 << 16
_SHA = re.compile(r"[0-9a-f]{4,64}")
# Folders holding every goal's checkout: the sandbox user may pass through to its own, never list the others.
TRAVERSE_ONLY = 0o711


class WorkspaceError(RuntimeError):
    """A git operation on a goal's checkout failed; the message is one line fit for the goal page."""


class PlantedFiles(WorkspaceError):
    """The agent left git control files or special files in the worktree; they were removed unread."""

    def __init__(self, paths: list[str]):
        self.paths = paths
        shown = ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")
        super().__init__(
            f"The agent planted files that git or the server could run or block on: {shown}. They were removed "
            "unread; nothing of them ran."
        )


@dataclass(frozen=True)
class StepCommit:
    """The commit that ends a step: its sha, its parent, the diff between them (cut at ``DIFF_CAP`` bytes,
    then ``truncated``), the full list of changed paths, and whether it changed nothing."""

    sha: str
    parent: str
    diff: str
    empty: bool
    truncated: bool = False
    diff_bytes: int = 0
    paths: tuple[str, ...] = field(default=())


def _subcommand(args: list[str]) -> str:
    words = iter(args)
    for word in words:
        if word in ("-C", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "git"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _step_message(number: int, summary: str) -> str:
    summary = summary.replace("\x00", "").strip()
    first, _, rest = summary.partition("\n")
    subject = f"Step {number}: {first.strip()}" if first.strip() else f"Step {number}"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1].rstrip() + "…"
    elif not rest.strip():
        return subject + "\n"
    return f"{subject}\n\n{summary}\n"


def run_git(
    args: list[str],
    *,
    input: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = WORKTREE_GIT_TIMEOUT_S,
    global_config: str = os.devnull,
) -> subprocess.CompletedProcess:
    """The worker's git, with trusted config only; a failure raises WorkspaceError with git's reason."""
    try:
        result = subprocess.run(
            ["git", *safe_config_args(), *args],
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            env=hardened_env(env, global_config=global_config),
            stdin=None if input is not None else subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise WorkspaceError(f"git {_subcommand(args)} took longer than {timeout:g} s") from error
    except OSError as error:
        raise WorkspaceError(f"cannot run git: {error.strerror or error}") from error
    if check and result.returncode != 0:
        message = _one_line(result.stderr or result.stdout) or f"exit {result.returncode}"
        raise WorkspaceError(f"git {_subcommand(args)} failed: {message}")
    return result


def _capped_output(argv: list[str], env: dict[str, str], cap: int) -> tuple[bytes, int, bool]:
    """Run ``argv`` and read at most ``cap`` bytes of its output: (the bytes, how many it printed, cut?).
    Past the cap the command is stopped, so the worker's memory stays bounded whatever the diff is."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    kept = bytearray()
    total = 0
    truncated = False
    try:
        assert process.stdout is not None
        while chunk := process.stdout.read1(READ_CHUNK):
            total += len(chunk)
            room = cap - len(kept)
            if room > 0:
                kept += chunk[:room]
            if total > cap:
                truncated = True
                process.send_signal(signal.SIGKILL)
                break
        process.wait(timeout=WORKTREE_GIT_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    if not truncated and process.returncode != 0:
        raise WorkspaceError(f"git {_subcommand(argv[1:])} failed: exit {process.returncode}")
    return bytes(kept), total, truncated


CONFIG_READ_CAP = 64 * 1024


def _committed_file(prefix: list[str], spec: str, limit: int, global_config: str = os.devnull) -> bytes | None:
    """``git cat-file blob <spec>`` (a commit's file, never a worktree's), at most ``limit`` bytes; None when
    the file is not there."""
    argv = ["git", *safe_config_args(), *prefix, "cat-file", "blob", spec]
    try:
        data, _total, _cut = _capped_output(argv, hardened_env(global_config=global_config), limit)
    except (WorkspaceError, OSError, subprocess.TimeoutExpired):
        return None
    return data


def branch_file_reader(repo: str | Path, branch: str, limit: int = CONFIG_READ_CAP) -> Callable[[str], bytes | None]:
    """Read files as committed on ``branch`` of a registered local repository (its worktree is never read)."""
    repo = Path(repo).absolute()

    def read(path: str) -> bytes | None:
        with _trusting(repo) as trusted:
            return _committed_file(["-C", str(repo)], f"refs/heads/{branch}:{path}", limit, trusted)

    return read


def _cut_at_file(diff: str) -> str:
    """A diff cut mid-file, shortened to the files it holds whole."""
    end = diff.rfind("\ndiff --git ")
    return diff[: end + 1] if end > 0 else ""


def planted_files(worktree: Path) -> list[str]:
    """Paths in the worktree that git or the server would trust or block on: any ``.git`` (file, folder or
    link, at any depth), FIFOs, sockets and device files. Walks without following links."""
    found: list[str] = []
    stack = [worktree]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            relative = os.path.relpath(entry.path, worktree)
            if entry.name == ".git":
                found.append(relative)
                continue
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except OSError:
                continue
            if stat.S_ISDIR(mode):
                stack.append(Path(entry.path))
            elif not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
                found.append(relative)
    return sorted(found)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)  # never follows links (fd-based on Linux)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _give_to(worktree: Path, owner: tuple[int, int] | None) -> None:
    """Make every file of the worktree the sandbox user's (links themselves, never what they point at)."""
    if owner is None or os.geteuid() != 0:
        return
    uid, gid = owner
    os.lchown(worktree, uid, gid)
    for folder, folders, files in os.walk(worktree, followlinks=False):
        for name in folders + files:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(folder, name), uid, gid)


def _owner_of(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def _as_owner(path: Path, program: str) -> str:
    """The git ``program`` (upload-pack, receive-pack) run as the owner of the repository at ``path``: root
    never runs git in a repository someone else controls, and what it writes stays that person's."""
    uid, gid = _owner_of(path)
    if os.geteuid() != 0 or uid == 0:
        return f"git {program}"
    return (
        f"setpriv --reuid={uid} --regid={gid} --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs "
        f"git {program}"
    )


def _is_real_folder(info: os.stat_result) -> bool:
    return stat.S_ISDIR(info.st_mode)


def _lstat_in(folder: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _aside_name(name: str) -> str:
    return f"{name}.stale-{time.strftime('%Y%m%dT%H%M%S')}-{os.urandom(3).hex()}"


def move_aside(folder: int, name: str, why: str) -> str:
    """Rename ``name`` in the open ``folder`` to ``<name>.stale-<time>`` beside it, whatever it is (a link
    is moved itself, never what it points to). Returns the new name."""
    aside = _aside_name(name)
    os.rename(name, aside, src_dir_fd=folder, dst_dir_fd=folder)
    log.warning("moved %s aside to %s: %s", name, aside, why)
    return aside


@contextlib.contextmanager
def real_folder(base: Path, *names: str, mode: int = 0o755) -> Iterator[int]:
    """An open descriptor of ``base/names…``, made where missing. ``base`` is Goalpost's own (from settings);
    below it nothing is followed: a component that is a link or a file is moved aside and a folder made in
    its place, so no link planted there can steer a rename or a write outside."""
    base.mkdir(parents=True, exist_ok=True)
    current = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in names:
            info = _lstat_in(current, name)
            if info is not None and not _is_real_folder(info):
                move_aside(current, name, "not a folder")
                info = None
            if info is None:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, mode, dir_fd=current)
            below = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
            os.close(current)
            current = below
        yield current
    finally:
        os.close(current)
@contextlib.contextmanager
def _exclusively(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file`` (made if missing): other processes and threads wait for it."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Mirror:
    """Goalpost's own bare copy of a registered repository (``var/repos/<id>.git``): cloned once, fetched
    before a goal starts. Goals take their objects from it; nothing but the worker ever writes it."""

    def __init__(self, source: str | Path, path: str | Path):
        self.source = str(source)
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"Mirror({self.source!r}, {str(self.path)!r})"

    @property
    def objects(self) -> Path:
        return self.path / "objects"

    def _source_args(self) -> tuple[list[str], Path | None]:
        if is_url(self.source):
            return [], None
        local = Path(self.source)
        if not local.is_dir():
            raise WorkspaceError(f"No folder at {local}.")
        return ["--upload-pack", _as_owner(local, "upload-pack")], local

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def refresh(self) -> None:
        """Clone the repository if there is no mirror yet, else fetch every branch (pruning deleted ones)."""
        extra, _local = self._source_args()
        if not self.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.path.parent, TRAVERSE_ONLY)
        # Goals of one repository starting at once on several workers: one clones (or fetches) at a time, the others
        # wait and then fetch, instead of failing on the other's clone or ref locks.
        with _exclusively(self.path.with_name(f"{self.path.name}.lock")):
            if not self.exists():
                with tempfile.TemporaryDirectory(dir=self.path.parent, prefix=".clone-") as scratch:
                    target = Path(scratch) / "mirror.git"
                    run_git(
                        ["clone", "--quiet", "--mirror", "--no-local", *extra, "--", self.source, str(target)],
                        timeout=FETCH_TIMEOUT_S,
                    )
                    target.rename(self.path)
                return
            run_git(
                [f"--git-dir={self.path}", "fetch", "--quiet", "--prune", *extra, "--", self.source,
                 "+refs/heads/*:refs/heads/*"],
                timeout=FETCH_TIMEOUT_S,
            )

    def tip(self, branch: str) -> str:
        """The sha of ``branch`` in the mirror."""
        ref = f"refs/heads/{branch}^{{commit}}"
        return run_git([f"--git-dir={self.path}", "rev-parse", "--verify", ref]).stdout.strip()

    def export(self, commit: str, dest: Path, owner: tuple[int, int] | None = None) -> None:
        """A throwaway checkout: the files of ``commit`` written into the empty folder ``dest`` (no ``.git``, no
        index left behind), then given to ``owner``. Only Goalpost's mirror is read, with trusted config."""
        if not _SHA.fullmatch(commit):
            raise WorkspaceError(f"“{_one_line(commit, 80)}” is not a commit sha.")
        with tempfile.TemporaryDirectory(prefix="goalpost-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            tree = [f"--git-dir={self.path}", f"--work-tree={dest}", "-C", str(dest)]
            run_git([*tree, "read-tree", commit], env=env)
            run_git([*tree, "checkout-index", "--all", "--force"], env=env)
        _give_to(dest, owner)

    def has_branch(self, branch: str) -> bool:
        ref = f"refs/heads/{branch}^{{commit}}"
        return run_git([f"--git-dir={self.path}", "rev-parse", "--verify", "--quiet", ref], check=False).returncode == 0


class Workspace:
    """One goal's checkout: its own git directory (``<git_root>/<instance>/goal-<id>.git``, root-owned, objects
    borrowed from the mirror) and a worktree (``<root>/<instance>/goal-<id>``, owned by the sandbox user, no
    ``.git`` inside), on the branch ``goalpost/<goal id>``. Without ``instance`` the folders sit in the roots.

    ``source`` is the registered repository (a path or a URL); ``instance`` the Goalpost the goal belongs to
    (settings.GOALPOST_INSTANCE: two databases never share a folder); ``mirror_dir`` where its mirror lives
    (default: ``<root>/../repos/<name>.git``); ``owner`` the (uid, gid) the worktree's files belong to.
    """

    def __init__(
        self,
        source: str | Path,
        goal_id: int,
        base_branch: str,
        root: str | Path,
        *,
        mirror_dir: str | Path | None = None,
        git_root: str | Path | None = None,
        owner: tuple[int, int] | None = None,
        instance: str = "",
    ):
        self.source = str(source)
        self.goal_id = int(goal_id)
        self.base_branch = base_branch
        root = Path(root).expanduser().absolute()
        git_root = Path(git_root or root.parent / "gitdirs").absolute()
        self.roots = (root, git_root)
        self.between = (instance,) if instance else ()
        self.path = root.joinpath(*self.between, f"goal-{self.goal_id}")
        self.git_dir = git_root.joinpath(*self.between, f"goal-{self.goal_id}.git")
        # Where checkouts were made before goals had an instance: taken over when they come from the same mirror.
        self.legacy = (root / self.path.name, git_root / self.git_dir.name) if instance else None
        default_mirror = root.parent / "repos" / (re.sub(r"[^\w.-]+", "_", self.source).strip("_")[-80:] + ".git")
        self.mirror = Mirror(self.source, mirror_dir or default_mirror)
        self.branch = f"goalpost/{self.goal_id}"
        self.owner = owner

    def __repr__(self) -> str:
        return f"Workspace({self.source!r}, {self.goal_id}, {self.base_branch!r}, {str(self.path)!r})"

    # --- running git ---

    def _git(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """Git in the goal's git directory alone (no worktree)."""
        return run_git([f"--git-dir={self.git_dir}", *args], **kwargs)

    def _tree(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Git on the worktree, explicitly: never a ``.git`` found in it."""
        self._require()
        return run_git([*self._tree_prefix(), *args], input=input, env=env, check=check)

    def _tree_prefix(self) -> list[str]:
        """Git pointed at the goal's git directory and worktree explicitly, run from the worktree."""
        return [f"--git-dir={self.git_dir}", f"--work-tree={self.path}", "-C", str(self.path)]

    def _require(self) -> None:
        if not (self.git_dir / "HEAD").is_file() or not self.path.is_dir():
            raise WorkspaceError(f"The worktree {self.path} is missing: run ensure() first.")

    def exists(self) -> bool:
        """Whether the goal's checkout (its git directory) has been made."""
        return (self.git_dir / "HEAD").is_file()

    def git_dirs(self) -> list[Path]:
        """What a sandboxed process needs, read-only, to run ``git`` on this worktree: the goal's git directory
        and the mirror's objects."""
        return [self.git_dir, self.mirror.objects]

    def git_for_agents(self) -> Callable[..., subprocess.CompletedProcess]:
        """A ``git(*args, input=bytes)`` for the adapters that read or patch the worktree from the worker."""

        def agent_git(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
            self._require()
            return subprocess.run(
                self._tree_argv(*args), input=input, capture_output=True, env=hardened_env(), timeout=60, check=False
            )

        return agent_git

    # --- lifecycle ---

    def ensure(self) -> None:
        """Make the checkout ready: mirror cloned (and fetched when the goal starts), the goal's git directory
        on its branch, the worktree checked out and owned by the sandbox user. A worktree folder left over
        from something else (another repository's, a link, a file) is moved aside, never used. The user's
        repository is only read."""
        with real_folder(self.roots[1], *self.between, mode=TRAVERSE_ONLY) as gitdirs:
            if not (self.git_dir / "HEAD").is_file():
                self._take_over_legacy()
            info = _lstat_in(gitdirs, self.git_dir.name)
            if info is not None and not (_is_real_folder(info) and self._git_dir_is_ours()):
                move_aside(gitdirs, self.git_dir.name, f"not goal {self.goal_id}'s checkout of {self.source}")
                self._worktree_aside("its git directory was another's")
        if not (self.git_dir / "HEAD").is_file():
            self._create_git_dir()
        self._clear_stale_locks()
        head = self._git("symbolic-ref", "--quiet", "HEAD", check=False).stdout.strip()
        if head != f"refs/heads/{self.branch}":
            raise WorkspaceError(f"The goal's checkout is on {head or 'a detached HEAD'}, not on {self.branch}.")
        with real_folder(self.roots[0], *self.between, mode=TRAVERSE_ONLY) as folder:
            os.chmod(folder, TRAVERSE_ONLY)
            info = _lstat_in(folder, self.path.name)
            if info is not None and (not _is_real_folder(info) or self._is_stale()):
                move_aside(folder, self.path.name, f"not goal {self.goal_id}'s worktree")
                info = None
            if info is None:
                os.mkdir(self.path.name, 0o755, dir_fd=folder)
                self._tree("checkout", "--quiet", "--force", self.branch)
                _give_to(self.path, self.owner)

    def _git_dir_is_ours(self) -> bool:
        """A git directory made for this goal from this repository's mirror (not another database's goal of the
        same number, nor a folder made by hand)."""
        return self._made_from_mirror(self.git_dir)

    def _made_from_mirror(self, git_dir: Path) -> bool:
        """Whether ``git_dir`` is a git directory whose objects are borrowed from this repository's mirror."""
        try:
            alternates = (git_dir / "objects" / "info" / "alternates").read_text().split()
        except OSError:
            return False
        return (git_dir / "HEAD").is_file() and alternates == [str(self.mirror.objects)]

    def _clear_stale_locks(self) -> None:
        """Remove the lock files a worker killed mid-git left in the goal's git directory (``index.lock``, a ref's
        ``.lock``): the loop calls ``ensure`` holding the goal's lease, so no live git of ours is working here, and a
        leftover lock would fail every later step ("Unable to create 'index.lock': File exists")."""
        for lock in [*self.git_dir.glob("*.lock"), *(self.git_dir / "refs").rglob("*.lock")]:
            if lock.is_file() and not lock.is_symlink():
                lock.unlink(missing_ok=True)

    def _is_stale(self) -> bool:
        """A worktree folder whose files do not come from this goal's checkout (another database's goal of the
        same number, a folder made by hand)."""
        index = self.git_dir / "index"
        return not index.is_file() and any(self.path.iterdir())

    def _worktree_aside(self, why: str) -> None:
        with real_folder(self.roots[0], *self.between, mode=TRAVERSE_ONLY) as folder:
            if _lstat_in(folder, self.path.name) is not None:
                move_aside(folder, self.path.name, why)

    def _take_over_legacy(self) -> None:
        """A checkout made before goals had an instance (``<root>/goal-<id>``) goes on in the new place when it
        was made from this repository's mirror; anything else there is left alone."""
        if self.legacy is None:
            return
        old_tree, old_git = self.legacy
        if old_git.is_symlink() or not self._made_from_mirror(old_git):
            return
        old_git.rename(self.git_dir)
        with real_folder(self.roots[0]) as before, real_folder(self.roots[0], *self.between, mode=TRAVERSE_ONLY) as now:
            info = _lstat_in(before, old_tree.name)
            if info is not None and _is_real_folder(info) and _lstat_in(now, self.path.name) is None:
                os.rename(old_tree.name, self.path.name, src_dir_fd=before, dst_dir_fd=now)
        log.info("goal %s's checkout moved from %s to %s", self.goal_id, old_git, self.git_dir)

    def _create_git_dir(self) -> None:
        try:
            self.mirror.refresh()  # a goal starts from the repository as it is now
        except WorkspaceError as error:
            raise WorkspaceError(f"Could not copy the repository {self.source}: {error}") from error
        if not self.mirror.has_branch(self.base_branch):
            raise WorkspaceError(f"The repository has no branch “{self.base_branch}”.")
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.git_dir.parent, TRAVERSE_ONLY)
        with tempfile.TemporaryDirectory(dir=self.git_dir.parent, prefix=".init-") as scratch:
            made = Path(scratch) / "git"
            run_git(["init", "--quiet", "--bare", str(made)])
            (made / "objects" / "info" / "alternates").write_text(f"{self.mirror.objects}\n")
            config = [f"--git-dir={made}", "config"]
            run_git([*config, "core.bare", "false"])
            run_git([*config, "core.logAllRefUpdates", "true"])
            base = self._mirror_tip(self.base_branch)
            run_git([f"--git-dir={made}", "update-ref", f"refs/heads/{self.base_branch}", base])
            # A goal whose branch the repository already has (pushed before, or made before this checkout)
            # goes on from it.
            tip = self._mirror_tip(self.branch) if self.mirror.has_branch(self.branch) else base
            run_git([f"--git-dir={made}", "update-ref", f"refs/heads/{self.branch}", tip])
            run_git([f"--git-dir={made}", "symbolic-ref", "HEAD", f"refs/heads/{self.branch}"])
            made.rename(self.git_dir)
        self._worktree_aside("made before the goal's new git directory")

    def _mirror_tip(self, branch: str) -> str:
        ref = f"refs/heads/{branch}^{{commit}}"
        return run_git([f"--git-dir={self.mirror.path}", "rev-parse", "--verify", ref]).stdout.strip()

    def remove(self) -> None:
        """Remove the worktree; the goal's git directory (and its branch) stays so its commits stay reviewable."""
        if self.path.exists():
            shutil.rmtree(self.path)
        with contextlib.suppress(FileNotFoundError):
            (self.git_dir / "index").unlink()

    def _check_on_branch(self) -> None:
        result = self._git("symbolic-ref", "--quiet", "HEAD", check=False)
        current = result.stdout.strip() or "a detached HEAD"
        if current != f"refs/heads/{self.branch}":
            raise WorkspaceError(f"The worktree {self.path} is on {current}, not on {self.branch}.")

    # --- reading ---

    def head(self) -> str:
        """The sha of the goal branch's tip."""
        self._require()
        return self._git("rev-parse", "--verify", "HEAD").stdout.strip()

    def base_sha(self) -> str:
        """The base-branch commit the goal started from (merge-base of the goal branch and the base as it was
        when the goal's checkout was made)."""
        branch, base = f"refs/heads/{self.branch}", f"refs/heads/{self.base_branch}"
        return self._git("merge-base", branch, base).stdout.strip()

    def base_file_reader(self, sha: str, limit: int = CONFIG_READ_CAP) -> Callable[[str], bytes | None]:
        """Read files as committed at ``sha`` (the goal's base commit) from the goal's git directory: the agent's
        worktree, and whatever it wrote there, is never read."""
        return lambda path: _committed_file([f"--git-dir={self.git_dir}"], f"{sha}:{path}", limit)

    def refuse_planted(self) -> None:
        """Raise PlantedFiles (after removing them, unread) when the agent left a ``.git`` or a special file
        anywhere in the worktree. Called before the worker's git reads the tree."""
        planted = planted_files(self.path)
        if planted:
            for relative in planted:
                _remove(self.path / relative)
            raise PlantedFiles(planted)

    @contextlib.contextmanager
    def _scratch_index(self) -> Iterator[dict[str, str]]:
        """An environment whose index holds everything ``git add -A`` would stage; the real index is not
        touched."""
        with tempfile.TemporaryDirectory(prefix="goalpost-index-") as scratch:
            index = Path(scratch) / "index"
            real_index = self.git_dir / "index"
            if real_index.is_file():
                shutil.copyfile(real_index, index)  # keeps stat data, so `add` rehashes only what changed
            env = {"GIT_INDEX_FILE": str(index)}
            if not index.exists():
                self._tree("read-tree", "HEAD", env=env)
            self._tree("add", "-A", env=env)
            yield env

    def pending_diff(self) -> str:
        """Uncommitted changes, untracked files included, against HEAD; the real index stays as it is."""
        self.refuse_planted()
        with self._scratch_index() as env:
            argv = self._tree_argv("diff", "--cached", *DIFF_ARGS, "HEAD")
            data, _total, _cut = _capped_output(argv, hardened_env(env), DIFF_CAP)
        return data.decode("utf-8", "replace")

    def _tree_argv(self, *args: str) -> list[str]:
        return ["git", *safe_config_args(), *self._tree_prefix(), *args]

    def escaping_paths(self) -> list[str]:
        """New or changed symlinks that the next commit would take (ignored files are not) whose target is
        absolute or resolves outside the worktree."""
        self.refuse_planted()
        with self._scratch_index() as env:
            args = ("diff", "--cached", "--name-only", "--no-renames", "-z", "--diff-filter=ACMRT", "HEAD")
            changed = self._tree(*args, env=env).stdout.split("\0")
        return sorted(path for path in changed if path and self._escapes(path))

    def _escapes(self, relative: str) -> bool:
        link = self.path / relative
        if not link.is_symlink():
            return False
        if os.path.isabs(os.readlink(link)):
            return True
        return not Path(os.path.realpath(link)).is_relative_to(self.path)

    # --- changing ---

    def commit_step(
        self,
        number: int,
        summary: str,
        author: tuple[str, str] = ("Goalpost agent", "agent@goalpost.invalid"),
    ) -> StepCommit:
        """Commit everything in the worktree as step ``number`` (an empty commit when nothing changed).

        Refuses, before staging anything, planted git control or special files (:class:`PlantedFiles`, removed)
        and new or changed symlinks pointing outside the worktree (see :meth:`escaping_paths`).
        """
        self._check_on_branch()
        parent = self.head()
        escaping = self.escaping_paths()
        if escaping:
            shown = ", ".join(escaping[:5]) + (f" and {len(escaping) - 5} more" if len(escaping) > 5 else "")
            raise WorkspaceError(f"Step {number} not committed: symlinks point outside the worktree: {shown}")
        self._tree("add", "-A")
        name, email = author
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        self._tree(
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            "-",
            input=_step_message(number, summary),
            env=identity,
        )
        sha = self.head()
        data, total, truncated = _capped_output(
            self._tree_argv("diff", *DIFF_ARGS, parent, sha), hardened_env(), DIFF_CAP
        )
        diff = data.decode("utf-8", "replace")
        if truncated:
            diff = _cut_at_file(diff)
        names = self._git("diff", "--name-only", "-z", "--no-renames", parent, sha).stdout.split("\0")
        trees = self._git("rev-parse", f"{parent}^{{tree}}", f"{sha}^{{tree}}").stdout.split()
        return StepCommit(
            sha=sha,
            parent=parent,
            diff=diff,
            empty=trees[0] == trees[1],
            truncated=truncated,
            diff_bytes=total,
            paths=tuple(name for name in names if name),
        )

    def reset_to(self, sha: str) -> None:
        """Undo everything after ``sha``: reset the goal branch to it and delete untracked and ignored files
        (whatever the agent planted included, removed unread)."""
        if not _SHA.fullmatch(sha):
            raise WorkspaceError(f"“{_one_line(sha, 80)}” is not a commit sha.")
        self._check_on_branch()
        self._clear_planted()
        self._tree("reset", "--quiet", "--hard", sha)
        self._tree("clean", "-ffdxq")
        _give_to(self.path, self.owner)

    def discard_changes(self) -> None:
        """Throw away uncommitted work: reset to HEAD and delete untracked and ignored files."""
        self._clear_planted()
        self._tree("reset", "--quiet", "--hard", "HEAD")
        self._tree("clean", "-ffdxq")
        _give_to(self.path, self.owner)

    def _clear_planted(self) -> None:
        with contextlib.suppress(PlantedFiles):
            self.refuse_planted()

    def publish(self) -> str:
        """Push the goal branch to the registered repository (a path: its receiving side runs as the
        repository's owner; a URL: with the server's credentials for it). Returns what was pushed, in words."""
        self._require_git_dir()
        refspec = f"+refs/heads/{self.branch}:refs/heads/{self.branch}"
        if is_url(self.source):
            self._git("push", "--quiet", "--", self.source, refspec, timeout=FETCH_TIMEOUT_S)
        else:
            local = Path(self.source)
            if not local.is_dir():
                raise WorkspaceError(f"No folder at {local}.")
            receive = _as_owner(local, "receive-pack")
            push = ("push", "--quiet", f"--receive-pack={receive}", "--", str(local), refspec)
            self._git(*push, timeout=FETCH_TIMEOUT_S)
        tip = self._git("rev-parse", "--verify", f"refs/heads/{self.branch}").stdout.strip()
        return f"Pushed {self.branch} ({tip[:12]}) to {self.source}."

    def _require_git_dir(self) -> None:
        if not (self.git_dir / "HEAD").is_file():
            raise WorkspaceError(f"The goal has no checkout at {self.git_dir}.")

    def checkout_hint(self) -> str:
        """A command a person can paste to look at the goal's work once its branch is pushed."""
        repo = shlex.quote(self.source)
        if is_url(self.source):
            return f"git fetch {repo} {self.branch} && git log -p FETCH_HEAD"
        return f"git -C {repo} log -p {self.branch}"

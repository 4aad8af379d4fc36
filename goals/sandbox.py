"""The box that agent and evidence commands run in: an unprivileged uid without capabilities, the filesystem
read-only except the worktree, the server's secrets and local daemons hidden, no network except through the
egress proxy (goals/egress.py), and limits on memory, processes, CPU time, file size and disk.

The command line, from the outside in: ``bash`` (as the worker: joins the step's cgroups, notes its pid and
the exit status) → ``prlimit`` (CPU seconds, file size) → ``bwrap`` (namespaces, mounts) → ``setpriv`` (the
sandbox uid, no capabilities, no new privileges; only when the worker is root) → the forwarder (only with
egress rules) → the command.

When the worker is root, bwrap runs as root with no user namespace, so it can bind what the command needs
(a toolchain under /root, say) at any path, and setpriv is the first command inside it: the command's uid is
then a real, unprivileged uid on the host, not a namespace's alias for root. Root's home is hidden behind a
tmpfs, so what is bound under it is reachable and nothing else is.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path

from goals import egress

PROBE_TIMEOUT_S = 10
KEPT_VARIABLES = frozenset({"PATH", "LANG", "LANGUAGE", "TERM", "TZ"})
SANDBOX_HOME = "/tmp"  # noqa: S108  # scrubbed_env's HOME: private inside any sandbox
BOX_HOME = "/tmp/home"  # noqa: S108  # a tmpfs of its own inside a Session's box
BOX_RUN = "/run/goalpost"  # the session's forwarder script and proxy socket, read-only inside
FORWARD_PORT = 3128
ISOLATION = ("--unshare-all", "--unshare-net", "--die-with-parent", "--new-session")
# bwrap started by root: every namespace but the user one (a user namespace would map the sandbox uid to
# nothing, or to root); setpriv inside drops to the sandbox uid.
ROOT_ISOLATION = (
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
    "--die-with-parent", "--new-session",
)  # fmt: skip
BASE_MOUNTS = ("--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc")
# Hidden in every box besides settings.VAR_DIR and GOALPOST_SANDBOX_HIDE: root's home, daemon sockets, the
# databases' files.
ALWAYS_HIDDEN = ("/root", "/run", "/var/run", "/var/lib/postgresql", "/var/lib/redis")
# When the server is not root the box runs as its user: at least these credentials stay out of reach.
HOME_CREDENTIALS = (
    ".ssh", ".aws", ".azure", ".config/gcloud", ".config/gh", ".docker", ".kube", ".gnupg",
    ".netrc", ".git-credentials", ".npmrc", ".pypirc", ".pgpass",
)  # fmt: skip
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "goalpost"
POLL_S = 0.5
KILL_WAIT_S = 5
DEFAULT_LIMITS = {
    "cpu_seconds": 600,
    "memory_mb": 2048,
    "processes": 256,
    "file_size_mb": 512,
    "disk_mb": 1024,
    "tmp_mb": 512,
}
SETPRIV_FLAGS = ("--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs")
MB = 1024 * 1024
SIGXCPU_EXIT = 128 + signal.SIGXCPU
SIGXFSZ_EXIT = 128 + signal.SIGXFSZ


class SandboxError(Exception):
    """The box cannot be set up; the message says why, in one line."""


def _setting(name: str, default):
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return getattr(settings, name, default)
    except ImproperlyConfigured:
        return default


@dataclass(frozen=True)
class Limits:
    """What one step (or one evidence run) may use; each 0 means no limit."""

    cpu_seconds: int
    memory_mb: int
    processes: int
    file_size_mb: int
    disk_mb: int
    tmp_mb: int

    @classmethod
    def from_settings(cls) -> Limits:
        configured = _setting("GOALPOST_SANDBOX_LIMITS", {}) or {}
        values = {**DEFAULT_LIMITS, **configured}
        return cls(**{field.name: int(values[field.name]) for field in fields(cls)})


@dataclass(frozen=True)
class Identity:
    """Who the sandboxed command is on the host. ``switched`` False: the server's own user (it is not root)."""

    uid: int
    gid: int
    switched: bool


def identity() -> Identity:
    """The sandbox uid from settings when the server runs as root, else the server's own user."""
    if os.geteuid() != 0:
        return Identity(os.geteuid(), os.getegid(), False)
    return Identity(int(_setting("GOALPOST_SANDBOX_UID", 10001)), int(_setting("GOALPOST_SANDBOX_GID", 10001)), True)


def _may(path: Path, who: Identity, access: int) -> bool:
    """Whether the sandbox user may read, write or search (``os.R_OK``, ``W_OK``, ``X_OK``) ``path``."""
    if not who.switched:
        return os.access(path, access)
    try:
        info = path.stat()
    except OSError:
        return False
    shift = 6 if info.st_uid == who.uid else 3 if info.st_gid == who.gid else 0
    return (info.st_mode >> shift) & access == access


def _may_search(folder: Path, who: Identity) -> bool:
    return _may(folder, who, os.X_OK)


def reachable(path: Path, who: Identity | None = None, *, through: frozenset[Path] = frozenset()) -> bool:
    """Whether the sandbox user can reach ``path`` on the host: every folder above it lets that user through
    (a folder in ``through`` is a fresh tmpfs inside the box, so whatever lies below it can be created)."""
    who = who or identity()
    path = Path(path)
    for folder in reversed(path.parents):
        if folder in through:
            return True
        if not _may_search(folder, who):
            return False
    return True


def sandbox_python(who: Identity | None = None) -> str | None:
    """A Python the sandbox user can run: the server's own when it can reach it (always, when the worker is
    root: its prefix is bound into the box), else python3 from PATH."""
    who = who or identity()
    if who.switched:
        return sys.executable
    for candidate in (sys.executable, shutil.which("python3"), "/usr/bin/python3"):
        if candidate and os.path.exists(candidate) and reachable(Path(candidate).resolve(), who):
            return candidate
    return None


def _setpriv(who: Identity) -> list[str]:
    if not who.switched:
        return []
    return ["setpriv", f"--reuid={who.uid}", f"--regid={who.gid}", *SETPRIV_FLAGS, "--"]


def _isolation(who: Identity) -> tuple[str, ...]:
    return ROOT_ISOLATION if who.switched else ISOLATION


@functools.cache
def _probe(bwrap: str, who: Identity) -> str:
    """Why the box cannot run here, or "" when it can (by running ``true`` through the real chain)."""
    binary = shutil.which(bwrap)
    if binary is None:
        return "bubblewrap is not installed"
    if who.switched and 0 in (who.uid, who.gid):
        return "GOALPOST_SANDBOX_UID and GOALPOST_SANDBOX_GID must not be 0 (root)"
    if who.switched and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not installed: the sandbox cannot drop root"
    if not who.switched and not reachable(Path(binary), who):
        return f"the sandbox user (uid {who.uid}) cannot reach {binary}"
    tmpfs = ["--size", str(MB), "--perms", "1777", "--tmpfs", "/tmp"]  # noqa: S108
    try:
        result = subprocess.run(
            [binary, *_isolation(who), *BASE_MOUNTS, *tmpfs, "--", *_setpriv(who), "true"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            cwd="/",
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
    """True when ``bwrap`` really runs a command here, as the sandbox user (checked once by running ``true``)."""
    return _probe(bwrap, identity()) == ""


def sandbox_reason(bwrap: str = "bwrap") -> str:
    """Why commands cannot be sandboxed, in one line for the goal page; "" when they can."""
    return _probe(bwrap, identity())


@functools.cache
def _cgroup_dirs() -> tuple[dict[str, Path], str]:
    """The parent cgroups (v1) of the boxes by controller, and why memory and process limits are off if they
    are ("" when they are on)."""
    if os.geteuid() != 0:
        return {}, "memory and process limits off: the server is not root, so it cannot create cgroups"
    parents = {}
    for controller in ("memory", "pids", "cpuacct"):
        base = CGROUP_ROOT / controller
        if not (base / "cgroup.procs").is_file():
            continue
        try:
            (base / CGROUP_PARENT).mkdir(exist_ok=True)
        except OSError:
            continue
        if os.access(base / CGROUP_PARENT, os.W_OK):
            parents[controller] = base / CGROUP_PARENT
    if "memory" not in parents or "pids" not in parents:
        return {}, "memory and process limits off: no writable cgroup v1 memory and pids controllers"
    return parents, ""


def _remove_stale_cgroups(parents) -> None:
    """Remove the cgroups that a worker which died left behind (named after its pid), killing what they hold."""
    for parent in parents:
        for group in parent.iterdir():
            pid = group.name.partition("-")[0]
            if not group.is_dir() or not pid.isdigit() or Path(f"/proc/{pid}").exists():
                continue
            for _ in range(100):
                if Session._kill_group(group):
                    break
                time.sleep(0.01)
            with contextlib.suppress(OSError):
                group.rmdir()


def _size(mb: float) -> str:
    return f"{mb / 1024:g} GB" if mb >= 1024 and mb % 256 == 0 else f"{mb:g} MB"


def _duration(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def describe(box: Box) -> str:
    """One line for the goal page: who the command runs as, its network and its limits, or why it has no box."""
    reason = sandbox_reason()
    if reason:
        return f"No sandbox: {reason}."
    who = identity()
    limits = box.limits or Limits.from_settings()
    user = f"uid {who.uid}, no capabilities" if who.switched else f"runs as your own user (uid {who.uid})"
    allowed = ", ".join(str(rule) for rule in box.egress)
    network = f"network: {allowed} only" if allowed else "no network"
    parts = [user, network]
    _, cgroups_off = _cgroup_dirs()
    if cgroups_off:
        parts.append(cgroups_off)
    else:
        parts += [f"{_size(limits.memory_mb)} memory", f"{limits.processes} processes"]
    parts += [
        f"{_duration(limits.cpu_seconds)} CPU",
        f"{_size(limits.disk_mb)} disk",
        f"{_size(limits.file_size_mb)} per file",
        f"{_size(limits.tmp_mb)} /tmp",
    ]
    return "Sandbox: " + ", ".join(parts)


@dataclass(frozen=True)
class Box:
    """Where and how a command runs: its worktree (the only writable place) and what it may reach."""

    worktree: Path
    egress: tuple[egress.Rule, ...] = ()
    limits: Limits | None = None  # None: Limits.from_settings()
    git_dir: Path | None = None  # bound read-only; GIT_DIR and GIT_WORK_TREE set inside
    read_only: tuple[Path, ...] = ()  # bound read-only, even under a hidden path (e.g. an object store)
    hide: tuple[Path, ...] = ()  # hidden besides VAR_DIR, /root, /run and GOALPOST_SANDBOX_HIDE
    # Bound writable besides the worktree, even under a hidden path: the agent's own state (its CODEX_HOME),
    # which must outlive the box and stay out of the worktree (and so out of the step's commit).
    writable: tuple[Path, ...] = ()


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


def _walk(root: Path, full_size: int) -> tuple[int, set[int]]:
    """Bytes the folder takes on disk (hard links once, symlinks not followed) and the inodes of its files
    exactly ``full_size`` bytes long (where RLIMIT_FSIZE stopped a write)."""
    total, inodes, full, folders = 0, set(), set(), [str(root)]
    while folders:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.path)
                    elif info.st_nlink > 1:  # remembered only when linked twice: the worker's memory stays small
                        if info.st_ino in inodes:
                            continue
                        inodes.add(info.st_ino)
                    total += info.st_blocks * 512
                    if stat.S_ISREG(info.st_mode) and info.st_size == full_size:
                        full.add(info.st_ino)
        except OSError:
            continue
    return total, full


def _read_int(path: Path, key: str = "") -> int:
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == key:
            with contextlib.suppress(ValueError):
                return int(value)
    return 0


def _names_loopback(host: str) -> bool:
    return host.strip("[]").lower() in ("localhost", "::1") or host.startswith("127.")


def _open_parents(path: Path, tmpfs_dirs: frozenset[Path]) -> list[str]:
    """bwrap arguments that make the folders between a tmpfs and ``path`` passable (bwrap run by root would
    make them 0700, closed to the sandbox user)."""
    top = next((folder for folder in tmpfs_dirs if path.is_relative_to(folder) and path != folder), None)
    if top is None:
        return []
    args: list[str] = []
    for folder in reversed(path.parents):
        if folder.is_relative_to(top) and folder != top:
            args += ["--perms", "0755", "--dir", str(folder)]
    return args


class Session:
    """One step's box (or one evidence run's): cgroups, the egress proxy and the limit watcher, set up on
    enter and torn down on exit. ``wrap`` gives the command line, ``env`` its environment; afterwards
    ``exceeded`` says which limit stopped it ("" when none did) and ``refused`` which connections the proxy
    refused."""

    def __init__(self, box: Box, *, bwrap: str = "bwrap"):
        self.box = box
        self.limits = box.limits or Limits.from_settings()
        self.identity = identity()
        self.bwrap = bwrap
        self.worktree = Path(box.worktree).resolve()
        self._dir: Path | None = None
        self._cgroups: dict[str, Path] = {}
        self._proxy: egress.Proxy | None = None
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._reasons: list[str] = []
        self._seen: dict[str, int] = {}
        self._runs = 0
        self._exits_read: set[int] = set()
        self._baseline = 0
        self._full_files: set[int] = set()

    # --- lifecycle ---

    def __enter__(self) -> Session:
        reason = sandbox_reason(self.bwrap)
        if reason:
            raise SandboxError(f"No sandbox: {reason}.")
        if not self.worktree.is_dir():
            raise SandboxError(f"The worktree {self.worktree} does not exist.")
        if not reachable(self.worktree, self.identity, through=self._tmpfs_dirs()):
            raise SandboxError(
                f"The sandbox user (uid {self.identity.uid}) cannot reach the worktree {self.worktree}: "
                "a folder above it is closed to that user."
            )
        if not _may(self.worktree, self.identity, os.W_OK | os.X_OK):
            raise SandboxError(
                f"The sandbox user (uid {self.identity.uid}) cannot write in the worktree {self.worktree}: "
                "it must own it."
            )
        try:
            self._set_up()
        except BaseException:
            self._tear_down()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self._tear_down()

    def _set_up(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="goalpost-box-"))
        # The sandbox user passes through (to bind box/); only its own group may enter box/.
        self._dir.chmod(0o711)
        box_dir = self._dir / "box"
        box_dir.mkdir(mode=0o750)
        if self.identity.switched:
            os.chown(box_dir, 0, self.identity.gid)
        parents, _ = _cgroup_dirs()
        _remove_stale_cgroups(parents.values())
        name = f"{os.getpid()}-{os.urandom(6).hex()}"
        for controller, parent in parents.items():
            group = parent / name
            group.mkdir()
            self._cgroups[controller] = group
        memory = self._cgroups.get("memory")
        if memory is not None and self.limits.memory_mb:
            limit = str(self.limits.memory_mb * MB)
            (memory / "memory.limit_in_bytes").write_text(limit)
            if (memory / "memory.memsw.limit_in_bytes").exists():
                with contextlib.suppress(OSError):  # no swap accounting: the plain limit alone
                    (memory / "memory.memsw.limit_in_bytes").write_text(limit)
        pids = self._cgroups.get("pids")
        if pids is not None and self.limits.processes:
            (pids / "pids.max").write_text(str(self.limits.processes))
        if self.box.egress:
            shutil.copyfile(Path(__file__).with_name("sandbox_forward.py"), box_dir / "forward.py")
            (box_dir / "forward.py").chmod(0o644)
            owner = (self.identity.uid, self.identity.gid) if self.identity.switched else None
            self._proxy = egress.Proxy(self.box.egress, box_dir / "egress.sock", owner=owner)
            self._proxy.start()
        self._baseline, self._full_files = self._walk_writable()
        self._watcher = threading.Thread(target=self._watch, name="goalpost-sandbox-watcher", daemon=True)
        self._watcher.start()

    def _tear_down(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
            self._poll(kill=False)
        self._kill_box()
        for group in self._cgroups.values():
            deadline = time.monotonic() + KILL_WAIT_S
            while True:
                try:
                    group.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        break
                    self._kill_group(group)
                    time.sleep(0.05)
        if self._proxy is not None:
            self._proxy.stop()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)

    # --- the command line ---

    def wrap(self, argv: list[str]) -> list[str]:
        """The full command line that runs ``argv`` in the box (call inside ``with``)."""
        if self._dir is None:
            raise SandboxError("The sandbox session is not open.")
        with self._lock:
            index = self._runs
            self._runs += 1
        lines = [
            f"echo $$ > {shlex.quote(str(group / 'cgroup.procs'))} || exit 125" for group in self._cgroups.values()
        ]
        lines += [
            f"echo $$ > {shlex.quote(str(self._dir / f'pid-{index}'))}",
            '"$@"',
            "status=$?",
            f"echo $status > {shlex.quote(str(self._dir / f'exit-{index}'))}",
            "exit $status",
        ]
        outer = ["bash", "-c", "\n".join(lines), "goalpost-sandbox"]
        return [*outer, *self._prlimit(), *self._bwrap(), *_setpriv(self.identity), *self._forwarder(), *argv]

    def env(self, extra: dict | None = None) -> dict[str, str]:
        """The command's environment: scrubbed of the server's secrets, a private HOME, the proxy variables
        when there are egress rules; ``extra`` last."""
        env = scrubbed_env({"HOME": BOX_HOME, "TMPDIR": "/tmp"})  # noqa: S108
        if self._proxy is not None:
            proxy = f"http://127.0.0.1:{FORWARD_PORT}"
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
                env[name] = env[name.lower()] = proxy
            # The box's own loopback is its own (servers its tests start); but a rule naming the host's loopback
            # (a local model server, allowed by staff) must go through the proxy, so loopback is then proxied.
            if not any(_names_loopback(rule.host) for rule in self.box.egress):
                env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
        env.update(extra or {})
        return env

    def _prlimit(self) -> list[str]:
        options = []
        if self.limits.cpu_seconds:
            # The soft limit sends SIGXCPU (exit 152); the hard one, a little later, kills what ignores it.
            options.append(f"--cpu={self.limits.cpu_seconds}:{self.limits.cpu_seconds + 5}")
        if self.limits.file_size_mb:
            options.append(f"--fsize={self.limits.file_size_mb * MB}")
        if not options or shutil.which("prlimit") is None:
            return []
        return ["prlimit", *options, "--core=0"]

    def _bwrap(self) -> list[str]:
        binary = shutil.which(self.bwrap) or self.bwrap
        args = [binary, *_isolation(self.identity), *BASE_MOUNTS]
        args += self._tmpfs("/tmp", self.limits.tmp_mb, "1777")  # noqa: S108
        # A tmpfs made by root belongs to root: the sandbox user needs the sticky world-writable mode to use it.
        args += self._tmpfs(BOX_HOME, self.limits.tmp_mb, "1777" if self.identity.switched else "0700")
        for _, _, mount in sorted(self._mounts(), key=lambda op: (len(op[0].parts), op[1])):
            args += mount
        if self._proxy is not None:
            args += ["--ro-bind", str(self._dir / "box"), BOX_RUN]
        if self.box.git_dir is not None:
            args += ["--setenv", "GIT_DIR", str(Path(self.box.git_dir).resolve())]
            args += ["--setenv", "GIT_WORK_TREE", str(self.worktree)]
        return [*args, "--chdir", str(self.worktree), "--"]

    @staticmethod
    def _tmpfs(path: str, size_mb: int, perms: str) -> list[str]:
        size = ["--size", str(size_mb * MB)] if size_mb else []
        return [*size, "--perms", perms, "--tmpfs", path]

    def _hidden(self) -> list[Path]:
        hidden = [Path(_setting("VAR_DIR", "var")), *map(Path, ALWAYS_HIDDEN)]
        hidden += [Path(path) for path in _setting("GOALPOST_SANDBOX_HIDE", ()) or ()]
        hidden += [Path(path) for path in self.box.hide]
        if not self.identity.switched:
            hidden += [Path.home() / name for name in HOME_CREDENTIALS]
        if not Path(tempfile.gettempdir()).resolve().is_relative_to("/tmp"):  # noqa: S108
            hidden.append(Path(tempfile.gettempdir()))  # the other sessions' sockets
        return hidden

    def _tmpfs_dirs(self) -> frozenset[Path]:
        """The hidden folders that are fresh tmpfs inside the box (what is bound below them is reachable)."""
        hidden = {Path(path).resolve() for path in self._hidden() if Path(path).exists()}
        return frozenset({Path("/tmp"), *(path for path in hidden if path.is_dir())})  # noqa: S108

    def _mounts(self) -> list[tuple[Path, int, list[str]]]:
        """(path, order at equal depth, bwrap arguments): hidden paths, then read-only binds, the worktree,
        and its .git read-only again (the worker's own git follows it)."""
        who = self.identity
        ops: list[tuple[Path, int, list[str]]] = []
        tmpfs_dirs: set[Path] = {Path("/tmp")}  # noqa: S108  # the box's own /tmp, mounted before these
        hidden = {Path(path).resolve() for path in self._hidden() if Path(path).exists()}
        for path in sorted(hidden, key=lambda path: len(path.parts)):
            # bwrap run by the sandbox user can only mount over what that user reaches; run by root, anything.
            if not who.switched and not reachable(path, who, through=frozenset(tmpfs_dirs)):
                continue
            if path.is_dir():
                tmpfs_dirs.add(path)
                ops.append((path, 0, ["--tmpfs", str(path)]))
            else:
                ops.append((path, 0, ["--ro-bind", "/dev/null", str(path)]))
        required = [*self.box.read_only, *([self.box.git_dir] if self.box.git_dir else [])]
        toolchain = [Path(sys.prefix), Path(sys.base_prefix)]
        through = frozenset(tmpfs_dirs) if who.switched else frozenset()
        for path in dict.fromkeys([*toolchain, *required]):
            path = Path(path).resolve()
            if path.exists() and reachable(path, who, through=through):
                ops.append((path, 1, [*_open_parents(path, through), "--ro-bind", str(path), str(path)]))
            elif path in required:
                raise SandboxError(f"The sandbox user (uid {who.uid}) cannot reach {path}.")
        worktree = self.worktree
        ops.append((worktree, 2, [*_open_parents(worktree, through), "--bind", str(worktree), str(worktree)]))
        for path in self.box.writable:
            path = Path(path).resolve()
            if not path.is_dir() or not reachable(path, who, through=through):
                raise SandboxError(f"The sandbox user (uid {who.uid}) cannot reach {path}.")
            ops.append((path, 2, [*_open_parents(path, through), "--bind", str(path), str(path)]))
        dot_git = self.worktree / ".git"
        if dot_git.exists() and not dot_git.is_symlink():
            ops.append((dot_git, 3, ["--ro-bind", str(dot_git), str(dot_git)]))
        return ops

    def _forwarder(self) -> list[str]:
        if self._proxy is None:
            return []
        python = sandbox_python(self.identity)
        if python is None:
            raise SandboxError(f"No Python that the sandbox user (uid {self.identity.uid}) can run for egress.")
        return [python, "-I", f"{BOX_RUN}/forward.py", str(FORWARD_PORT), f"{BOX_RUN}/egress.sock", "--"]

    # --- limits ---

    @property
    def refused(self) -> list[str]:
        """The connections the egress proxy refused, one line each (``refused: host:port (why)``)."""
        return self._proxy.refused if self._proxy is not None else []

    @property
    def reasons(self) -> list[str]:
        """Every limit hit so far, in order, one readable sentence each (a limit hit twice shows twice)."""
        self._poll(kill=False)
        with self._lock:
            return list(self._reasons)

    @property
    def exceeded(self) -> str:
        """The first limit that stopped the box, as a sentence for a person; "" when none did."""
        reasons = self.reasons
        return reasons[0] if reasons else ""

    def _watch(self) -> None:
        interval = POLL_S
        while not self._stop.wait(interval):
            started = time.monotonic()
            self._poll(kill=True)
            # A worktree with many files takes long to walk: never spend more than a third of the time on it.
            interval = max(POLL_S, 2 * (time.monotonic() - started))

    def _count(self, key: str, value: int) -> int:
        """How much ``value`` grew since the last look."""
        grown = max(0, value - self._seen.get(key, 0))
        self._seen[key] = max(value, self._seen.get(key, 0))
        return grown

    def _poll(self, *, kill: bool) -> None:
        limits = self.limits
        with self._lock:
            found = []
            memory = self._cgroups.get("memory")
            if memory is not None and limits.memory_mb:
                kills = _read_int(memory / "memory.oom_control", "oom_kill")
                under = _read_int(memory / "memory.oom_control", "under_oom")
                if self._count("oom", kills) or (under and self._count("under_oom", 1)):
                    found.append(f"The step used more than {_size(limits.memory_mb)} of memory and was stopped.")
            pids = self._cgroups.get("pids")
            if pids is not None and limits.processes and self._count("pids", _read_int(pids / "pids.events", "max")):
                found.append(f"The step tried to run more than {limits.processes} processes at once and was stopped.")
            cpu = self._cgroups.get("cpuacct")
            cpu_used = _read_int(cpu / "cpuacct.usage") if cpu is not None else 0
            if limits.cpu_seconds and cpu_used > limits.cpu_seconds * 1e9 and self._count("cpu", 1):
                found.append(self._cpu_reason())
            for index in range(self._runs):
                if index in self._exits_read or self._dir is None:
                    continue
                code = _read_int(self._dir / f"exit-{index}") if (self._dir / f"exit-{index}").exists() else None
                if code is None:
                    continue
                self._exits_read.add(index)
                if code == SIGXCPU_EXIT and limits.cpu_seconds:
                    found.append(self._cpu_reason())
                elif code == SIGXFSZ_EXIT and limits.file_size_mb:
                    found.append(self._file_size_reason())
            used, full = self._walk_writable()
            if limits.disk_mb and used - self._baseline > limits.disk_mb * MB and self._count("disk", 1):
                found.append(f"The step grew the worktree by more than {_size(limits.disk_mb)} and was stopped.")
            # A program that ignores SIGXFSZ (Python does) gets an error instead: its file stops at the limit.
            new_full = limits.file_size_mb and full - self._full_files and self._file_size_reason() not in found
            if new_full and self._count("file_size", 1):
                found.append(self._file_size_reason())
            self._reasons += found
        if found and kill:
            self._kill_box()

    def _walk_writable(self) -> tuple[int, set[int]]:
        """_walk over every folder the box may write (the worktree and the agent's home): the disk limit is
        what the step may grow them by together."""
        total, full = 0, set()
        for folder in (self.worktree, *self.box.writable):
            used, files = _walk(Path(folder), self.limits.file_size_mb * MB)
            total, full = total + used, full | files
        return total, full

    def _cpu_reason(self) -> str:
        return f"The step used more than {_duration(self.limits.cpu_seconds)} of CPU time and was stopped."

    def _file_size_reason(self) -> str:
        return f"The step tried to write a file larger than {_size(self.limits.file_size_mb)} and was stopped."

    # --- stopping ---

    def _is_ours(self, pid: int) -> bool:
        """Whether ``pid`` is still one of this session's wrappers (a finished one's pid may be reused)."""
        try:
            return str(self._dir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False

    @staticmethod
    def _kill_group(group: Path) -> bool:
        """SIGKILL every process in the cgroup; True when it had none."""
        try:
            pids = [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
        except OSError:
            return True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return not pids

    def _kill_box(self) -> None:
        """Stop everything the session's commands started: the cgroups' processes and each running command's
        process group."""
        if self._dir is None:
            return
        for index in range(self._runs):
            pid_file, exit_file = self._dir / f"pid-{index}", self._dir / f"exit-{index}"
            pid = _read_int(pid_file) if pid_file.exists() and not exit_file.exists() else 0
            if pid > 1 and self._is_ours(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT_S
        for group in self._cgroups.values():
            while not self._kill_group(group) and time.monotonic() < deadline:
                time.sleep(0.02)

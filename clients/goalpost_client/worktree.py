"""What really changed in a working tree since a baseline commit, as a git-style diff: read from a repository the
agent can write, so nothing it configures may run. Standard library only.

git is asked only for what it reads without running anything: the baseline's tree (`ls-tree`), its blobs
(`cat-file --batch`) and the list of tracked and untracked files (`ls-files`), with every hook, fsmonitor, pager,
external diff and global or system config switched off. git never compares contents here: `git diff` would run
the clean filters and textconv drivers that `.gitattributes` and `.git/config` (both the agent's to write) name.
The contents are compared in Python, files are opened one path component at a time without following a symlink
(a link is diffed as its target, as git does), and the diff is bounded: past the limits a file is listed by its
path alone, so a protected path is never lost, only its lines.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

GIT_TIMEOUT_S = 30
MAX_DIFF_CHARS = 600_000  # well under the API's 1 MB body, even with JSON's escapes
MAX_FILE_BYTES = 256 * 1024  # a larger file is listed by its path only
MAX_LISTED_CHARS = 900_000  # past this even the paths do not fit the API's body: ChangeError
BINARY_PROBE = 8_000

# Command-line config outranks every config file the repository has.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.attributesFile=/dev/null",
    "core.excludesFile=/dev/null",
    "core.untrackedCache=false",
    "core.pager=cat",
    "core.quotePath=false",
    "diff.external=",
    "submodule.recurse=false",
    "gc.auto=0",
    "maintenance.auto=false",
    "protocol.allow=never",
)


class ChangeError(Exception):
    """Why the working tree's change cannot be read."""


def hardened_env() -> dict[str, str]:
    """The caller's environment without its GIT_* variables (GIT_DIR, GIT_CONFIG_PARAMETERS… would point git
    elsewhere), and no system or global config."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {
        **env,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }


def git(cwd: str | Path, *args: str, stdin: bytes | None = None) -> bytes:
    """A read-only git command's stdout; ChangeError when it fails."""
    command = ["git", *(arg for item in SAFE_CONFIG for arg in ("-c", item)), "-C", str(cwd), *args]
    try:
        done = subprocess.run(
            command, input=stdin, capture_output=True, timeout=GIT_TIMEOUT_S, env=hardened_env(), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ChangeError(f"git {args[0]} failed: {error}") from error
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ChangeError(f"git {args[0]} failed: {said[-1] if said else f'exit {done.returncode}'}")
    return done.stdout


def toplevel(cwd: str | Path) -> Path:
    """The working tree that holds `cwd`."""
    return Path(os.fsdecode(git(cwd, "rev-parse", "--show-toplevel").rstrip(b"\n")))


def head(repo: Path) -> str | None:
    """The commit checked out, or None in a repository without commits."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").decode().strip() or None
    except ChangeError:
        return None


def resolve(repo: Path, revision: str) -> str:
    """A commit named by the person (GOALPOST_BASE), as its full id."""
    if revision.startswith("-"):
        raise ChangeError(f"{revision!r} is not a revision.")
    return git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}").decode().strip()


@dataclass
class Entry:
    mode: str
    data: bytes | None  # None: too large to read, compared by hash only


@dataclass
class Change:
    """The change: a git-style diff and the paths it touches (all of them, even those listed by path only)."""

    diff: str
    paths: list[str] = field(default_factory=list)
    cut: bool = False  # some files are listed without their lines


def _blob_id(data: bytes, object_format: str) -> str:
    algorithm = hashlib.sha256 if object_format == "sha256" else hashlib.sha1
    return algorithm(b"blob %d\0" % len(data) + data).hexdigest()


def _base_tree(repo: Path, base: str | None) -> dict[str, tuple[str, str]]:
    """path → (mode, blob id) of the baseline commit."""
    if base is None:
        return {}
    tree: dict[str, tuple[str, str]] = {}
    for record in git(repo, "ls-tree", "-r", "-z", "--full-tree", base).split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        mode, kind, object_id = meta.split(b" ")
        if kind == b"blob":
            tree[os.fsdecode(path)] = (mode.decode(), object_id.decode())
    return tree


def _listed(repo: Path) -> list[str]:
    """Tracked files and untracked ones the repository's .gitignore files do not hide, plus every .gitignore
    file even when one hides itself (it is part of the change, and a person should see it). Only the per-directory
    .gitignore files count: .git/info/exclude is the agent's to write and never shows in a diff."""
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-per-directory=.gitignore")
    ignore_files = git(
        repo, "ls-files", "-z", "--others", "--ignored", "--exclude-per-directory=.gitignore", "--", "*.gitignore"
    )
    return sorted({os.fsdecode(path) for path in (listed + b"\0" + ignore_files).split(b"\0") if path})


def _open_inside(root: int, path: str) -> int | None:
    """A descriptor for `path` under the directory `root`, never through a symlink; None if it is not there."""
    parts = path.split("/")
    fd = os.dup(root)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = next_fd
        return os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    except OSError as error:
        if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    finally:
        os.close(fd)


def _working_entry(root: int, path: str, object_format: str) -> tuple[Entry, str] | None:
    """The file as it is in the working tree (a symlink as its target) and its blob id; None when it is gone,
    or is a directory (a submodule), or sits behind a symlinked directory (then it is not in the tree)."""
    parent, _, name = path.rpartition("/")
    parent_fd = _open_inside(root, parent) if parent else os.dup(root)
    if parent_fd is None:
        return None
    try:
        info = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.fsencode(os.readlink(name, dir_fd=parent_fd))
            return Entry("120000", target), _blob_id(target, object_format)
    except FileNotFoundError:
        return None
    finally:
        os.close(parent_fd)
    if not stat.S_ISREG(info.st_mode):
        return None
    fd = _open_inside(root, path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as handle:
        mode = "100755" if info.st_mode & stat.S_IXUSR else "100644"
        algorithm = hashlib.sha256 if object_format == "sha256" else hashlib.sha1
        digest = algorithm(b"blob %d\0" % info.st_size)
        kept = b""
        size = 0
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
            if size <= MAX_FILE_BYTES:
                kept += chunk
        if size != info.st_size:  # it changed while read: it counts as changed
            return Entry(mode, kept if size <= MAX_FILE_BYTES else None), "changed while read"
        return Entry(mode, kept if size <= MAX_FILE_BYTES else None), digest.hexdigest()


def _blobs(repo: Path, object_ids: list[str]) -> dict[str, bytes | None]:
    """The baseline's blobs by id (None for one too large to show)."""
    if not object_ids:
        return {}
    output = git(repo, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in object_ids).encode())
    blobs: dict[str, bytes | None] = {}
    position = 0
    for object_id in object_ids:
        end = output.index(b"\n", position)
        header = output[position:end].split(b" ")
        position = end + 1
        if len(header) < 3:
            blobs[object_id] = None
            continue
        size = int(header[2])
        blobs[object_id] = output[position : position + size] if size <= MAX_FILE_BYTES else None
        position += size + 1
    return blobs


def _quoted(path: str) -> str:
    """A path as git writes it in a diff header: C-quoted when it has quotes, backslashes or control characters."""
    if not any(char in '"\\' or ord(char) < 32 or ord(char) == 127 for char in path):
        return path
    escapes = {"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"}
    body = "".join(
        escapes.get(char, f"\\{ord(char):03o}" if ord(char) < 32 or ord(char) == 127 else char) for char in path
    )
    return f'"{body}"'


def _named(prefix: str, path: str) -> str:
    quoted = _quoted(path)
    return f'"{prefix}{quoted[1:]}' if quoted.startswith('"') else f"{prefix}{path}"


def _is_text(data: bytes | None) -> bool:
    return data is not None and b"\0" not in data[:BINARY_PROBE]


def _lines(data: bytes) -> list[str]:
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def file_diff(path: str, old: Entry | None, new: Entry | None, *, lines: bool = True) -> str:
    """One file's git-style diff; with `lines` False (or a binary or too large file) its header only."""
    a, b = _named("a/", path), _named("b/", path)
    out = [f"diff --git {a} {b}\n"]
    if old is None and new is not None:
        out.append(f"new file mode {new.mode}\n")
    elif new is None and old is not None:
        out.append(f"deleted file mode {old.mode}\n")
    elif old is not None and new is not None and old.mode != new.mode:
        out += [f"old mode {old.mode}\n", f"new mode {new.mode}\n"]
    old_data, new_data = (old.data if old else b""), (new.data if new else b"")
    if old is not None and new is not None and old_data is not None and old_data == new_data:
        return "".join(out)  # a mode change only
    source, target = (a if old else "/dev/null"), (b if new else "/dev/null")
    if not (lines and _is_text(old_data) and _is_text(new_data)):
        return "".join(out) + f"Binary files {source} and {target} differ\n"
    body = list(difflib.unified_diff(_lines(old_data or b""), _lines(new_data or b""), n=3))[2:]
    return "".join(out + [f"--- {source}\n", f"+++ {target}\n"] + body)


def change_since(cwd: str | Path, base: str | None, *, max_chars: int = MAX_DIFF_CHARS) -> Change:
    """The working tree's change against the commit `base` (None: a repository without commits), new files
    included, as one git-style diff: the lines of the files while the diff is under `max_chars`, the paths of
    the others. ChangeError when even the paths would not fit."""
    repo = toplevel(cwd)
    object_format = git(repo, "rev-parse", "--show-object-format").decode().strip() or "sha1"
    tree = _base_tree(repo, base)
    paths = sorted(set(tree) | set(_listed(repo)))
    root = os.open(repo, os.O_RDONLY | os.O_DIRECTORY)
    changed: list[tuple[str, tuple[str, str] | None, Entry | None]] = []
    try:
        for path in paths:
            if path == ".git" or path.startswith(".git/") or "/.git/" in f"/{path}":
                continue
            working = _working_entry(root, path, object_format)
            before = tree.get(path)
            if before is not None and before[0] == "160000":
                continue  # a submodule is its own repository
            if working is None and before is None:
                continue
            if working is not None and before is not None and working[1] == before[1] and working[0].mode == before[0]:
                continue
            changed.append((path, before, working[0] if working else None))
    finally:
        os.close(root)
    shown = changed if max_chars > 0 else []
    blobs = _blobs(repo, sorted({before[1] for _, before, _ in shown[:2_000] if before is not None}))
    parts: list[str] = []
    size = 0
    cut = False
    for path, before, entry in changed:
        old = Entry(before[0], blobs.get(before[1])) if before is not None else None
        if old is not None and before[1] not in blobs:
            old.data = None
        text = file_diff(path, old, entry, lines=size < max_chars)
        if size + len(text) > max_chars:
            text = file_diff(path, old, entry, lines=False)
            cut = True
        parts.append(text)
        size += len(text)
        if size > MAX_LISTED_CHARS:
            raise ChangeError(f"{len(changed):,} files changed: too many to report to Goalpost.")
    return Change("".join(parts), [path for path, _, _ in changed], cut)

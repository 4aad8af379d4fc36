"""Parse unified diffs (git's above all) into files, hunks and stats for review gates and the phone.

The parsing itself is done by :mod:`unidiff`. This module adds what unidiff leaves to its callers:
renames and copies read from git's extended headers, git's quoted paths, diffs whose every line ends
in CRLF, prose around the diff, a category for every path, and errors that say where a diff breaks.

Pure Python: no Django imports, so gates, workers and tests can all use it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from unidiff import Hunk as UnidiffHunk
from unidiff import PatchedFile, PatchSet, UnidiffParseError

__all__ = [
    "CATEGORIES",
    "CHANGE_KINDS",
    "DiffError",
    "DiffLine",
    "DiffStats",
    "FileDiff",
    "Hunk",
    "ParsedDiff",
    "classify_path",
    "looks_generated",
    "parse_diff",
]

CHANGE_KINDS = ("added", "deleted", "modified", "renamed", "copied", "mode")
CATEGORIES = ("test", "migration", "lock", "generated", "vendored", "docs", "config", "code", "other")

# A generated-file marker only counts near the top of a file; further down it is usually prose.
HEAD_LINES = 10

MINUS_SIGN = "\u2212"
DEV_NULL = "/dev/null"
LINE_KINDS = ("+", "-", " ")


class DiffError(ValueError):
    """The text is not a unified diff, or is a broken one; the message says what and where, on one line."""


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk: ``kind`` is "+", "-" or " "; ``text`` has neither marker nor line ending."""

    kind: str
    text: str
    old_lineno: int | None
    new_lineno: int | None


@dataclass(frozen=True)
class Hunk:
    """One ``@@`` block of a file's diff, with its header exactly as the diff wrote it."""

    header: str
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: tuple[DiffLine, ...]

    @property
    def added(self) -> int:
        """Number of added lines."""
        return sum(1 for line in self.lines if line.kind == "+")

    @property
    def removed(self) -> int:
        """Number of removed lines."""
        return sum(1 for line in self.lines if line.kind == "-")


@dataclass(frozen=True)
class FileDiff:
    """Everything a diff says about one file.

    ``path`` is the new path (the old one for deletions); ``old_path`` is set only for renames and
    copies. ``change`` is one of :data:`CHANGE_KINDS`, ``category`` one of :data:`CATEGORIES`.
    Modes are git's octal strings ("100644"), ``None`` where the diff does not give them.
    """

    path: str
    old_path: str | None
    change: str
    binary: bool
    added: int
    removed: int
    hunks: tuple[Hunk, ...]
    old_mode: str | None
    new_mode: str | None
    category: str

    @classmethod
    def by_path(cls, path: str, change: str = "modified") -> FileDiff:
        """A file change known by its path only (a shell command's target, a file of a diff that cannot be read):
        no lines, but the path rules (protected, generated, blast radius) still apply to it."""
        return cls(
            path=path,
            old_path=None,
            change=change,
            binary=False,
            added=0,
            removed=0,
            hunks=(),
            old_mode=None,
            new_mode=None,
            category=classify_path(path),
        )

    @property
    def is_test(self) -> bool:
        """Whether the file is a test (or test support such as conftest.py)."""
        return self.category == "test"

    @property
    def is_product_code(self) -> bool:
        """Whether the file is hand-written product source code, the part reviewers care most about."""
        return self.category == "code"


@dataclass(frozen=True)
class DiffStats:
    """Totals over a diff's files; ``tests`` counts test files touched, not test lines."""

    files: int
    added: int
    removed: int
    renames: int
    binary: int
    tests: int

    @classmethod
    def of(cls, files: tuple[FileDiff, ...]) -> DiffStats:
        """Add up the stats of ``files``."""
        return cls(
            files=len(files),
            added=sum(file.added for file in files),
            removed=sum(file.removed for file in files),
            renames=sum(1 for file in files if file.change == "renamed"),
            binary=sum(1 for file in files if file.binary),
            tests=sum(1 for file in files if file.is_test),
        )


@dataclass(frozen=True)
class ParsedDiff:
    """A parsed diff: its files in diff order, and their totals."""

    files: tuple[FileDiff, ...]
    stats: DiffStats

    @classmethod
    def of(cls, files: Iterable[FileDiff]) -> ParsedDiff:
        """These files, with their totals."""
        files = tuple(files)
        return cls(files=files, stats=DiffStats.of(files))

    def summary_line(self) -> str:
        """One line for a phone, e.g. "7 files, +12 −7, 2 tests, 1 renamed, 1 binary".

        Counts of tests, renames and binary files appear only when non-zero; a diff without files
        reads "no changes".
        """
        stats = self.stats
        if not stats.files:
            return "no changes"
        parts = [
            _count(stats.files, "file", "files"),
            f"+{stats.added} {MINUS_SIGN}{stats.removed}",
        ]
        if stats.tests:
            parts.append(_count(stats.tests, "test", "tests"))
        if stats.renames:
            parts.append(f"{stats.renames} renamed")
        if stats.binary:
            parts.append(f"{stats.binary} binary")
        return ", ".join(parts)

    def compact(self) -> list[dict[str, object]]:
        """Per file, the fields a phone shows: path, old_path, change, added, removed, binary, category; and the
        size of its hunks (lines, chars of line text), which lets a page lay out a big diff without parsing it."""
        return [
            {
                "path": file.path,
                "old_path": file.old_path,
                "change": file.change,
                "added": file.added,
                "removed": file.removed,
                "binary": file.binary,
                "category": file.category,
                "lines": sum(len(hunk.lines) for hunk in file.hunks),
                "chars": sum(len(line.text) for hunk in file.hunks for line in hunk.lines),
            }
            for file in self.files
        ]


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


# --- parsing -------------------------------------------------------------------------------------------


def parse_diff(text: str | bytes, is_binary: Callable[[str], bool] | None = None) -> ParsedDiff:
    """Parse a unified diff into files and hunks.

    Accepts git's output in all its forms (renames, copies, mode changes, new and deleted files,
    binary files with or without ``GIT binary patch``, missing final newlines, CRLF content) as well
    as plain ``diff -u`` output. Bytes are decoded as UTF-8 with undecodable bytes replaced by U+FFFD,
    so line texts stay readable and safe to store. Prose before, between or after the files (a
    ``git format-patch`` mail, an LLM's answer around a fenced diff) is ignored. A file git only renamed
    (similarity 100%, so no "Binary files" line) is binary when its name says so (``.png``, ``.zip``...)
    or, for other names, when ``is_binary(path)`` says so: a caller that holds the repository can look.

    A combined merge diff (``diff --cc``) and a log of several commits (``git log -p``, a ``git
    format-patch`` series) are refused with a :class:`DiffError` that says which, since unidiff would
    read the first as empty changes and the second as one change naming the same file twice.

    An empty or blank text is an empty step: a ParsedDiff without files. Anything else that is not a
    well-formed diff raises :class:`DiffError`, never another exception.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if not text.strip():
        return ParsedDiff(files=(), stats=DiffStats.of(()))
    if text.count("\r\n") == text.count("\n"):
        # Every line ends in CRLF, so the whole diff went through a CRLF conversion (git itself always
        # writes headers with bare LF): undo it, or headers would not match and paths would end in "\r".
        text = text.replace("\r\n", "\n")

    # Split exactly as unidiff would (on "\n" only), so its 1-based diff line numbers index this list.
    lines = list(io.StringIO(text))
    _refuse_what_unidiff_misreads(lines)
    patch_set = _run_unidiff(lines)
    if not patch_set:
        raise DiffError("not a unified diff")
    files = tuple(_convert_file(patched, lines, is_binary) for patched in patch_set)
    _refuse_a_file_named_twice(files)
    return ParsedDiff(files=files, stats=DiffStats.of(files))


# Headers only count at the start of a line: a hunk's content lines start with " ", "+" or "-", so a diff of a
# file that contains these texts never matches them.
_COMBINED_HEADER = re.compile(r"diff --(?:cc|combined) |@@@+ ")
# `git log` starts each commit with "commit <sha>" followed by "Merge:" or "Author:"; `git format-patch` each
# mail with "From <sha> Mon Sep 17 00:00:00 2001" (a fixed date, so a mail's own "From:" line never matches).
_LOG_COMMIT = re.compile(r"commit [0-9a-f]{7,64}\b")
_LOG_COMMIT_NEXT = re.compile(r"(?:Merge|Author): ")
_MAIL_COMMIT = re.compile(r"From [0-9a-f]{40,64} Mon Sep 17 00:00:00 2001$")


def _refuse_what_unidiff_misreads(lines: list[str]) -> None:
    """Raise DiffError for the inputs unidiff reads wrong without a word.

    A combined merge diff (``diff --cc``, ``diff --combined``, ``@@@`` hunks) has one column per parent:
    unidiff takes its files for empty changes. A log of several commits (``git log -p``, ``git format-patch``
    of a range) names a file once per commit: its sum is no change anyone made in one step.
    """
    commits: list[int] = []
    for number, line in enumerate(lines, start=1):
        if _COMBINED_HEADER.match(line):
            raise DiffError(
                f"a combined merge diff (`{_shorten(line, 40)}` at line {number}) cannot be read: "
                "send the diff of the merge against one parent (git diff PARENT MERGE)"
            )
        is_log_commit = _LOG_COMMIT.match(line) and number < len(lines) and _LOG_COMMIT_NEXT.match(lines[number])
        if is_log_commit or _MAIL_COMMIT.match(line.rstrip("\r\n")):
            commits.append(number)
            if len(commits) > 1:
                raise DiffError(
                    f"a log of several commits (commit headers at lines {commits[0]} and {number}) cannot be "
                    "read as one change: send one diff (git diff FIRST^ LAST)"
                )


def _refuse_a_file_named_twice(files: tuple[FileDiff, ...]) -> None:
    """One diff names a file once, but for git's type change (a file becoming a symlink): deleted, then added.
    A file named twice otherwise comes from a log of several commits (``git log -p --format=``), or from an agent
    splitting one change to read as two."""
    changes: dict[str, list[str]] = {}
    for file in files:
        changes.setdefault(file.path, []).append(file.change)
    for path, kinds in changes.items():
        if len(kinds) > 1 and sorted(kinds) != ["added", "deleted"]:
            raise DiffError(
                f"the diff names {_shorten(path, 120)} {len(kinds)} times ({', '.join(kinds)}), as a log of "
                "several commits does: send one diff (git diff FIRST^ LAST)"
            )


class _CountingLines:
    """Feeds lines to unidiff and remembers how many it took, to say where a parse failed."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.taken = 0

    def __iter__(self) -> Iterator[str]:
        for line in self.lines:
            self.taken += 1
            yield line


def _run_unidiff(lines: list[str]) -> PatchSet:
    counting = _CountingLines(lines)
    # Created and initialised in two steps so that, when parsing fails, the files parsed so far (the
    # last one is the file being parsed) are still at hand to name in the error.
    patch_set = PatchSet.__new__(PatchSet)
    try:
        PatchSet.__init__(patch_set, counting)
    except UnidiffParseError as error:
        raise _explain(error, patch_set, lines, counting.taken) from error
    except Exception as error:  # unidiff's own bugs on odd input must still surface as DiffError
        raise DiffError(f"unreadable diff near line {counting.taken}: {_shorten(str(error))}") from error
    return patch_set


def _explain(error: UnidiffParseError, patch_set: PatchSet, lines: list[str], line_number: int) -> DiffError:
    message = str(error)
    if message.startswith("Hunk") and patch_set:
        path = _describe_path(patch_set[-1])
        if message.startswith("Hunk diff line expected"):
            # The line that stopped the hunk is not part of it, and may itself be the next "@@" line.
            header_line = _hunk_header_line(lines, line_number - 1)
            return DiffError(
                f"truncated hunk in {path} at line {header_line}: line {line_number} is not a diff line"
            )
        header_line = _hunk_header_line(lines, line_number)
        if "longer" in message:
            return DiffError(f"hunk in {path} at line {header_line} has more lines than its header says")
        return DiffError(f"truncated hunk in {path} at line {header_line}")
    return DiffError(f"malformed diff at line {line_number}: {_shorten(message)}")


def _describe_path(patched: PatchedFile) -> str:
    return _clean_path(patched.target_file) or _clean_path(patched.source_file) or "an unnamed file"


def _hunk_header_line(lines: list[str], before_line: int) -> int:
    """The 1-based number of the last ``@@`` line up to and including line ``before_line``."""
    for index in range(min(before_line, len(lines)) - 1, -1, -1):
        if lines[index].startswith("@@ "):
            return index + 1
    return before_line


def _shorten(message: str, limit: int = 80) -> str:
    one_line = " ".join(message.split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _convert_file(patched: PatchedFile, lines: list[str], is_binary: Callable[[str], bool] | None) -> FileDiff:
    extended = _extended_header(patched)
    source = _clean_path(patched.source_file)
    target = _clean_path(patched.target_file)
    hunks = tuple(_convert_hunk(hunk, lines) for hunk in patched)
    old_mode, new_mode = patched.source_mode, patched.target_mode

    old_path: str | None = None
    if "rename from" in extended or "copy from" in extended:
        kind = "rename" if "rename from" in extended else "copy"
        change = "renamed" if kind == "rename" else "copied"
        old_path = _clean_path(extended[f"{kind} from"], strip_prefix=False) or source
        path = _clean_path(extended.get(f"{kind} to", ""), strip_prefix=False) or target
    elif patched.source_file == DEV_NULL:
        change, path = "added", target
    elif patched.target_file == DEV_NULL:
        change, path = "deleted", source
    elif old_mode and new_mode and old_mode != new_mode and not hunks and not patched.is_binary_file:
        change, path = "mode", target
    else:
        change, path = "modified", target

    if not path:
        raise DiffError(f"file header without a path at line {patched.diff_line_no}")
    for hunk in patched:
        if _overflows(hunk, lines):
            header_line = (hunk[0].diff_line_no or 1) - 1
            raise DiffError(f"hunk in {path} at line {header_line} has more lines than its header says")
    head = _file_head(hunks, deleted=change == "deleted")
    return FileDiff(
        path=path,
        old_path=old_path,
        change=change,
        binary=bool(patched.is_binary_file) or _renamed_binary(extended, hunks, old_path, path, is_binary),
        added=sum(hunk.added for hunk in hunks),
        removed=sum(hunk.removed for hunk in hunks),
        hunks=hunks,
        old_mode=old_mode,
        new_mode=new_mode,
        category=classify_path(path, head),
    )


_EXTENDED_HEADER_KEYS = ("rename from", "rename to", "copy from", "copy to", "similarity index")

# Suffixes of files that are binary whatever their content: git says nothing of the content of a file it only
# renamed (no "Binary files" line), so the name is all there is to go on.
_BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff", ".psd", ".pdf",
        ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".jar", ".war", ".whl", ".egg",
        ".so", ".dylib", ".dll", ".exe", ".bin", ".o", ".a", ".lib", ".class", ".pyc", ".pyo", ".wasm",
        ".woff", ".woff2", ".ttf", ".otf", ".eot", ".mp3", ".mp4", ".m4a", ".wav", ".ogg", ".flac", ".mov",
        ".avi", ".webm", ".mkv", ".sqlite", ".sqlite3", ".db", ".parquet", ".npy", ".npz", ".pkl", ".pickle",
        ".lockb", ".dat",
    }
)  # fmt: skip


def _renamed_binary(
    extended: dict[str, str],
    hunks: tuple,
    old_path: str | None,
    path: str,
    is_binary: Callable[[str], bool] | None,
) -> bool:
    """Whether a file git only renamed or copied (similarity 100%, no content shown) is a binary file."""
    if old_path is None or hunks or extended.get("similarity index", "").strip() != "100%":
        return False
    if any(_suffix(name.rsplit("/", 1)[-1]) in _BINARY_SUFFIXES for name in (old_path, path)):
        return True
    return bool(is_binary and is_binary(path))


def _extended_header(patched: PatchedFile) -> dict[str, str]:
    """The rename/copy lines of a git file header, which unidiff keeps as text but does not interpret."""
    info = patched.patch_info or []
    if not info or not info[0].startswith("diff --git "):
        return {}
    found: dict[str, str] = {}
    for line in info[1:]:
        for key in _EXTENDED_HEADER_KEYS:
            if line.startswith(key + " "):
                found.setdefault(key, line[len(key) + 1 :].rstrip("\r\n"))
    return found


_GIT_PREFIX = re.compile(r"[abciow12]/")
_C_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_C_ESCAPE = re.compile(r"\\([0-7]{3}|.)", re.DOTALL)


def _clean_path(name: str | None, strip_prefix: bool = True) -> str | None:
    """A diff's file name as a plain path: git's quoting undone, its a/ or b/ prefix removed."""
    if not name or name == DEV_NULL:
        return None
    name = name.rstrip("\r\n")
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        name = _unquote_c_style(name[1:-1])
    if strip_prefix and _GIT_PREFIX.match(name):
        name = name[2:]
    return name or None


def _unquote_c_style(quoted: str) -> str:
    """Undo git's C-style quoting, where octal escapes are the bytes of a UTF-8 name ("caf\\303\\251")."""
    raw = bytearray()
    position = 0
    for match in _C_ESCAPE.finditer(quoted):
        raw += quoted[position : match.start()].encode("utf-8", errors="replace")
        escape = match.group(1)
        if len(escape) == 3:
            raw.append(int(escape, 8) & 0xFF)
        elif escape in _C_ESCAPES:
            raw.append(_C_ESCAPES[escape])
        else:
            raw += escape.encode("utf-8", errors="replace")
        position = match.end()
    raw += quoted[position:].encode("utf-8", errors="replace")
    return raw.decode("utf-8", errors="replace")


def _convert_hunk(hunk: UnidiffHunk, lines: list[str]) -> Hunk:
    diff_lines = tuple(
        DiffLine(
            kind=line.line_type,
            text=_strip_line_ending(line.value),
            old_lineno=line.source_line_no,
            new_lineno=line.target_line_no,
        )
        # unidiff also keeps "\ No newline at end of file" markers and blank separator lines in hunks.
        for line in hunk
        if line.line_type in LINE_KINDS
    )
    return Hunk(
        header=_hunk_header(hunk, lines),
        old_start=hunk.source_start,
        old_len=hunk.source_length,
        new_start=hunk.target_start,
        new_len=hunk.target_length,
        lines=diff_lines,
    )


def _overflows(hunk: UnidiffHunk, lines: list[str]) -> bool:
    """Whether a "+" or "-" line follows the hunk's last line: unidiff stops at the count in the header
    and would skip such lines as prose, hiding changes from review."""
    numbered = [line.diff_line_no for line in hunk if line.diff_line_no]
    if not numbered:
        return False
    next_index = max(numbered)  # 0-based index of the line after the hunk's last line
    while next_index < len(lines) and lines[next_index].startswith("\\"):
        next_index += 1
    if next_index == len(lines):
        return False
    next_line = lines[next_index]
    is_header = next_line.startswith(("+++ ", "--- ")) or next_line.rstrip() == "--"  # "-- " ends a mail
    return next_line.startswith(("+", "-")) and not is_header


def _hunk_header(hunk: UnidiffHunk, lines: list[str]) -> str:
    """The ``@@`` line as written in the diff (unidiff only offers a normalised rewrite of it)."""
    first_line_number = hunk[0].diff_line_no if len(hunk) else None
    if first_line_number and 2 <= first_line_number <= len(lines) + 1:
        written = lines[first_line_number - 2]
        if written.startswith("@@"):
            return _strip_line_ending(written)
    return _strip_line_ending(str(hunk).partition("\n")[0])


def _strip_line_ending(text: str) -> str:
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text


def _file_head(hunks: tuple[Hunk, ...], deleted: bool) -> str:
    """The file's first lines as far as the diff shows them: added and context lines, removed ones too
    when the whole file is deleted."""
    head: list[str] = []
    for hunk in hunks:
        for line in hunk.lines:
            if line.kind == "-" and not deleted:
                continue
            position = line.new_lineno if line.new_lineno is not None else line.old_lineno
            if position is not None and position <= HEAD_LINES:
                head.append(line.text)
    return "\n".join(head)


# --- classification -------------------------------------------------------------------------------------

_GENERATED_MARKERS = re.compile(
    r"@generated"
    r"|code generated .* do not edit"
    r"|(?:file|code) (?:is|was|has been) (?:automatically |auto-?)generated"
    r"|<auto-generated"
    r"|do not edit"
    r"|do not modify this file",
    re.IGNORECASE,
)


def looks_generated(text: str) -> bool:
    """Whether the first lines of ``text`` carry a generated-file marker.

    Markers: "@generated", Go's "Code generated ... DO NOT EDIT", "This file is automatically
    generated" (or "was auto-generated", "is autogenerated"), .NET's "<auto-generated>", "do not
    edit" and "do not modify this file", in any case. Only the first ten lines are looked at.
    """
    head = "\n".join(text.splitlines()[:HEAD_LINES])
    return bool(_GENERATED_MARKERS.search(head))


_COPIED_MARKERS = re.compile(
    r"\b(?:copied|forked|vendored)\s+(?:verbatim\s+|unchanged\s+)?from\s+\S*(?:github\.com|gitlab\.com|://|\.org/)",
    re.IGNORECASE,
)


def looks_copied(text: str) -> bool:
    """Whether the first lines of ``text`` say the file is a copy of another project's code: "Copied from
    https://…", "Forked from github.com/…", "vendored from …" naming where the original lives (a licence's "a copy
    of the License" is not one). Only the first ten lines are looked at."""
    head = "\n".join(text.splitlines()[:HEAD_LINES])
    return bool(_COPIED_MARKERS.search(head))


def head_of(file: FileDiff) -> str:
    """The file's first lines as far as its diff shows them (the removed ones too for a deleted file)."""
    return _file_head(file.hunks, deleted=file.change == "deleted")


# Files only a project's own root holds (its CI set-up). One of them inside a folder makes that folder the root of
# another project kept in the repository: a vendored copy (Go's internal/<pkg> copy of another module).
_PROJECT_ROOT_FILES = frozenset(
    {
        ".travis.yml",
        "appveyor.yml",
        ".appveyor.yml",
        "azure-pipelines.yml",
        ".cirrus.yml",
        ".gitlab-ci.yml",
        "codecov.yml",
        ".codecov.yml",
    }
)
_PROJECT_ROOT_DIRS = (".github/workflows", ".circleci")
# Folders that hold sample projects on purpose (fixtures, templates, examples): a CI file there is data.
_SAMPLE_DIRS = frozenset({"fixtures", "fixture", "testdata", "examples", "example", "templates", "template", "samples"})


def project_root_probes(paths: Iterable[str], folders: int = 64) -> list[str]:
    """Where a CI file would sit if a folder above one of ``paths`` (not the top of the repository) were another
    project's root: "a/b/c.go" gives "a/b/.travis.yml" … "a/.travis.yml" …; at most ``folders`` folders."""
    above: dict[str, None] = {}
    for path in paths:
        parts = [part for part in str(path).split("/") if part and part != "."][:-1]
        for end in range(len(parts), 0, -1):
            above.setdefault("/".join(parts[:end]))
    return [f"{folder}/{name}" for folder in list(above)[:folders] for name in sorted(_PROJECT_ROOT_FILES)]


def nested_project_roots(paths: Iterable[str]) -> set[str]:
    """The folders below the top of the repository that the given paths show to be another project's root: they
    hold a CI file of their own (.travis.yml, appveyor.yml, .github/workflows/…, .circleci/…). Folders inside tests,
    fixtures, examples or templates are left out (sample projects there are data)."""
    roots = set()
    for path in paths:
        parts = [part for part in str(path).strip().split("/") if part and part != "."]
        if len(parts) < 2:
            continue
        *dirs, name = parts
        folder = ""
        if name in _PROJECT_ROOT_FILES:
            folder = "/".join(dirs)
        else:
            joined = "/".join(dirs)
            for marker in _PROJECT_ROOT_DIRS:
                before, found, _ = ("/" + joined + "/").partition("/" + marker + "/")
                if found:
                    folder = before.strip("/")
                    break
        lowered = {part.lower() for part in folder.split("/")}
        if folder and not (lowered & _TEST_DIRS or lowered & _SAMPLE_DIRS):
            roots.add(folder)
    return roots


_TEST_DIRS = frozenset({"tests", "test", "__tests__", "spec", "specs", "testing", "testsuite", "test-suite"})
_TEST_FILE = re.compile(
    r"test_.*\.py|.*_tests?\.py|tests\.py|conftest\.py|.*_test\.go|.*_spec\.rb"
    r"|.*[.-](?:test|spec)\.(?:ts|tsx|mts|cts|js|jsx|mjs|cjs)|.*\.spec\..+"
    r"|.*Tests?\.(?:java|kt|groovy|scala)|.*Spec\.(?:groovy|scala)|.*IT\.java"
)
_LOCK_FILES = frozenset(
    {
        "poetry.lock",
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "bun.lockb",
        "Cargo.lock",
        "go.sum",
        "Pipfile.lock",
        "uv.lock",
        "pdm.lock",
        "composer.lock",
        "Gemfile.lock",
        "flake.lock",
        "mix.lock",
    }
)
_GENERATED_DIRS = frozenset({"dist", "__generated__"})
# Third-party code kept in the repository: edits belong upstream. `packages/` is a vendored copy only when the
# repository does not declare it as its own workspaces (see goals/repopaths.py), so it is asked for apart.
_VENDORED_DIRS = frozenset(
    {"vendor", "_vendor", "vendored", "third_party", "third-party", "thirdparty", "node_modules", "bower_components"}
)
_GENERATED_FILE = re.compile(
    r".*_pb2(?:_grpc)?\.pyi?|.*\.pb\.go|.*\.generated\..+|.*\.g\.dart|.*\.min\.(?:js|css)"
)
_DOCS_DIRS = frozenset({"docs", "doc"})
_DOCS_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc"})
_DOCS_STEMS = frozenset(
    {"LICENSE", "LICENCE", "COPYING", "NOTICE", "CHANGELOG", "CHANGES", "HISTORY", "AUTHORS", "CONTRIBUTING"}
)
_CONFIG_SUFFIXES = frozenset({".toml", ".ini", ".cfg", ".conf", ".yaml", ".yml", ".json"})
_CONFIG_FILES = frozenset(
    {
        "Makefile",
        "Procfile",
        "Justfile",
        "CMakeLists.txt",
        ".gitignore",
        ".gitattributes",
        ".dockerignore",
        ".editorconfig",
        ".python-version",
        ".nvmrc",
    }
)
# Text files that configure the build or the dependencies rather than document anything.
_CONFIG_TXT = re.compile(r"(?:requirements|constraints)(?:[-_.].*)?\.(?:txt|in)")
_CODE_SUFFIXES = frozenset(
    {
        ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".kts",
        ".rb", ".php", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".swift", ".scala", ".m",
        ".mm", ".dart", ".lua", ".pl", ".pm", ".r", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".elm",
        ".zig", ".nim", ".sol", ".html", ".htm", ".css", ".scss", ".sass", ".less", ".vue", ".svelte",
        ".astro", ".jinja", ".j2", ".sql", ".graphql", ".proto", ".sh", ".bash", ".zsh", ".fish", ".ps1",
    }
)  # fmt: skip


def classify_path(path: str, head: str = "", *, packages_vendored: bool = True) -> str:
    """Say what kind of file ``path`` is, one of :data:`CATEGORIES`.

    ``head`` is the start of the file's text, if known; a generated-file marker in it (see
    :func:`looks_generated`) makes the file "generated". The first rule that matches wins, in this
    order: lock files, vendored copies (vendor/, _vendor/, third_party/, node_modules/ … and packages/ unless
    ``packages_vendored`` is false because the repository declares packages/ as its own workspaces), migrations
    (Django, Alembic, Rails, SQL under migrations/), generated files (protobuf output, minified assets,
    ``*.generated.*``, anything under dist/, build output under build/), tests (tests/, test/, testing/,
    testsuite/, __tests__/ and spec/ directories and the usual test file names of Python, Go, JS/TS, Java,
    Kotlin and Ruby), config known by name (Dockerfile, Makefile, requirements.txt, .env.example), docs (docs/
    and doc/ directories, Markdown, reST, plain text, LICENSE, CHANGELOG), other config (TOML, INI, YAML, JSON,
    anything under .github/), product code by source extension, and "other" (images, data, unknown extensions).
    """
    parts = [part for part in path.strip().split("/") if part and part != "."]
    if not parts:
        return "other"
    *dirs, name = parts
    suffix = _suffix(name)

    if name in _LOCK_FILES:
        return "lock"
    if _VENDORED_DIRS.intersection(dirs) or (packages_vendored and "packages" in dirs):
        return "vendored"
    if _is_migration(dirs, suffix):
        return "migration"
    if (
        _GENERATED_DIRS.intersection(dirs)
        or _is_build_output(dirs, suffix)
        or _GENERATED_FILE.fullmatch(name)
        or looks_generated(head)
    ):
        return "generated"
    if _TEST_DIRS.intersection(dirs) or _TEST_FILE.fullmatch(name):
        return "test"
    if _is_config_by_name(name) or (dirs and dirs[0] in _CI_DIRS):
        return "config"
    if _DOCS_DIRS.intersection(dirs) or suffix in _DOCS_SUFFIXES or _stem(name).upper() in _DOCS_STEMS:
        return "docs"
    if suffix in _CONFIG_SUFFIXES or ".github" in dirs:
        return "config"
    if suffix in _CODE_SUFFIXES:
        return "code"
    return "other"


def _is_build_output(dirs: list[str], suffix: str) -> bool:
    """Under build/, output (build/lib/…), except a source file kept right in a top-level build/ folder: that is
    a hand-written build script or probe (committed build output is rarely source code at the top)."""
    if "build" not in dirs:
        return False
    return not (dirs == ["build"] and suffix in _CODE_SUFFIXES)


def _suffix(name: str) -> str:
    stem, dot, extension = name.rpartition(".")
    return f".{extension.lower()}" if dot and stem else ""


def _stem(name: str) -> str:
    return name.split(".", 1)[0] if not name.startswith(".") else name


def _is_migration(dirs: list[str], suffix: str) -> bool:
    if "migrations" in dirs and suffix in {".py", ".sql"}:
        return True
    if "alembic" in dirs and dirs[-1] == "versions" and suffix == ".py":
        return True
    return suffix == ".rb" and any(dirs[i : i + 2] == ["db", "migrate"] for i in range(len(dirs) - 1))


# A tool's settings written as a script (`vitest.config.ts`, `.eslintrc.js`): build set-up, not product code.
_TOOL_CONFIG_SCRIPT = re.compile(r"(?:[\w-]+\.config|\.[\w-]+rc)\.[cm]?[jt]s", re.IGNORECASE)
# Top-level folders of CI scripts (`ci/miri.sh`): how the project is checked, not what it does.
_CI_DIRS = frozenset({"ci", ".ci", ".circleci", ".buildkite"})


def _is_config_by_name(name: str) -> bool:
    """Config files known by name, including the few ".txt" files that are config rather than docs."""
    return (
        name in _CONFIG_FILES
        or bool(_CONFIG_TXT.fullmatch(name))
        or bool(_TOOL_CONFIG_SCRIPT.fullmatch(name))
        or name.startswith(("Dockerfile", "Containerfile", ".env"))
    )

"""The approval page's diff viewer: which files a first load shows, each file's lines highlighted, and the
lines the review gates quoted marked.

A 20,000-line diff over 500 files must never become one multi-megabyte page, and Pygments over all of it takes
seconds: the page lists every file, renders only a few small ones, and the rest load one file at a time.
Pure apart from Django's escaping helpers: no ORM, no requests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from pygments.lexers import get_lexer_for_filename
from pygments.lexers.special import TextLexer
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

from goals.diffs import DiffError, FileDiff, ParsedDiff, parse_diff
from goals.gates import LINE_CHARS

__all__ = [
    "DiffError",
    "FileView",
    "HunkView",
    "IndexedFile",
    "LineView",
    "file_at",
    "finding_targets",
    "first_load",
    "highlight",
    "index",
    "is_large",
    "marks_for_file",
    "parse",
    "render_file",
    "summarise",
]

OPEN_FILES = 3  # the first files are open and rendered on the page...
INLINE_LINES = 1_000  # ...as long as the page's rendered diff stays under these many lines
INLINE_CHARS = 60_000  # ...and characters; the others load when opened
LARGE_FILE_LINES = 2_000  # a file with more diff lines is summarised until someone asks for it
LARGE_FILE_CHARS = 150_000
HIGHLIGHT_LINES = 5_000  # beyond this (or with minified-length lines) a file is shown plain
HIGHLIGHT_LINE_CHARS = 2_000
LISTED_FILES = 300  # file sections per page; further files come in batches

_GIT_FILE_START = re.compile(r"^diff --git ", re.MULTILINE)


@dataclass(frozen=True)
class LineView:
    """One diff line ready for the page: ``html`` is escaped (and highlighted) text, safe to output.

    ``marks`` are the indexes (in the request's findings) of the findings that quote this line; ``anchors``
    those for which it is the first quoted line in its file, so the finding list can link to it.
    """

    kind: str
    old: int | None
    new: int | None
    html: SafeString
    marks: tuple[int, ...] = ()
    anchors: tuple[int, ...] = ()


@dataclass(frozen=True)
class HunkView:
    header: str
    lines: tuple[LineView, ...]


@dataclass(frozen=True)
class FileView:
    """A file of the diff as the page shows it: always its summary; its hunks only once rendered."""

    index: int
    path: str
    old_path: str | None
    change: str
    binary: bool
    added: int
    removed: int
    line_count: int
    large: bool
    marked: int  # diff lines the gates quoted
    hunks: tuple[HunkView, ...] | None = None  # None: not rendered (yet)
    plain: bool = False  # rendered without highlighting

    @property
    def rendered(self) -> bool:
        return self.hunks is not None


@dataclass(frozen=True)
class IndexedFile:
    """A file of a recorded diff, known by what the step recorded of it and its part of the text, which is
    parsed only when the file is shown or a finding may quote it."""

    path: str
    old_path: str | None
    change: str
    binary: bool
    added: int
    removed: int
    line_count: int
    char_count: int
    part: str  # this file's piece of the diff, from its "diff --git" line

    def parsed(self) -> FileDiff:
        files = parse_diff(self.part).files
        if len(files) != 1:
            raise DiffError(f"the part of the diff for {self.path} does not read as one file")
        return files[0]


def index(text: str, recorded: list[dict] | None) -> tuple[IndexedFile, ...] | None:
    """The diff's files from the step's record (``ParsedDiff.compact()``), each with its part of the text, found
    by a scan for "diff --git" lines: no parse. None when the record does not line up with the text (no record,
    one without sizes, a diff cut short, a plain unified diff): parse the whole diff then."""
    starts = [match.start() for match in _GIT_FILE_START.finditer(text or "")]
    if not starts or not recorded or len(starts) != len(recorded):
        return None
    if not all(isinstance(entry, dict) and "lines" in entry and "chars" in entry for entry in recorded):
        return None
    ends = [*starts[1:], len(text)]
    return tuple(
        IndexedFile(
            path=str(entry["path"]),
            old_path=entry.get("old_path"),
            change=str(entry.get("change", "modified")),
            binary=bool(entry.get("binary")),
            added=int(entry.get("added") or 0),
            removed=int(entry.get("removed") or 0),
            line_count=int(entry["lines"]),
            char_count=int(entry["chars"]),
            part=text[start:end],
        )
        for entry, start, end in zip(recorded, starts, ends, strict=True)
    )


def parse(text: str) -> ParsedDiff:
    """The step's diff parsed; raises DiffError for a text that is not a readable diff."""
    return parse_diff(text or "")


def file_at(text: str, index: int, expected_files: int | None = None) -> FileDiff | None:
    """The diff's file at ``index`` (0-based), or None when there is none.

    A git diff is cut at its ``diff --git`` lines and only that file is parsed, so loading one file of a huge diff
    costs one file's parse; when the cut does not line up with the file count the step recorded, the whole diff
    is parsed instead.
    """
    if index < 0:
        return None
    starts = [match.start() for match in _GIT_FILE_START.finditer(text or "")]
    if starts and len(starts) == expected_files and index < len(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        try:
            files = parse_diff(text[starts[index] : end]).files
        except DiffError:
            files = ()
        if len(files) == 1:
            return files[0]
    files = parse(text).files
    return files[index] if index < len(files) else None


def _line_count(file: FileDiff | IndexedFile) -> int:
    if isinstance(file, IndexedFile):
        return file.line_count
    return sum(len(hunk.lines) for hunk in file.hunks)


def _char_count(file: FileDiff | IndexedFile) -> int:
    if isinstance(file, IndexedFile):
        return file.char_count
    return sum(len(line.text) for hunk in file.hunks for line in hunk.lines)


def is_large(file: FileDiff | IndexedFile) -> bool:
    """Whether the file is too big to render unasked (over ~2,000 diff lines, or minified-size text)."""
    return _line_count(file) > LARGE_FILE_LINES or _char_count(file) > LARGE_FILE_CHARS


def _quoted(finding: dict) -> list[tuple[str, str]]:
    quotes = []
    for quote in finding.get("lines") or ():
        if isinstance(quote, str) and quote[:1] in ("+", "-", " "):
            quotes.append((quote[0], quote[1:]))
    return quotes


def _finding_paths(finding: dict) -> set[str] | None:
    """The paths a finding is about; None when it names none (then any file may hold its lines)."""
    if finding.get("path"):
        return {str(finding["path"])}
    data = finding.get("data") if isinstance(finding.get("data"), dict) else {}
    paths = data.get("paths")
    if isinstance(paths, list) and paths:
        return {str(path) for path in paths}
    return None


def _about(file: FileDiff, paths: set[str] | None) -> bool:
    return paths is None or file.path in paths or (file.old_path is not None and file.old_path in paths)


def marks_for_file(file: FileDiff | IndexedFile, findings: list[dict]) -> dict[tuple[int, int], tuple[int, ...]]:
    """Which lines of the file the findings quote: {(hunk index, line index): finding indexes}.

    A quoted line ("+text" or "-text", as the gates write them, cut at the gates' line length) marks its first
    matching line in each file the finding is about; info findings mark nothing. An indexed file is parsed only
    when its text holds a quoted line.
    """
    wanted: dict[tuple[str, str], list[int]] = {}
    for number, finding in enumerate(findings):
        if not isinstance(finding, dict) or finding.get("severity") == "info":
            continue
        if not _about(file, _finding_paths(finding)):
            continue
        for key in _quoted(finding):
            wanted.setdefault(key, []).append(number)
    if not wanted:
        return {}
    if isinstance(file, IndexedFile):
        if not any(f"\n{kind}{text}" in file.part for kind, text in wanted):
            return {}
        file = file.parsed()
    marks: dict[tuple[int, int], tuple[int, ...]] = {}
    seen: set[tuple[int, tuple[str, str]]] = set()
    for hunk_index, hunk in enumerate(file.hunks):
        for line_index, line in enumerate(hunk.lines):
            key = (line.kind, line.text[:LINE_CHARS])
            numbers = [number for number in wanted.get(key, ()) if (number, key) not in seen]
            if numbers:
                seen.update((number, key) for number in numbers)
                marks[(hunk_index, line_index)] = tuple(numbers)
    return marks


def finding_targets(
    files: tuple[FileDiff | IndexedFile, ...], findings: list[dict], marks: list[dict] | None = None
) -> dict[int, tuple[int, bool]]:
    """Where each finding points in the diff: {finding index: (file index, has a marked line)}.

    The first file with a line the finding quotes, else the first file it names; findings about no file of
    the diff are left out. ``marks`` are the files' :func:`marks_for_file`, when already at hand.
    """
    if marks is None:
        marks = [marks_for_file(file, findings) for file in files]
    targets: dict[int, tuple[int, bool]] = {}
    for index, file_marks in enumerate(marks):
        for numbers in file_marks.values():
            for number in numbers:
                if not targets.get(number, (0, False))[1]:
                    targets[number] = (index, True)
    for number, finding in enumerate(findings):
        if number in targets or not isinstance(finding, dict) or finding.get("severity") == "info":
            continue
        paths = _finding_paths(finding)
        if paths is None:
            continue
        named = next((index for index, file in enumerate(files) if _about(file, paths)), None)
        if named is not None:
            targets[number] = (named, False)
    return targets


def first_load(files: tuple[FileDiff | IndexedFile, ...], flagged: set[int] = frozenset()) -> set[int]:
    """The files rendered with the page: the first three, then files the gates flagged, while the page's
    diff stays small; binary and large files never."""
    chosen: set[int] = set()
    lines_left, chars_left = INLINE_LINES, INLINE_CHARS
    candidates = [*range(min(OPEN_FILES, len(files))), *sorted(flagged)]
    for index in candidates:
        if index in chosen or index >= len(files):
            continue
        file = files[index]
        if file.binary or is_large(file):
            continue
        lines, chars = _line_count(file), _char_count(file)
        if lines > lines_left or chars > chars_left:
            continue
        chosen.add(index)
        lines_left -= lines
        chars_left -= chars
    return chosen


def summarise(file: FileDiff | IndexedFile, index: int, marked: int = 0) -> FileView:
    """The file's section header only: path, change, counts."""
    return FileView(
        index=index,
        path=file.path,
        old_path=file.old_path,
        change=file.change,
        binary=file.binary,
        added=file.added,
        removed=file.removed,
        line_count=_line_count(file),
        large=is_large(file),
        marked=marked,
    )


def render_file(file: FileDiff | IndexedFile, index: int, findings: list[dict], force: bool = False) -> FileView:
    """The file with its hunks highlighted and the quoted lines marked; a large file only when forced."""
    if isinstance(file, IndexedFile):
        file = file.parsed()
    marks = marks_for_file(file, findings)
    summary = summarise(file, index, marked=len(marks))
    if file.binary or (summary.large and not force):
        return summary
    plain = summary.line_count > HIGHLIGHT_LINES or any(
        len(line.text) > HIGHLIGHT_LINE_CHARS for hunk in file.hunks for line in hunk.lines
    )
    new_side = [line.text for hunk in file.hunks for line in hunk.lines if line.kind != "-"]
    old_side = [line.text for hunk in file.hunks for line in hunk.lines if line.kind == "-"]
    new_html = iter(_plain(new_side) if plain else highlight(file.path, new_side))
    old_html = iter(_plain(old_side) if plain else highlight(file.old_path or file.path, old_side))
    anchored: set[int] = set()
    hunks = []
    for hunk_index, hunk in enumerate(file.hunks):
        lines = []
        for line_index, line in enumerate(hunk.lines):
            numbers = marks.get((hunk_index, line_index), ())
            anchors = tuple(number for number in numbers if number not in anchored)
            anchored.update(anchors)
            lines.append(
                LineView(
                    kind=line.kind,
                    old=line.old_lineno,
                    new=line.new_lineno,
                    html=next(old_html if line.kind == "-" else new_html),
                    marks=numbers,
                    anchors=anchors,
                )
            )
        hunks.append(HunkView(header=hunk.header, lines=tuple(lines)))
    return replace(summary, hunks=tuple(hunks), plain=plain)


@lru_cache(maxsize=256)
def _lexer_for(filename: str):
    try:
        return get_lexer_for_filename(filename, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


def _css_class(token_type) -> str:
    while token_type not in STANDARD_TYPES:
        token_type = token_type.parent
    return STANDARD_TYPES[token_type]


def _plain(lines: list[str]) -> list[SafeString]:
    return [escape(line) for line in lines]


def highlight(path: str, lines: list[str]) -> list[SafeString]:
    """Each line as escaped HTML with Pygments' short token classes (``<span class="k">def</span>``).

    The lexer is guessed from the file name (plain text when unknown). Lines are lexed together, so strings and
    comments spanning lines come out right, and every line's spans are closed on that line. Falls back to
    plain escaped lines should the lexer not give back exactly as many lines.
    """
    if not lines:
        return []
    lexer = _lexer_for(path.rsplit("/", 1)[-1])
    # Per line, (css class, text) runs: neighbouring tokens of one class share a span.
    runs: list[list[list[str]]] = [[]]
    for token_type, value in lexer.get_tokens("\n".join(lines) + "\n"):
        css = _css_class(token_type)
        css = "" if css == "w" else css
        for number, piece in enumerate(value.split("\n")):
            if number:
                runs.append([])
            if not piece:
                continue
            if runs[-1] and runs[-1][-1][0] == css:
                runs[-1][-1][1] += piece
            else:
                runs[-1].append([css, piece])
    if runs and not runs[-1]:
        runs.pop()
    if len(runs) != len(lines):
        return _plain(lines)
    return [
        mark_safe(  # noqa: S308  (every piece of text is escaped here)
            "".join(f'<span class="{css}">{escape(text)}</span>' if css else escape(text) for css, text in line)
        )
        for line in runs
    ]

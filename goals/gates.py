"""The review gates: from a goal's contract, one step of work and the goal's history, say when a person
must look.

Pure Python (no Django, no ORM), like the linter: the loop, the `gates` command and tests all call
:func:`run_gates`. Every gate is a function from the same inputs to findings; none of them raises on
any diff or any strings, and the same inputs always give the same findings in the same order.

Quiet matters as much as loud: a step that changes product code and its tests inside the contract raises
nothing above "info", because false alarms teach people to tap Approve without reading.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from fnmatch import fnmatchcase
from functools import cached_property, lru_cache
from itertools import chain, islice

from goals.diffs import (
    FileDiff,
    ParsedDiff,
    classify_path,
    head_of,
    looks_copied,
    looks_generated,
    nested_project_roots,
    project_root_probes,
)
from goals.lint import BUDGET_LABELS, DEFAULT_REPEATED_FAILURE_THRESHOLD, Contract
from goals.repopaths import CONFIG_FILES, RepoPaths
from goals.testcode import Language, analyser_for
from goals.testcode import checks as checks_module

INFO, APPROVAL, STOP = "info", "approval", "stop"
SEVERITIES = (STOP, APPROVAL, INFO)  # most serious first
GATE_NAMES = (
    "blast_radius",
    "protected_path",
    "tests_without_code",
    "tests_weakened",
    "repeated_failure",
    "follow_up",
    "budget",
    "risk",
)
# Approval request kinds, the one that wins first: a budget decision outranks a plan, a plan a follow-up.
REQUEST_KINDS = ("budget", "plan", "follow_up", "step")
# Budgets the budget gate watches; files_per_step belongs to the blast-radius gate.
WATCHED_BUDGETS = ("minutes", "steps", "tokens", "files_total", "approvals", "retries")

MAX_QUOTED_LINES = 20
REASON_LIMIT = 160
# Bounds that keep any diff, however large or odd, quick to judge.
LINE_CHARS = 2_000  # a changed line is judged on its first characters (minified code has huge lines)
SIMILARITY_CHARS = 200
PAIRING_CANDIDATES = 20
GOOD_ENOUGH_MATCH = 0.8  # a candidate this similar is taken without looking further
JS_DEFAULT_TIMEOUT_MS = 5_000  # Jest's and Vitest's default time limit for one test (Mocha's is shorter)
CLOSE_ELSEWHERE = 0.6  # how similar a check elsewhere in the file must be to count as the replacement


# --- inputs and findings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateFinding:
    """One thing a gate found: which gate, how serious, a one-line reason a person reads on a phone,
    the file and the quoted diff lines that triggered it, the approval request kind it asks for, and
    gate-specific details in ``data``."""

    gate: str
    severity: str
    reason: str
    path: str | None = None
    lines: tuple[str, ...] = ()
    kind: str = "step"
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The finding as JSON-ready data."""
        return {
            "gate": self.gate,
            "severity": self.severity,
            "reason": self.reason,
            "path": self.path,
            "lines": list(self.lines),
            "kind": self.kind,
            "data": dict(self.data),
        }


# Keyword-only: ``passed`` has no default but follows ``expected_exit``, which has one.
@dataclass(frozen=True, kw_only=True)
class EvidenceResult:
    """The outcome of one evidence check run for a step."""

    name: str
    command: str
    exit_code: int | None
    expected_exit: int = 0
    passed: bool
    failing_tests: tuple[str, ...] = ()
    output_tail: str = ""
    timed_out: bool = False


@dataclass(frozen=True)
class Usage:
    """What the goal has used so far, this step included."""

    minutes: float = 0
    steps: int = 0
    tokens: int = 0
    files_total: int = 0
    approvals: int = 0
    retries: int = 0


@dataclass(frozen=True)
class History:
    """What earlier steps of the goal left behind, oldest first."""

    failure_signatures: tuple[str | None, ...] = ()  # None: that step passed
    attempts: tuple[str, ...] = ()  # one-line summaries of those steps, same order
    touched_paths: tuple[str, ...] = ()  # files changed by earlier steps


@dataclass(frozen=True)
class Step:
    """One step of the agent's work: its diff, the evidence it produced and what the agent reported."""

    diff: ParsedDiff
    evidence: tuple[EvidenceResult, ...] = ()
    reported_bugs: tuple[str, ...] = ()  # bugs the agent found besides the goal's
    agent_done: bool = False


# --- small helpers ---------------------------------------------------------------------------------------


def _one_line(text: object, limit: int = REASON_LIMIT) -> str:
    """Text on one line (any whitespace run becomes a space), cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


def _paths_phrase(paths: Sequence[str], shown: int = 2) -> str:
    listed = ", ".join(_one_line(path, 60) for path in paths[:shown])
    return listed if len(paths) <= shown else f"{listed} and {len(paths) - shown} more"


def _quote(kind: str, text: str) -> str:
    return kind + text


def _strings(values: object) -> list[str]:
    """Non-blank strings from a tuple of them; a lone string counts as one, not as its characters."""
    if isinstance(values, str):
        values = (values,)
    try:
        return [str(value) for value in values if str(value).strip()]
    except TypeError:
        return []


def _number(value: object) -> float | None:
    """A usable count or limit: a finite real number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _limit(contract: Contract, name: str) -> float | None:
    """The contract's budget, None when it is unbounded (None, 0 or not a positive number)."""
    try:
        value = _number(contract.budget(name))
    except (AttributeError, KeyError, TypeError):
        return None
    return value if value is not None and value > 0 else None


def _show_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else round(value, 1)


# --- globs -----------------------------------------------------------------------------------------------


# Only the first few "**/" of a pattern are expanded (each doubles the variants); later ones need a directory.
MAX_EXPANDED_DOUBLE_STARS = 4


@lru_cache(maxsize=512)
def _glob_variants(pattern: str) -> tuple[str, ...]:
    """The plain fnmatch patterns a glob stands for: each "**/" is either nothing or "*/" (fnmatch's
    ``*`` already crosses "/"), so "docs/**/*.md" also matches "docs/index.md"."""
    pieces = pattern.split("**/")
    variants = [pieces[0]]
    for position, piece in enumerate(pieces[1:]):
        joiners = ("", "*/") if position < MAX_EXPANDED_DOUBLE_STARS else ("*/",)
        variants = [variant + joiner + piece for variant in variants for joiner in joiners]
    return tuple(dict.fromkeys(variants))


def _clean_relative(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def matches_glob(path: str, pattern: str) -> bool:
    """Whether a repository path matches a goal's glob: the path itself, or (for a pattern naming a
    directory, with or without a trailing "/") any directory above it."""
    path, pattern = _clean_relative(path), _clean_relative(pattern).rstrip("/")
    if not path or not pattern:
        return False
    directories = path.split("/")[:-1]
    candidates = [path] + ["/".join(directories[: depth + 1]) for depth in range(len(directories))]
    return any(
        fnmatchcase(candidate, variant) for variant in _glob_variants(pattern) for candidate in candidates
    )


def _file_paths(file: FileDiff) -> tuple[str, ...]:
    """The paths a file change touches: the new one, and the old one for renames and copies."""
    paths = [file.path] if file.path else []
    if file.old_path and file.old_path != file.path:
        paths.append(file.old_path)
    return tuple(paths)


# --- failure signatures ----------------------------------------------------------------------------------

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TEMP_PATH = re.compile(
    r"(?:/private)?(?:/tmp|/var/tmp|/var/folders)/[^\s:'\"()\[\]<>,]*"
    r"|[A-Za-z]:\\(?:[^\s:'\"()<>,\\]+\\)*?Temp\\[^\s:'\"()<>,]*",
    re.IGNORECASE,
)
_HEX_NUMBER = re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE)
_DIGITS = re.compile(r"\d+(?:[.,:]\d+)*")
_NAMED_ERROR = re.compile(
    r"\b[A-Z]\w*(?:Error|Exception|Exit|Interrupt)\b|^E\s+\S|\bpanic:|\bAssertion\w*\b|\bassert\b"
)
_ERROR_WORD = re.compile(r"\b(?:error|errors|failed|failure|fail|fatal|panic|traceback)\b", re.IGNORECASE)
_OUTPUT_WINDOW = 20_000
SIGNATURE_LIMIT = 200


def _normalise_output_line(line: str) -> str:
    line = _ANSI_ESCAPE.sub("", line)
    line = _TEMP_PATH.sub("<tmp>", line)
    line = _HEX_NUMBER.sub("<address>", line)
    line = _DIGITS.sub("N", line)
    return _one_line(line, SIGNATURE_LIMIT)


def error_line(output: str, *, normalised: bool = True) -> str:
    """The line of the output that best names the error: normalised (numbers, addresses and temporary paths
    taken out) so reruns compare equal, or as it was, with its real numbers, for a person to read."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in output[-_OUTPUT_WINDOW:].splitlines()]
    lines = [line for line in lines if line]
    shown = _normalise_output_line if normalised else (lambda line: _one_line(line, SIGNATURE_LIMIT))
    for pattern in (_NAMED_ERROR, _ERROR_WORD):
        matching = [line for line in lines if pattern.search(line)]
        if matching:
            return shown(matching[-1])
    return shown(lines[-1]) if lines else ""


def _is_failing(result: EvidenceResult) -> bool:
    return not result.passed or bool(result.timed_out)


def failure_signature(evidence: Iterable[EvidenceResult]) -> str | None:
    """A stable name for how a step failed, None when every check passed (or there were none).

    The failing test names, sorted; for a failing check that names no test, its command and its error
    line with numbers, memory addresses and temporary paths taken out, so the same failure gives the
    same signature from one run to the next. Test names are kept as they are: ``test_x[1]`` and
    ``test_x[2]`` are different tests.
    """
    return _failure_text(evidence, normalised=True)


def failure_message(evidence: Iterable[EvidenceResult]) -> str | None:
    """How a step failed, for a person: ``failure_signature``'s words with the real numbers and paths kept
    (``AssertionError: 3 != 4``, never ``N != N``). None when every check passed."""
    return _failure_text(evidence, normalised=False)


def _failure_text(evidence: Iterable[EvidenceResult], *, normalised: bool) -> str | None:
    parts: set[str] = set()
    for result in evidence:
        if not _is_failing(result):
            continue
        tests = {_one_line(test, SIGNATURE_LIMIT) for test in result.failing_tests if str(test).strip()}
        if tests:
            parts |= tests
            continue
        label = _one_line(result.command or result.name or "evidence", SIGNATURE_LIMIT)
        output = str(result.output_tail or "")
        error = "timed out" if result.timed_out else error_line(output, normalised=normalised) or "failed"
        parts.add(f"{label}: {error}")
    return ", ".join(sorted(parts)) or None


# --- reading test code -----------------------------------------------------------------------------------
# What a line of test code means (an assertion, a skip marker, a test definition) is each framework's
# business, in goals/testcode/; here the changed lines of a step are sorted and paired.

# Lines that do nothing on their own: removing them changes no test.
_TRIVIAL_LINES = frozenset({"pass", "...", "{", "}", "(", ")", "[", "]", "})", "});", "};", "end", "),"})
_TRAILING_COMMA = re.compile(r",(?=[)\]}])")
# A test that now returns before its checks: `if (old(node)) return`, `if cond {` + `return;`.
_EARLY_RETURN = re.compile(r"^(?:if\b.*[)}:]\s*)?return;?\s*\}?$")
_EARLY_RETURN_CONDITION = re.compile(r"^(?:}\s*else\s+)?if\b")
_CONDITION = re.compile(r"^(?:}\s*else\s+)?if\b.*\{$")
_ANNOTATION = re.compile(r"^(?:@|#\[)")  # a Java/Python annotation or decorator, a Rust attribute
_CATCH = re.compile(r"^\}?\s*catch\s*\(")
_TRY = re.compile(r"\btry\s*\{")
_FAIL_CALL = re.compile(r"\bfail\s*\(")
_NAME = re.compile(r"[A-Za-z_][\w.]*")
_CONDITION_WORDS = {"if", "else", "nil", "null", "true", "false", "not", "and", "or"}
_PACKAGE = re.compile(r"^package\s+[\w.]+;?$")  # Java's and Go's package line
_JS_TEST_TIMEOUT = re.compile(
    r"^\}\s*,\s*(\d[\d_]*)\s*\)|\bthis\.timeout\s*\(\s*(\d[\d_]*)|\b(?:jest|vi)\.setTimeout\s*\(\s*(\d[\d_]*)"
)
_JS_TIMEOUT_OPTION = re.compile(r"\btimeout\s*:\s*(\d[\d_]*)")
_PY_TIMEOUT_MARK = re.compile(r"@pytest\.mark\.timeout\s*\(\s*(?:timeout\s*=\s*)?(\d+(?:\.\d+)?)")
_JUNIT_TIMEOUT_MS = re.compile(r"@Test\s*\(.*\btimeout\s*=\s*(\d[\d_]*)")
_JUNIT_TIMEOUT = re.compile(r"@Timeout\s*\(\s*(?:value\s*=\s*)?(\d+)")
_MODIFIER = re.compile(r"\b(?:private|protected|public|internal|final|static|readonly)\s+")
_TYPE_CAST = re.compile(r"\s+as\s+(?:const|any|unknown|[A-Z][\w.]*(?:<[^<>]*>)?(?:\[\])?)\b")
_STILL_RUNS = re.compile(r"fail|assume|Assum", re.IGNORECASE)
# A line that only tells a linter what to allow: not a change to any test.
_LINT_ONLY = re.compile(
    r"^#!?\[(?:allow|warn|deny|expect)\(|^#!?\[cfg_attr\([^,]*,\s*(?:allow|expect)\(|^@SuppressWarnings\b"
    r"|^//\s*(?:eslint|nolint|@ts-)|^#\s*(?:noqa|type:|pylint:)|^clippy::\w+,?$"
)
AFTER_LINES = 3
GUARD_LINES = 3  # how far above an early return its `if` may be
BEFORE_LINES = 20
# A list of what a test lets pass (allowed imports, skipped or known-failing cases): taking an entry out of it
# makes the test stricter.
_LENIENCY_LIST = re.compile(r"(?i)(?:allow|ignore|skip|exclude|xfail|known_fail|flaky)\w*\s*(?::[^=\n]*)?=")
_LIST_ENTRY = re.compile(r"""^(?:"[^"]*"|'[^']*'|[\w.]+)\s*,?$""")
# The hunk header of a Rust or Java file names the test module or class the change sits in.
_TEST_SECTION_HEADER = re.compile(r"\bmod\s+tests?\b|\bfn\s+test_\w+|\bclass\s+\w*Tests?\b")


def _compact(text: str) -> str:
    """A line with all whitespace removed, for comparing lines whatever their indentation."""
    return "".join(text.split())


def _layout_free(text: str) -> str:
    """Code with what formatters change taken out: whitespace, quote style, trailing commas."""
    return _TRAILING_COMMA.sub("", _compact(text).replace("'", '"'))


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


@dataclass(frozen=True)
class _Line:
    """A changed line of a test file and the block of changes (in its file) it belongs to."""

    block: int
    kind: str
    text: str


@dataclass(frozen=True)
class _Block:
    """A run of changed lines between context lines, and the context of its hunk."""

    removed: list[str]
    added: list[str]
    context: tuple[str, ...]
    header: str
    after: list[str] = field(default_factory=list)  # the unchanged lines right after it
    before: tuple[str, ...] = ()  # the unchanged lines of its hunk before it


def _block(removed: list[str], added: list[str], context: tuple[str, ...], header: str, seen: int) -> _Block:
    """A block of changes that follows the first ``seen`` context lines of its hunk."""
    return _Block(removed, added, context, header, before=context[max(0, seen - BEFORE_LINES) : seen])


def _changed_blocks(file: FileDiff) -> list[_Block]:
    """The file's runs of changed lines (between context lines)."""
    blocks: list[_Block] = []
    for hunk in file.hunks:
        context = tuple(str(line.text) for line in hunk.lines if line.kind == " ")
        removed: list[str] = []
        added: list[str] = []
        after: list[str] | None = None
        seen = 0  # context lines of the hunk so far
        for line in hunk.lines:
            if line.kind == "-":
                removed.append(str(line.text))
            elif line.kind == "+":
                added.append(str(line.text))
            else:
                if removed or added:
                    blocks.append(_block(removed, added, context, str(hunk.header), seen))
                    removed, added = [], []
                    after = blocks[-1].after
                if after is not None and len(after) < AFTER_LINES:
                    after.append(str(line.text))
                seen += 1
        if removed or added:
            blocks.append(_block(removed, added, context, str(hunk.header), seen))
    return blocks


def _first_indent(lines: list[str]) -> int | None:
    return next((_indent(line) for line in lines if line.strip()), None)


def _is_reformatted(removed: list[str], added: list[str], language: Language) -> bool:
    """Whether a block only re-wraps, re-indents or re-quotes the same code (a formatter's work). In Python
    indentation is meaning: a line moved into or out of a block is an edit, not a reformat."""
    if not removed or _layout_free("".join(removed)) != _layout_free("".join(added)):
        return False
    return language.name != "python" or _first_indent(removed) == _first_indent(added)


@dataclass
class _TestChanges:
    """The changed lines of one test file once moved, re-indented and re-wrapped lines are set aside."""

    file: FileDiff
    language: Language
    removed: list[_Line] = field(default_factory=list)
    added: list[_Line] = field(default_factory=list)
    context: set[str] = field(default_factory=set)  # the unchanged lines shown around the changes, compacted
    reindented: list[_Line] = field(default_factory=list)  # Python lines moved into or out of a block
    moved_in: Counter = field(default_factory=Counter)  # added lines that came from elsewhere, by block
    new_tests: Counter = field(default_factory=Counter)  # tests defined afresh, by block
    surroundings: dict[int, tuple[str, ...]] = field(
        default_factory=dict
    )  # hunk header, lines before, by block
    generated: bool = False

    @cached_property
    def added_text(self) -> str:
        """The added lines run together without whitespace, to look an expression up in."""
        return "\n".join(_compact(line.text[:LINE_CHARS]) for line in self.added)


def _is_test_section(block: _Block, language: Language) -> bool:
    return bool(_TEST_SECTION_HEADER.search(block.header)) or any(
        language.holds_tests(text[:LINE_CHARS]) for text in (*block.before, *block.removed, *block.added)
    )


def _product_lines(file: FileDiff) -> list[str]:
    """The changed lines of a product file that are code (not blank, not comments)."""
    language = analyser_for(file.path)
    return [
        str(line.text)
        for hunk in file.hunks
        for line in hunk.lines
        if line.kind in "+-" and str(line.text).strip() and not language.is_comment(str(line.text))
    ]


def _reads_as_test(file: FileDiff) -> bool:
    """A source file outside the test folders whose every change sits in its tests (a Rust `mod tests`,
    a JUnit class): its changes are judged as test code, and it is no product code change."""
    if file.category != "code" or not file.hunks:
        return False
    language = analyser_for(file.path)
    if language.name not in ("rust", "java", "go"):
        return False
    return all(_is_test_section(block, language) for block in _changed_blocks(file))


def _adopts_existing_code(block: _Block, language: Language) -> bool:
    """Whether a test definition added in the block takes the existing lines after it as its body: a test
    split out of another one, not a new test."""
    definition = next((text for text in reversed(block.added) if language.is_definition(text)), None)
    following = next((text for text in block.after if text.strip()), None)
    return definition is not None and following is not None and _indent(following) > _indent(definition)


def _test_changes(files: Sequence[FileDiff], file_head: Callable[[str], str] | None) -> list[_TestChanges]:
    """Changes of every test file of the step, without lines that only moved (within the step, across
    files), were re-indented or were re-wrapped: those weaken nothing."""
    changes: list[_TestChanges] = []
    for file in files:
        if file.category != "test" and not _reads_as_test(file):
            continue
        language = analyser_for(file.path)
        entry = _TestChanges(file=file, language=language)
        entry.generated = file.change != "deleted" and looks_generated(_read_head(file_head, file.path))
        hunks_seen: set[int] = set()
        for index, block in enumerate(_changed_blocks(file)):
            if id(block.context) not in hunks_seen:  # every block of a hunk shares its context
                hunks_seen.add(id(block.context))
                entry.context.update(_compact(text) for text in block.context)
            entry.surroundings[index] = (block.header, *block.before)
            if _is_reformatted(block.removed, block.added, language):
                continue
            removed = [
                _Line(index, "-", text[:LINE_CHARS]) for text in _outside_block_comments(block.removed, language)
            ]
            added = [_Line(index, "+", text[:LINE_CHARS]) for text in _outside_block_comments(block.added, language)]
            if language.name == "python":
                removed, added = _set_aside_reindented(entry, removed, added)
            entry.removed += removed
            entry.added += added
            fresh = sum(map(language.is_definition, block.added)) - sum(
                map(language.is_definition, block.removed)
            )
            if fresh > 0 and not _adopts_existing_code(block, language):
                entry.new_tests[index] = fresh
        changes.append(entry)

    moved = Counter(_layout_free(line.text) for entry in changes for line in entry.removed) & Counter(
        _layout_free(line.text) for entry in changes for line in entry.added
    )
    unmatched_removed, unmatched_added = Counter(moved), Counter(moved)
    for entry in changes:
        entry.removed = [
            line for line in entry.removed if not _take(unmatched_removed, _layout_free(line.text))
        ]
        kept = []
        for line in entry.added:
            if _take(unmatched_added, _layout_free(line.text)):
                if entry.language.is_assertion(line.text):
                    entry.moved_in[line.block] += 1
            else:
                kept.append(line)
        entry.removed = [line for line in entry.removed if line.text.strip()]
        entry.added = [line for line in kept if line.text.strip()]
    return changes


def _outside_block_comments(lines: list[str], language: Language) -> list[str]:
    """The lines that are not inside a `/* … */` comment opened and closed among them (tests kept commented out
    are no tests). Python and Ruby have no such comments."""
    if language.name in ("python", "ruby"):
        return lines
    kept, inside = [], False
    for text in lines:
        stripped = text.strip()
        if inside:
            inside = "*/" not in stripped
            continue
        if stripped.startswith("/*") and "*/" not in stripped:
            inside = True
            continue
        kept.append(text)
    return lines if inside else kept  # a comment left open here may not be one: judge every line


def _set_aside_reindented(
    entry: _TestChanges, removed: list[_Line], added: list[_Line]
) -> tuple[list[_Line], list[_Line]]:
    """Python lines of one block that come back the same but indented differently: moved into or out of a
    `with`, `if` or loop, which changes when they run."""
    by_text: dict[str, dict[int, list[_Line]]] = {}
    for line in added:
        by_text.setdefault(_layout_free(line.text), {}).setdefault(_indent(line.text), []).append(line)
    kept_removed = []
    for line in removed:
        by_indent = by_text.get(_layout_free(line.text), {}) if line.text.strip() else {}
        own = _indent(line.text)
        twins = next((news for indent, news in by_indent.items() if indent != own and news), None)
        if twins is None:
            kept_removed.append(line)
            continue
        twins.pop()
        entry.reindented.append(line)
    remaining = {id(new) for by_indent in by_text.values() for news in by_indent.values() for new in news}
    kept_added = [line for line in added if id(line) in remaining]
    return kept_removed, kept_added


def _take(counter: Counter, key: str) -> bool:
    if counter[key] > 0:
        counter[key] -= 1
        return True
    return False


def _most_similar(text: str, candidates: list[_Line]) -> tuple[_Line | None, float]:
    """The candidate most like ``text`` and how alike they are (0 to 1); the first wins a tie."""
    matcher = SequenceMatcher(None, b=_compact(text)[:SIMILARITY_CHARS], autojunk=False)
    best, best_ratio = None, -1.0
    for candidate in candidates:
        matcher.set_seq1(_compact(candidate.text)[:SIMILARITY_CHARS])
        # quick_ratio() bounds ratio() from above and costs far less: skip what cannot win.
        if matcher.quick_ratio() <= best_ratio:
            continue
        ratio = matcher.ratio()
        if ratio > best_ratio:
            best, best_ratio = candidate, ratio
        if ratio >= GOOD_ENOUGH_MATCH:
            break
    return best, best_ratio


def _pair_replacements(
    removed: list[_Line], added: list[_Line]
) -> tuple[list[tuple[_Line, _Line]], list[_Line]]:
    """Pair each removed check with the added check that most likely replaced it: the most similar one
    in the same block of changes, else a close one elsewhere in the file (an unrelated new check
    elsewhere does not make up for a removed one). Returns the pairs and the removed checks left
    without a replacement."""
    pairs: list[tuple[_Line, _Line]] = []
    unpaired: list[_Line] = []
    available: dict[int, list[_Line]] = {}
    for new in added:
        available.setdefault(new.block, []).append(new)
    for old in removed:
        same_block = available.get(old.block, [])[:PAIRING_CANDIDATES]
        # A plain check (a failure report, a truth test) is replaced by a plain one when the block has one,
        # leaving the precise checks to the precise removed ones they may have loosened.
        if not checks_module.families(old.text):
            same_block = [new for new in same_block if not checks_module.families(new.text)] or same_block
        if same_block:
            best, _ = _most_similar(old.text, same_block)
        else:
            elsewhere = list(islice(chain.from_iterable(available.values()), PAIRING_CANDIDATES))
            best, ratio = _most_similar(old.text, elsewhere)
            best = best if ratio >= CLOSE_ELSEWHERE else None
        if best is None:
            unpaired.append(old)
            continue
        available[best.block].remove(best)
        pairs.append((old, best))
    return pairs, unpaired


# --- the gates -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    contract: Contract
    step: Step
    history: History
    usage: Usage
    file_head: Callable[[str], str] | None
    paths: RepoPaths | None = None


def _category(inputs: _Inputs, path: str) -> str:
    """A path's category under the repository's rules, the built-in tables without them."""
    return inputs.paths.classify(path) if inputs.paths is not None else classify_path(path)


def _with_repository_rules(diff: ParsedDiff, paths: RepoPaths) -> ParsedDiff:
    """The diff's files categorised by the repository's rules (its test, generated and vendored patterns); a
    generated-file marker the diff itself shows still makes a file generated."""
    files = []
    for file in diff.files:
        category = paths.classify(file.path)
        if file.category == "generated" and category not in ("lock", "vendored", "migration"):
            category = "generated"
        files.append(replace(file, category=category) if category != file.category else file)
    return ParsedDiff(files=tuple(files), stats=diff.stats)


def _blast_radius(inputs: _Inputs) -> list[GateFinding]:
    paths = list(dict.fromkeys(file.path for file in inputs.step.diff.files))
    allowed = _limit(inputs.contract, "files_per_step")
    if allowed is None or len(paths) <= allowed:
        return []
    shown = _show_number(allowed)
    return [
        GateFinding(
            gate="blast_radius",
            severity=APPROVAL,
            reason=f"{len(paths)} files in one step (limit {shown}): ask for a plan",
            kind="plan",
            data={"files": len(paths), "allowed": shown, "paths": paths},
        )
    ]


def _read_head(file_head: Callable[[str], str] | None, path: str) -> str:
    """The file's first lines from the repository, "" when there is no reader or it cannot say."""
    if file_head is None or not path:
        return ""
    try:
        head = file_head(path)
    except Exception:  # the reader is the caller's code; a file it cannot read is judged from the diff
        return ""
    if isinstance(head, bytes):
        head = head.decode("utf-8", errors="replace")
    return head if isinstance(head, str) else ""


def _marker_line(file: FileDiff) -> tuple[str, ...]:
    for hunk in file.hunks:
        for line in hunk.lines:
            if looks_generated(str(line.text)):
                return (_quote(line.kind, str(line.text)),)
    return ()


def _copy_roots(inputs: _Inputs) -> list[str]:
    """Another project's roots inside this one (a folder with a CI set-up of its own): their files are a vendored
    copy, unless the repository declares the folder as one of its own workspaces."""
    changed = [path for file in inputs.step.diff.files for path in _file_paths(file)]
    # The diff shows the CI file, or the repository holds one beside an edited file's folders (probed, bounded).
    probed = [probe for probe in project_root_probes(changed) if _read_head(inputs.file_head, probe).strip()]
    return [
        root
        for root in nested_project_roots([*changed, *probed])
        if inputs.paths is None or not inputs.paths.workspaces.matches(root + "/")
    ]


def _is_copy(inputs: _Inputs, file: FileDiff, roots: list[str]) -> bool:
    """Whether the file belongs to a copy of another project: under a nested project's root, or saying so in
    its first lines ("Copied from …")."""
    return (
        any(path.startswith(root + "/") for path in _file_paths(file) for root in roots)
        or looks_copied(head_of(file))
        or (file.change != "deleted" and not file.binary and looks_copied(_read_head(inputs.file_head, file.path)))
    )


def _protected_path(inputs: _Inputs, copies: set[int]) -> list[GateFinding]:
    """``copies`` are the ids of the step's files that belong to a copy of another project (`_is_copy`)."""
    findings = []
    patterns = _strings(inputs.contract.protected_paths)
    for file in inputs.step.diff.files:
        shown = _one_line(file.path, 100)
        matched = next(
            (
                (path, pattern)
                for path in _file_paths(file)
                for pattern in patterns
                if matches_glob(path, pattern)
            ),
            None,
        )
        if matched:
            path, pattern = matched
            findings.append(
                GateFinding(
                    gate="protected_path",
                    severity=STOP,
                    reason=f"Protected path changed: {_one_line(path, 100)} (matches {_one_line(pattern, 60)})",
                    path=file.path,
                    data={"why": "protected", "pattern": pattern},
                )
            )
            continue
        if (
            id(file) in copies
            or file.category == "vendored"
            or any(_category(inputs, path) == "vendored" for path in _file_paths(file))
        ):
            findings.append(
                GateFinding(
                    gate="protected_path",
                    severity=STOP,
                    reason=f"Vendored file changed: {shown} (update the vendored copy from upstream instead)",
                    path=file.path,
                    data={"why": "vendored"},
                )
            )
            continue
        generated_in_diff = file.category == "generated"
        head = ""
        if not generated_in_diff and file.category != "lock" and file.change != "deleted" and not file.binary:
            head = _read_head(inputs.file_head, file.path)
        if generated_in_diff or looks_generated(head):
            marker = next((line for line in head.splitlines() if looks_generated(line)), "")
            findings.append(
                GateFinding(
                    gate="protected_path",
                    severity=STOP,
                    reason=f"Generated file changed: {shown} (regenerate it instead of editing)",
                    path=file.path,
                    lines=_marker_line(file),
                    data={"why": "generated", "marker": _one_line(marker, 200)},
                )
            )
        elif file.category == "lock":
            findings.append(
                GateFinding(
                    gate="protected_path",
                    severity=STOP,
                    reason=f"Lock file changed: {shown} (dependency changes need a person)",
                    path=file.path,
                    data={"why": "lock"},
                )
            )
        elif inputs.paths is not None and any(path in CONFIG_FILES for path in _file_paths(file)):
            findings.append(
                GateFinding(
                    gate="protected_path",
                    severity=INFO,
                    reason=f"Review settings file changed: {shown} (this goal keeps the base commit's rules)",
                    path=file.path,
                    data={"why": "rules_config"},
                )
            )
    return findings


@dataclass
class _Reading:
    """What one test file's changes did: the ways it was weakened, and the lines that edit existing tests."""

    kinds: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    edits: list[_Line] = field(default_factory=list)

    def note(self, kind: str, *lines: _Line) -> None:
        if kind not in self.kinds:
            self.kinds.append(kind)
        for line in lines:
            text = _quote(line.kind, line.text)
            if len(self.quoted) < MAX_QUOTED_LINES and text not in self.quoted:
                self.quoted.append(text)


def _checks_and_expectations(lines: list[_Line], language: Language) -> tuple[list[_Line], list[_Line]]:
    """The assertions among the lines, and the other lines that set an expected value or a tolerance."""
    checks, expectations = [], []
    for line in lines:
        if language.is_assertion(line.text):
            checks.append(line)
        elif not language.is_comment(line.text) and checks_module.is_expectation(line.text):
            expectations.append(line)
    return checks, expectations


def _restated(old: _Line, entry: _TestChanges, added_literals: set[str]) -> bool:
    """Whether a removed check is still made: the identical check stays beside it, or its expected values
    all come back in the added lines (asserts folded into a parametrized table or a loop)."""
    if _compact(old.text) in entry.context:
        return True
    values = [value for value in checks_module.literals(old.text) if value.strip()]
    if values:
        return all(value in added_literals for value in values)
    # A check without literals comes back when each of its compared expressions (not a bare name such as
    # the test's handle) is written again among the added lines: `Equal(t, &T{}, &T{})` folded into a table.
    operands = checks_module.operands(old.text)
    return bool(operands) and all(operand in entry.added_text for operand in operands)


def _tests_the_same(condition: _Line, new: _Line) -> bool:
    """Whether a new check reads every name the removed `if` condition tested (`if got != want {` and
    `Equal(t, want, got)`)."""
    names = set(_NAME.findall(condition.text)) - _CONDITION_WORDS
    return bool(names) and names <= set(_NAME.findall(new.text))


def _judgeable(line: _Line) -> bool:
    """Whether a line names literals or compared expressions that a rewrite would have to restate."""
    return any(value.strip() for value in checks_module.literals(line.text)) or bool(
        checks_module.operands(line.text)
    )


def _reports(entry: _TestChanges, language: Language) -> dict[int, _Line]:
    """Removed checks that only report the failure of the condition on the line just above them (Go's
    `if got != want {` then `t.Errorf(...)`), mapped to that condition: one check written on two lines."""
    found: dict[int, _Line] = {}
    previous: _Line | None = None
    for line in entry.removed:
        if (
            previous is not None
            and previous.block == line.block
            and _CONDITION.match(previous.text.strip())
            and language.is_assertion(line.text)
            and not _CONDITION.match(line.text.strip())
        ):
            found[id(line)] = previous
        previous = line
    return found


def _early_returns(entry: _TestChanges) -> list[_Line]:
    """Added lines that make an existing test return before its checks."""
    found = []
    # The guard may sit a few lines above the return, past a `t.pass()` or a log line.
    recent: list[_Line] = []
    for line in entry.added:
        text = line.text.strip()
        if entry.new_tests[line.block] == 0 and _EARLY_RETURN.match(text):
            guarded = text.startswith("if")
            for earlier in reversed(recent):  # back to the `if`, past no check (a branch that checks is fine)
                if earlier.block != line.block or entry.language.is_assertion(earlier.text):
                    break
                if _EARLY_RETURN_CONDITION.match(earlier.text.strip()):
                    guarded = True
                    break
            if guarded:
                found.append(line)
        recent = [*recent[-(GUARD_LINES - 1) :], line]
    return found


def _new_skips(entry: _TestChanges) -> list[_Line]:
    """Added skip markers that fall on existing tests: not inside a test defined afresh (unless that test is
    made of checks moved out of an existing one), and not a marker that was only rewritten."""
    language = entry.language
    removed_markers = Counter(
        _compact(marker) for line in entry.removed for marker in language.skip_markers(line.text)
    )
    found = []
    for line in entry.added:
        markers = [_compact(marker) for marker in language.skip_markers(line.text)]
        fresh = [marker for marker in markers if not _take(removed_markers, marker)]
        if not fresh:
            continue
        if entry.new_tests[line.block] and not entry.moved_in[line.block]:
            continue
        found.append(line)
    return found


def _retired_tests(entry: _TestChanges) -> set[int]:
    """Removed lines of removed tests that were already switched off: an ignore or skip marker on the test's
    definition or on the annotations around it (`@Ignore`, `#[ignore]`, `@pytest.mark.skip`, `xit`). Such a
    test checked nothing any more; taking it out takes nothing away."""
    language = entry.language
    retired: set[int] = set()
    lines = entry.removed
    removed_definitions = Counter(line.block for line in lines if language.is_definition(line.text))
    added_definitions = Counter(line.block for line in entry.added if language.is_definition(line.text))
    for at, line in enumerate(lines):
        if not language.is_definition(line.text):
            continue
        start, end = at, at + 1
        while start > 0 and lines[start - 1].block == line.block and _ANNOTATION.match(lines[start - 1].text.strip()):
            start -= 1
        while end < len(lines) and lines[end].block == line.block and _ANNOTATION.match(lines[end].text.strip()):
            end += 1
        markers = [marker for index in range(start, end) for marker in language.skip_markers(lines[index].text)]
        if not _switched_off(markers):
            continue
        if removed_definitions[line.block] <= added_definitions[line.block]:
            continue  # the marker was taken off or rewritten: the test stays
        indent = _indent(line.text)
        stop = end
        while (
            stop < len(lines)
            and lines[stop].block == line.block
            and not language.is_definition(lines[stop].text)
            and not (
                _ANNOTATION.match(lines[stop].text.strip())
                and _indent(lines[stop].text) <= indent
                and stop + 1 < len(lines)
                and language.is_definition(lines[stop + 1].text)
            )
        ):
            stop += 1
        retired.update(id(lines[index]) for index in range(start, stop))
    return retired


def _revived_blocks(entry: _TestChanges) -> set[int]:
    """Blocks of changes that take an ignore or skip annotation off a test and put none back."""
    language = entry.language
    skipped_after = {line.block for line in entry.added if language.is_skip(line.text)}
    return {
        line.block
        for line in entry.removed
        if line.block not in skipped_after
        and _ANNOTATION.match(line.text.strip())
        and _switched_off(language.skip_markers(line.text))
    }


def _switched_off(markers: list[str]) -> bool:
    """Whether these markers keep a test from running at all: an xfail, a failing or an assumption marker still
    runs it (and an xfail checks it fails), so a test under one still checks something."""
    return bool(markers) and not any(_STILL_RUNS.search(marker) for marker in markers)


def _read_test_changes(entry: _TestChanges) -> _Reading:
    """How one test file changed: the weakenings, and which lines edit existing tests."""
    reading = _Reading()
    file, language = entry.file, entry.language
    retired = _retired_tests(entry)
    if retired:
        # Still an edit of existing tests, but no weakening: read the rest without them.
        reading.edits += [line for line in entry.removed if id(line) in retired and line.text.strip()]
        entry.removed = [line for line in entry.removed if id(line) not in retired]
    removed_checks, removed_expectations = _checks_and_expectations(entry.removed, language)
    revived = _revived_blocks(entry)
    if revived:
        # A test switched back on in this step checked nothing before: what its body gave up is no loss.
        reading.edits += [line for line in removed_checks + removed_expectations if line.block in revived]
        removed_checks = [line for line in removed_checks if line.block not in revived]
        removed_expectations = [line for line in removed_expectations if line.block not in revived]
    added_checks, added_expectations = _checks_and_expectations(entry.added, language)
    pairs, unpaired = _pair_replacements(removed_checks, added_checks)
    expectation_pairs, _ = _pair_replacements(removed_expectations, added_expectations)
    reports = _reports(entry, language)
    report_of = {id(condition): report for report in entry.removed if (condition := reports.get(id(report)))}
    replaced_well = set()
    for old, new in pairs + expectation_pairs:
        weakening = checks_module.weakening_of(old.text, new.text)
        if weakening:
            reading.note(weakening, old, new)
        # `if !ok {` + `t.Errorf("…")` rewritten as `True(t, ok)`, whichever of the two lines the new check was
        # paired with: the failure message is no expected value.
        condition = reports.get(id(old), old)
        report = report_of.get(id(condition))
        if (
            not weakening
            and report is not None
            and _tests_the_same(condition, new)
            and not checks_module.value_changed(condition.text, new.text)
        ):
            replaced_well.update((id(report), id(condition)))
            continue
        if weakening or checks_module.value_changed(old.text, new.text):
            reading.edits.append(old)
        else:
            replaced_well.add(id(old))
    widened = checks_module.ranges_widened(
        [line.text for line in removed_checks], [line.text for line in added_checks]
    )
    if widened and not reading.kinds:
        reading.note("expected range loosened", *removed_checks[:2], *added_checks[:2])

    # Checks folded into a table need a new check that reads the table.
    added_literals = {
        value
        for line in (entry.added if added_checks else ())
        if not language.is_comment(line.text)
        for value in checks_module.literals(line.text)
    }
    lost = [old for old in unpaired if not _restated(old, entry, added_literals)]
    # A failure report goes with its condition, whatever it was paired with: lost exactly when the
    # condition is (a condition that is no check of its own is lost unless it is restated).
    lost_ids = {id(old) for old in lost}
    unpaired_ids = {id(old) for old in unpaired}
    lost = [old for old in lost if id(old) not in reports]
    for old in removed_checks:
        condition = reports.get(id(old))
        if condition is None:
            continue
        if language.is_assertion(condition.text):
            gone = id(condition) in lost_ids
        elif _judgeable(condition):
            gone = not _restated(condition, entry, added_literals)
        else:  # a bare `if ok {`: nothing to look up, the report stands for the check
            gone = id(old) in unpaired_ids
        if gone and not _restated(old, entry, added_literals):
            lost.append(old)

    if file.change == "deleted":
        if lost or any(language.is_definition(line.text) for line in entry.removed):
            reading.note("test file deleted", *lost)
        reading.edits += [line for line in entry.removed if not _is_trivial(line.text, language)]
        return reading
    if lost:
        reading.note("assertion removed", *lost)
    removed_tests = [line for line in entry.removed if language.is_definition(line.text)]
    added_tests = [line for line in entry.added if language.is_definition(line.text)]
    if len(removed_tests) > len(added_tests):
        reading.note("test removed", *removed_tests[len(added_tests) :])

    for line in entry.added:
        if language.is_focus(line.text):
            reading.note("other tests dropped by .only", line)
    widened = _catches_widened(entry)
    if widened:
        reading.note("exception widened", *widened)
        reading.edits += widened
    slower = _timeouts_loosened(entry)
    if slower:
        reading.note("timeout loosened", *slower)
        reading.edits += slower
    # Skipping part of a brand-new test file takes away nothing that was checked before.
    if file.change != "added":
        skips = _new_skips(entry)
        if skips:
            reading.note("test skipped", *skips)
        returns = _early_returns(entry)
        if returns:
            reading.note("test returns early", *returns)
        reading.edits += skips + returns + entry.reindented
    reading.edits += _edited_lines(entry, replaced_well, added_checks, removed_checks)
    return reading


def _catches_widened(entry: _TestChanges) -> list[_Line]:
    """Added `catch` clauses that let an existing `try` of an existing test pass on one more exception (JUnit's
    `catch (X expected)`): the block adds no `try` and no `fail(` of its own, so the clause widens a check."""
    if entry.language.name != "java" or entry.file.change == "added":
        return []
    by_block: dict[int, list[_Line]] = {}
    for line in entry.added:
        by_block.setdefault(line.block, []).append(line)
    found = []
    for block, lines in by_block.items():
        if entry.new_tests[block]:
            continue
        if any(_TRY.search(line.text) or _FAIL_CALL.search(line.text) for line in lines):
            continue
        removed_catches = [
            set(types) for line in entry.removed if line.block == block and (types := _caught_types(line.text))
        ]
        added_catches = [line for line in lines if _caught_types(line.text)]
        if len(added_catches) > len(removed_catches):
            # An extra clause: it widens when it catches a type no removed clause had (not a renamed variable).
            caught_before = set().union(*removed_catches)
            found += [line for line in added_catches if set(_caught_types(line.text)) - caught_before]
        else:
            # Clauses rewritten one for one (a narrower type, a renamed variable) widen only when one of them
            # now catches what a removed clause did and more (`A` becomes `A | B`).
            found += [
                line
                for line in added_catches
                if any(before < set(_caught_types(line.text)) for before in removed_catches)
            ]
    return found


def _timeout_ms(text: str, language: Language) -> float | None:
    """The time limit a line sets on a test, in milliseconds: a JavaScript test's last argument (`}, 10000);`),
    `this.timeout(…)`, `jest.setTimeout(…)`, a `timeout:` option on a test's own line, pytest's
    `@pytest.mark.timeout(seconds)`, JUnit's `@Timeout(seconds)` or `@Test(timeout = ms)`."""
    stripped = text.strip()
    if language.name == "javascript":
        match = _JS_TEST_TIMEOUT.search(stripped) or (
            language.is_definition(stripped) and _JS_TIMEOUT_OPTION.search(stripped)
        )
        return float(next(group for group in match.groups() if group).replace("_", "")) if match else None
    if language.name == "python":
        match = _PY_TIMEOUT_MARK.search(stripped)
        return float(match.group(1)) * 1000 if match else None
    if language.name == "java":
        if match := _JUNIT_TIMEOUT_MS.search(stripped):
            return float(match.group(1).replace("_", ""))
        if match := _JUNIT_TIMEOUT.search(stripped):
            return float(match.group(1)) * 1000
    return None


def _timeouts_loosened(entry: _TestChanges) -> list[_Line]:
    """Added time limits that give an existing test longer than before: raised, or in JavaScript set above the
    runners' default of five seconds where the test had none."""
    if entry.file.change == "added":
        return []
    language = entry.language
    before: dict[int, list[float]] = {}
    for line in entry.removed:
        if (limit := _timeout_ms(line.text, language)) is not None:
            before.setdefault(line.block, []).append(limit)
    found = []
    for line in entry.added:
        limit = _timeout_ms(line.text, language)
        if limit is None or (entry.new_tests[line.block] and not entry.moved_in[line.block]):
            continue
        earlier = before.get(line.block)
        if earlier:
            if limit > max(earlier):
                found.append(line)
        elif language.name == "javascript" and limit > JS_DEFAULT_TIMEOUT_MS:
            found.append(line)
    return found


def _caught_types(text: str) -> list[str]:
    """The exception types a `catch (A | B name)` clause names; none for another line."""
    match = _CATCH.match(text.strip())
    if match is None:
        return []
    clause = text.strip()[match.end() :].split(")", 1)[0]
    return [part.split()[0] for part in clause.split("|") if part.split()]


def _in_leniency_list(entry: _TestChanges, block: int, known: dict[int, bool]) -> bool:
    """Whether the block sits in a list of what a test lets pass (asked once per block)."""
    if block not in known:
        surroundings = entry.surroundings.get(block, ())
        known[block] = any(_LENIENCY_LIST.search(text[:LINE_CHARS]) for text in surroundings)
    return known[block]


def _edited_lines(
    entry: _TestChanges, replaced_well: set[int], added_checks: list[_Line], removed_checks: list[_Line]
) -> list[_Line]:
    """Removed lines that change what an existing test does. Not an edit: comments, imports, a removed skip
    marker, a test renamed in place, a bare expression that gains its `assert`, a check replaced by one as
    strong; and when the file gains more checks than it loses, the lines around them (a strengthening)."""
    language = entry.language
    renamed_definitions = min(
        sum(1 for line in entry.removed if language.is_definition(line.text)),
        sum(1 for line in entry.added if language.is_definition(line.text)),
    )
    added_checks_by_block: dict[int, list[str]] = {}
    for check in added_checks:
        added_checks_by_block.setdefault(check.block, []).append(_compact(check.text))
    # The `if` of an imperative skip taken out with it (`if old_python:` + `pytest.xfail(...)`) goes with it.
    guards = {
        id(line)
        for line, following in zip(entry.removed, entry.removed[1:], strict=False)
        if line.block == following.block
        and _EARLY_RETURN_CONDITION.match(line.text.strip())
        and language.is_skip(following.text)
    }
    # A line that only gains or loses a modifier or a type cast (`private`, `final`, `as any`) does the same.
    declared: dict[int, set[str]] = {}
    for added in entry.added:
        declared.setdefault(added.block, set()).add(_without_declarations(added.text))
    edits = []
    lenient: dict[int, bool] = {}
    for line in entry.removed:
        text = line.text
        if id(line) in guards or _without_declarations(text) in declared.get(line.block, ()):
            continue
        if _is_trivial(text, language):
            continue
        if _LINT_ONLY.search(text.strip()):
            continue
        if language.is_skip(text) or id(line) in replaced_well:
            continue
        if renamed_definitions and language.is_definition(text):
            renamed_definitions -= 1
            continue
        if any(_compact(text) in added for added in added_checks_by_block.get(line.block, ())):
            continue
        if _LIST_ENTRY.match(text.strip()) and _in_leniency_list(entry, line.block, lenient):
            continue
        edits.append(line)
    if (
        edits
        and len(added_checks) > len(removed_checks)
        and all(id(line) in replaced_well or not language.is_assertion(line.text) for line in edits)
    ):
        return []
    return edits


def _without_declarations(text: str) -> str:
    """The line without access modifiers and type casts, whitespace removed."""
    return _compact(_TYPE_CAST.sub("", _MODIFIER.sub("", text)))


def _is_trivial(text: str, language: Language) -> bool:
    """A line whose removal changes no test: a comment, a bracket, an import or the file's package name."""
    return (
        language.is_comment(text)
        or _compact(text) in _TRIVIAL_LINES
        or language.is_import(text)
        or bool(_PACKAGE.match(text.strip()))
    )


def _lines_of(reading: _Reading) -> list[_Line]:
    return [_Line(0, quoted[:1], quoted[1:]) for quoted in reading.quoted]


def _tests_without_code(inputs: _Inputs, readings: list[tuple[_TestChanges, _Reading]]) -> list[GateFinding]:
    as_tests = {id(entry.file) for entry, _ in readings}
    if any(
        file.category == "code" and id(file) not in as_tests and _product_lines(file)
        for file in inputs.step.diff.files
    ):
        return []
    # New tests and new assertions are welcome on their own; it is editing or deleting existing tests
    # while no code changes that can turn a red check green without fixing anything.
    changed = [
        (entry, reading.edits or _lines_of(reading))
        for entry, reading in readings
        if (reading.edits or reading.kinds) and not entry.generated
    ]
    if not changed:
        return []
    paths = [entry.file.path for entry, _ in changed]
    quoted = [_quote(line.kind, line.text) for _, edits in changed for line in edits]
    return [
        GateFinding(
            gate="tests_without_code",
            severity=APPROVAL,
            reason=f"Tests changed without product code: {_paths_phrase(paths)}",
            path=paths[0] if len(paths) == 1 else None,
            lines=tuple(dict.fromkeys(quoted))[:MAX_QUOTED_LINES],
            data={"paths": paths},
        )
    ]


def _tests_weakened(inputs: _Inputs, readings: list[tuple[_TestChanges, _Reading]]) -> list[GateFinding]:
    findings = []
    for entry, reading in readings:
        # A generated test file (its header says so) follows its generator; it is no one's weakening.
        if reading.kinds and not entry.generated:
            findings.append(
                GateFinding(
                    gate="tests_weakened",
                    severity=APPROVAL,
                    reason=f"Tests weakened in {_one_line(entry.file.path, 80)}: {', '.join(reading.kinds)}",
                    path=entry.file.path,
                    lines=tuple(reading.quoted[:MAX_QUOTED_LINES]),
                    data={"kinds": reading.kinds},
                )
            )
    for file in inputs.step.diff.files:
        left_the_tests = file.category != "test" and _category(inputs, file.old_path or "") == "test"
        if file.change == "renamed" and left_the_tests:
            findings.append(
                GateFinding(
                    gate="tests_weakened",
                    severity=APPROVAL,
                    reason=f"Test file moved out of the tests: {_one_line(file.old_path, 60)} → "
                    f"{_one_line(file.path, 60)}",
                    path=file.path,
                    data={"kinds": ["test file moved out of the tests"]},
                )
            )
    return findings


def _repeated_threshold(contract: Contract) -> int:
    threshold = contract.repeated_failure_threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        return DEFAULT_REPEATED_FAILURE_THRESHOLD
    return threshold


def failure_streak(signatures: Iterable[str | None]) -> int:
    """How many times in a row the last failure happened (0 when the last attempt passed): the one count of a
    failure streak, for the repeated-failure gate, the retries budget and the loop's failed steps."""
    ordered = tuple(signatures)
    if not ordered or not ordered[-1]:
        return 0
    count = 0
    for signature in reversed(ordered):
        if signature != ordered[-1]:
            break
        count += 1
    return count


def _streak(signature: str, history: History) -> int:
    """How many times in a row the failure has happened, this step included."""
    return failure_streak((*history.failure_signatures, signature))


def _repeated_failure(inputs: _Inputs, signature: str | None) -> list[GateFinding]:
    if signature is None:
        return []
    threshold = _repeated_threshold(inputs.contract)
    streak = _streak(signature, inputs.history)
    if streak < threshold:
        return []
    earlier = len(tuple(inputs.history.failure_signatures))
    summaries = tuple(inputs.history.attempts)
    attempts = [
        _one_line(summaries[index], REASON_LIMIT) if index < len(summaries) else ""
        for index in range(earlier - (streak - 1), earlier)
    ]
    attempts.append(f"this step: {inputs.step.diff.summary_line()}")
    return [
        GateFinding(
            gate="repeated_failure",
            severity=APPROVAL,
            reason=_one_line(f"Same failure {streak} times: {failure_message(inputs.step.evidence) or signature}"),
            data={"signature": signature, "count": streak, "attempts": attempts},
        )
    ]


def _follow_up(inputs: _Inputs) -> list[GateFinding]:
    findings = []
    objective = _one_line(inputs.contract.objective, 200)
    for bug in _strings(inputs.step.reported_bugs):
        bug_text = _one_line(bug, 500)
        findings.append(
            GateFinding(
                gate="follow_up",
                severity=APPROVAL,
                reason=_one_line(f"Separate bug reported: {bug_text} (propose a follow-up goal)"),
                kind="follow_up",
                data={"draft": {"title": _one_line(bug_text, 80), "objective": bug_text, "paths": []}},
            )
        )
    scope = _strings(inputs.contract.scope_paths)
    if scope:
        outside = [
            file.path
            for file in inputs.step.diff.files
            if not all(any(matches_glob(path, pattern) for pattern in scope) for path in _file_paths(file))
        ]
        if outside:
            draft_objective = f"Land the changes to {_paths_phrase(outside, 5)} on their own branch"
            if objective:
                draft_objective += f"; they were made outside the scope of: {objective}"
            findings.append(
                GateFinding(
                    gate="follow_up",
                    severity=APPROVAL,
                    reason=f"{_count(len(outside), 'file', 'files')} outside the goal's scope: "
                    f"{_paths_phrase(outside)} (propose a follow-up goal)",
                    path=outside[0] if len(outside) == 1 else None,
                    kind="follow_up",
                    data={
                        "draft": {
                            "title": _one_line(f"Follow-up: changes to {_paths_phrase(outside)}", 80),
                            "objective": draft_objective,
                            "paths": outside,
                        }
                    },
                )
            )
    return findings


def _budget_used(inputs: _Inputs, name: str, signature: str | None) -> float | None:
    usage, history = inputs.usage, inputs.history
    if name == "files_total":
        touched = {str(path) for path in history.touched_paths if path}
        touched |= {file.path for file in inputs.step.diff.files if file.path}
        return max(_number(usage.files_total) or 0, len(touched))
    if name == "retries":
        # Retries of the failure the goal is stuck on: its occurrences in a row, this one included, minus the
        # first. A streak of K asks a person first (repeated_failure), so the budget only stops after that.
        retries = _streak(signature, history) - 1 if signature is not None else 0
        return max(_number(usage.retries) or 0, retries)
    return _number(getattr(usage, name, None))


def _budget(inputs: _Inputs, signature: str | None) -> list[GateFinding]:
    findings = []
    for name in WATCHED_BUDGETS:
        allowed = _limit(inputs.contract, name)
        used = _budget_used(inputs, name, signature)
        if allowed is None or used is None or used < allowed:
            continue
        findings.append(budget_finding(name, used, allowed))
    return findings


def budget_used_up(name: str, used: float, allowed: float) -> str:
    """The one sentence for a budget used up, e.g. "Budget used up: 20 of 20 steps."."""
    return f"Budget used up: {_show_number(used)} of {_show_number(allowed)} {BUDGET_LABELS[name]}."


def budget_finding(name: str, used: float, allowed: float) -> GateFinding:
    """The stop a used-up budget makes, whoever drives the goal and whenever it is found."""
    return GateFinding(
        gate="budget",
        severity=STOP,
        reason=f"{budget_used_up(name, used, allowed)} Extend it or end the goal.",
        kind="budget",
        data={"budget": name, "used": _show_number(used), "allowed": _show_number(allowed)},
    )


def _risk(inputs: _Inputs) -> list[GateFinding]:
    if inputs.contract.effective_risk != "high":
        return []
    return [
        GateFinding(
            gate="risk",
            severity=APPROVAL,
            reason="High-risk goal: every step is reviewed",
            data={"risk": "high"},
        )
    ]


def run_gates(
    contract: Contract,
    step: Step,
    history: History = History(),  # frozen, so one shared default is safe
    usage: Usage = Usage(),
    file_head: Callable[[str], str] | None = None,
    *,
    paths: RepoPaths | None = None,
) -> list[GateFinding]:
    """Run every gate on one step; the findings come most serious first, then in gate order.

    ``file_head(path)`` returns the first lines of a file in the repository, so a file that declares
    itself generated is caught even when the diff does not show its header; without it the gates judge
    from the diff alone (context lines included).

    ``paths`` are the repository's effective path rules (goals/repopaths.py: its test, generated and vendored
    patterns, detected from the base commit or set by staff); without them the built-in tables of
    goals/diffs.py decide what is a test, generated or vendored. With them, a step that edits one of the files
    they are detected from is noted (info): the goal keeps the base commit's rules.
    """
    if paths is not None:
        step = replace(step, diff=_with_repository_rules(step.diff, paths))
    inputs = _Inputs(contract, step, history, usage, file_head, paths)
    signature = failure_signature(step.evidence)
    roots = _copy_roots(inputs)
    copies = {id(file) for file in step.diff.files if _is_copy(inputs, file, roots)}  # reads each head once
    # The tests of a vendored copy are its upstream's, not this project's: they follow the copy.
    own = [file for file in step.diff.files if file.category != "vendored" and id(file) not in copies]
    readings = [(entry, _read_test_changes(entry)) for entry in _test_changes(own, file_head)]
    findings = [
        *_blast_radius(inputs),
        *_protected_path(inputs, copies),
        *_tests_without_code(inputs, readings),
        *_tests_weakened(inputs, readings),
        *_repeated_failure(inputs, signature),
        *_follow_up(inputs),
        *_budget(inputs, signature),
        *_risk(inputs),
    ]
    return sorted(findings, key=lambda finding: _severity_rank(finding.severity))


def _severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def highest_severity(findings: Iterable[GateFinding]) -> str:
    """The most serious severity among the findings: "stop" > "approval" > "info" ("info" for none)."""
    ranks = [_severity_rank(finding.severity) for finding in findings]
    best = min(ranks, default=SEVERITIES.index(INFO))
    return SEVERITIES[min(best, SEVERITIES.index(INFO))]


def request_kind(findings: Iterable[GateFinding]) -> str | None:
    """The approval request the findings ask for (budget > plan > follow_up > step), None when nothing
    is above info."""
    kinds = [finding.kind for finding in findings if finding.severity in (STOP, APPROVAL)]
    if not kinds:
        return None
    return min(kinds, key=_request_rank)


def _request_rank(kind: str) -> int:
    return REQUEST_KINDS.index(kind) if kind in REQUEST_KINDS else len(REQUEST_KINDS)

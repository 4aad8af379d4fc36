"""The goal linter: checks a goal contract and says, rule by rule, what keeps it from being narrow.

Pure Python on purpose (no Django, no ORM) so that forms, the JSON API and agents can all share it.
Every heuristic is a regular expression compiled once below; windows are bounded so that no input,
however long or hostile, can make the linter backtrack for long.
"""

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

BLOCKING = "blocking"
ADVICE = "advice"

BUDGET_NAMES = ("minutes", "steps", "tokens", "files_per_step", "files_total", "approvals", "retries")
DEFAULT_BUDGETS = {
    "minutes": 120,
    "steps": 20,
    "tokens": 2_000_000,
    "files_per_step": 5,
    "files_total": 50,
    "approvals": 10,
    "retries": 3,
}
BUDGET_LABELS = {
    "minutes": "wall-clock minutes",
    "steps": "steps",
    "tokens": "tokens",
    "files_per_step": "files per step",
    "files_total": "files in total",
    "approvals": "approvals",
    "retries": "retries of the same failure",
}

WORK_TYPE_RISK = {
    "docs": "low",
    "test_repair": "medium",
    "ui_refactor": "medium",
    "auth_billing": "high",
    "migration": "high",
    "other": "medium",
}
# The repeated-failure gate asks a human at the K-th occurrence of one failure; the retries budget (3 retries,
# so 4 occurrences) runs out only after that.
DEFAULT_REPEATED_FAILURE_THRESHOLD = 3
RISK_ORDER = ("low", "medium", "high")

RULE_SEVERITIES = {
    "objective_missing": (BLOCKING,),
    "objective_too_wide": (BLOCKING,),
    "objective_no_target": (BLOCKING,),
    "vague_verb": (BLOCKING, ADVICE),
    "multiple_objectives": (ADVICE,),
    "constraints_missing": (BLOCKING,),
    "evidence_missing": (BLOCKING,),
    "evidence_not_a_command": (BLOCKING,),
    "evidence_generic": (ADVICE,),
    "budget_unbounded": (BLOCKING,),
    "rollback_missing": (BLOCKING,),
    "done_criteria_missing": (ADVICE,),
}
RULE_IDS = tuple(RULE_SEVERITIES)


# --- Evidence checks --------------------------------------------------------------------------------------

KNOWN_TOOLS = frozenset(
    {
        "pytest",
        "py.test",
        "python",
        "python3",
        "pip",
        "pip3",
        "npm",
        "npx",
        "yarn",
        "pnpm",
        "node",
        "make",
        "go",
        "cargo",
        "rustc",
        "mvn",
        "./mvnw",
        "gradle",
        "./gradlew",
        "gradlew",
        "bash",
        "sh",
        "zsh",
        "tox",
        "nox",
        "uv",
        "uvx",
        "poetry",
        "pipenv",
        "hatch",
        "pdm",
        "coverage",
        "ruff",
        "mypy",
        "pyright",
        "flake8",
        "pylint",
        "black",
        "isort",
        "eslint",
        "prettier",
        "tsc",
        "jest",
        "vitest",
        "mocha",
        "playwright",
        "cypress",
        "curl",
        "wget",
        "deno",
        "bun",
        "dotnet",
        "php",
        "phpunit",
        "composer",
        "bundle",
        "rake",
        "rspec",
        "rails",
        "ruby",
        "mix",
        "elixir",
        "git",
        "docker",
        "docker-compose",
        "kubectl",
        "helm",
        "terraform",
        "k6",
        "wrk",
        "ab",
        "lighthouse",
        "hyperfine",
        "django-admin",
        "./manage.py",
        "manage.py",
        "java",
        "javac",
        "swift",
        "xcodebuild",
        "flutter",
        "dart",
        "cmake",
        "ctest",
        "bazel",
        "grep",
        "rg",
        "diff",
        "jq",
        "sqlite3",
        "psql",
        "time",
    }
)
# Tools that are also English words: "make sure the page loads" is prose, "make test" is a command.
_WORDS_THAT_MAKE_A_TOOL_NAME_PROSE = frozenset(
    {
        "sure",
        "certain",
        "the",
        "a",
        "an",
        "it",
        "this",
        "that",
        "these",
        "those",
        "to",
        "through",
        "back",
        "ahead",
        "over",
        "sense",
        "everything",
        "something",
        "nothing",
        "and",
        "or",
        "with",
        "of",
        "is",
        "are",
        "was",
        "be",
        "if",
        "when",
        "on",
        "in",
        "at",
        "for",
        "from",
        "more",
        "less",
    }
)

_RUN_PREFIX = re.compile(r"^(?:run|execute)\b\s*:?\s*", re.IGNORECASE)
_WHOLLY_IN_BACKTICKS = re.compile(r"^(`{1,3})([^`]+)\1$")
_PROMPT_PREFIX = re.compile(r"^\$\s+")
_ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
_PATH_LIKE = re.compile(r"^(?:\./|\.\./|/|~/)|^[\w.-]+/[\w./-]*$|^[\w.-]+\.(?:sh|py|js|ts|rb|pl)$")
_SENTENCE_END = re.compile(r"[A-Za-z)]\.$")


def _looks_like_command(text: str) -> bool:
    tokens = text.split()
    while tokens and _ENV_ASSIGNMENT.match(tokens[0]):
        tokens = tokens[1:]
    if not tokens:
        return False
    first = tokens[0]
    if first in KNOWN_TOOLS:
        second = tokens[1].lower() if len(tokens) > 1 else ""
        return second not in _WORDS_THAT_MAKE_A_TOOL_NAME_PROSE
    return bool(_PATH_LIKE.match(first))


# Anything shell-shaped (a flag, a path, an assignment, a pipe, a quote, a digit) means the text is not plain prose.
_SHELL_SYNTAX = re.compile(r"[-/=$|&<>;`'\"\\:*~@%(){}\[\]#]|\d|\.\w")
_PROSE_WORDS = frozenset(
    {
        *_WORDS_THAT_MAKE_A_TOOL_NAME_PROSE,
        "sure", "works", "work", "working", "then", "still", "properly", "correctly", "fine",
        "looks", "see", "whether", "all", "we", "you", "i", "our", "my", "can", "will", "does", "do",
        "should", "must", "no", "not", "any", "pass", "passes", "passing", "green", "loads", "page",
        "manually", "again", "nothing", "broken", "breaks",
    }
)  # fmt: skip


def reads_as_prose(command: str) -> bool:
    """True when text given as a command is an English sentence ("run the tests and check it works")."""
    words = command.strip().rstrip(".!").lower().split()
    if len(words) < 2:
        return False
    if words[0] in KNOWN_TOOLS:
        return words[1] in _WORDS_THAT_MAKE_A_TOOL_NAME_PROSE
    if _SHELL_SYNTAX.search(command.strip().rstrip(".!")):
        return False
    return any(word in _PROSE_WORDS for word in words)


@dataclass(frozen=True)
class EvidenceCheck:
    """One way to prove the objective: a shell command run in the repository, or a manual check."""

    kind: str
    command: str = ""
    expect_exit: int = 0
    description: str = ""

    @property
    def runnable(self) -> bool:
        """True for a command check that actually has a command to run."""
        return self.kind == "command" and bool(self.command.strip())

    @classmethod
    def from_text(cls, text: str) -> "EvidenceCheck":
        """Turn free text into a check: a shell command (backticks and a "run" prefix unwrapped) or prose."""
        stripped = text.strip()
        wrapped = _WHOLLY_IN_BACKTICKS.match(stripped)
        if wrapped and wrapped.group(2).strip():
            return cls(kind="command", command=wrapped.group(2).strip())
        candidate = _RUN_PREFIX.sub("", stripped, count=1)
        wrapped = _WHOLLY_IN_BACKTICKS.match(candidate)
        if wrapped and wrapped.group(2).strip():
            return cls(kind="command", command=wrapped.group(2).strip())
        candidate = _PROMPT_PREFIX.sub("", candidate, count=1)
        if _looks_like_command(candidate):
            if _SENTENCE_END.search(candidate):
                candidate = candidate[:-1]
            return cls(kind="command", command=candidate)
        return cls(kind="manual", description=stripped)


# --- Contract and findings --------------------------------------------------------------------------------


def minimum_risk(work_type: str) -> str:
    """The lowest risk a goal of this work type may carry; unknown types count as "other"."""
    return WORK_TYPE_RISK.get(work_type, WORK_TYPE_RISK["other"])


@dataclass(frozen=True)
class Contract:
    """What the agent is held to: objective, constraints, evidence, done criteria, risk and budgets."""

    objective: str = ""
    constraints: tuple[str, ...] = ()
    evidence: tuple[EvidenceCheck, ...] = ()
    done_criteria: str = ""
    work_type: str = "other"
    risk: str = ""
    rollback_note: str = ""
    budgets: dict[str, int | None] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    protected_paths: tuple[str, ...] = ()  # globs the agent must never edit
    scope_paths: tuple[str, ...] = ()  # the goal's declared area (globs); empty means the whole repository
    repeated_failure_threshold: int = DEFAULT_REPEATED_FAILURE_THRESHOLD

    @property
    def effective_risk(self) -> str:
        """The declared risk, raised to the work type's risk when declared lower (or not at all)."""
        table_risk = minimum_risk(self.work_type)
        if self.risk in RISK_ORDER and RISK_ORDER.index(self.risk) > RISK_ORDER.index(table_risk):
            return self.risk
        return table_risk

    def budget(self, name: str) -> int | None:
        """The budget's value, falling back to its default when the key is missing."""
        return self.budgets.get(name, DEFAULT_BUDGETS[name])


@dataclass(frozen=True)
class Finding:
    """One thing the linter found: which rule, how serious, and a one-line fix for the user."""

    rule: str
    severity: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The finding as JSON-ready data."""
        return {"rule": self.rule, "severity": self.severity, "message": self.message}


def is_ready(findings: Iterable[Finding | Mapping[str, str]]) -> bool:
    """True when no finding blocks the goal (findings may also be given as their `as_dict` form)."""
    for finding in findings:
        severity = finding.get("severity") if isinstance(finding, Mapping) else finding.severity
        if severity == BLOCKING:
            return False
    return True


# --- Objective heuristics ---------------------------------------------------------------------------------
#
# A finish line is one of four things an engineer would accept as "done": a number with a unit, an end state,
# expected versus actual, or a named check. A quoted word, a bare number or a file path is not one by itself.

# A bounded stretch of one clause: never crosses a line, a semicolon or a sentence end ("1.5s" and
# "views.py" keep their dots because the dot is not followed by a space).
_CLAUSE = r"(?:[^\n.;!?]|\.(?=\S)){0,160}?"
_SHORT_CLAUSE = r"(?:[^\n.;!?]|\.(?=\S)){0,60}?"

# Put in front of an alternation of words: positions that do not start a word fail at once, which keeps a
# long hostile objective (digits, dots, slashes) fast.
_AT_A_WORD = r"(?=[^\W\d_])"

_NUMBER = r"\d{1,15}(?:[.,_]\d{1,15}){0,4}"
_UNIT = (
    r"(?:%|percent|per\s*cent|x|ms|msecs?|milliseconds?|µs|us|ns|s|secs?|seconds?|m|mins?|minutes?|h|hrs?"
    r"|hours?|days?|b|bytes?|kb|kib|mb|mib|gb|gib|k|fps|rps|qps|req/s|requests?|queries|query|errors?"
    r"|warnings?|failures?|lines?|loc|calls?|round[- ]?trips?|points?|pts|px|items?|rows?|records?"
    r"|retries|steps?|files?|dependencies|deps|issues?|violations?|allocations?|renders?|re-renders?"
    r"|connections?|users?|score|times|runs?|attempts?)"
)
# "under 5", "at most 3": a comparison makes a bare number a bound. "to 3" and "by 3" only do after a verb
# that changes an amount ("raise requires-python to 3.9"), never after "fix bug 12 by 5".
_BOUND = (
    r"(?:below|under|above|over|at\s+most|at\s+least|less\s+than|fewer\s+than|more\s+than|greater\s+than"
    r"|no\s+more\s+than|within|exactly|max(?:imum)?|min(?:imum)?|<=?|>=?|≤|≥|==?)"
)
_AMOUNT_VERB = (
    r"(?:reduc|rais|increas|lower|cut|bring|brought|shrink|shrank|grow|set|limit|cap|decreas|drop|trim|speed"
    r"|keep|get|pin)\w*"
)
_NUMBER_TARGET = re.compile(
    rf"(?<![\w.]){_NUMBER}\s*{_UNIT}(?!\w)"
    rf"|(?<![\w<>=≤≥]){_BOUND}\s*{_NUMBER}(?![\w.]|\.\d)"
    rf"|\b{_AT_A_WORD}{_AMOUNT_VERB}\s+{_SHORT_CLAUSE}\s(?:to|by)\s+{_NUMBER}(?![\w.]|\.\d)"
    r"|\bexactly\s+(?:once|twice)\b"
    # "twice as fast", "3x faster", "half the memory": a ratio to today is a bound.
    r"|\b(?:twice|thrice|half|\d{1,4}(?:\.\d{1,3})?\s*(?:x|times))\s+(?:as\s+|the\s+)?"
    r"(?:fast|quick|small|large|big|many|much|faster|quicker|smaller|fewer|less|more|slower|memory|time|size)\b"
    r"|\b(?:HTTP|status(?:\s+code)?)\s+[1-5]\d\d\b"
    r"|\b(?:return|answer|respond)(?:s|ing)?\s+(?:with\s+)?(?:an?\s+|HTTP\s+)?[1-5]\d\d\b"
    r"|\bexit(?:s|ing)?\s+(?:with\s+)?(?:code\s+|status\s+)?\d{1,3}\b",
    re.IGNORECASE,
)

_CODE_EXTENSIONS = (
    r"(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|go|rs|java|kt|kts|rb|php|cs|cpp|cc|hpp|c|h|swift|scala|ex|exs"
    r"|erl|sql|html|htm|css|scss|sass|less|vue|svelte|yml|yaml|json|toml|ini|cfg|sh|md|rst|txt|csv|xml)"
)

_NOT_NEGATED = r"(?<!not\s)(?<!n't\s)(?<!never\s)(?<!no\s)(?<!without\s)"


# "Split models.py into smaller files": a comparative or a count word names no place to end up in.
_VAGUE_TARGET = (
    r"(?!(?:smaller|bigger|better|cleaner|simpler|nicer|more|fewer|several|multiple|some|various|separate|"
    r"different|other|new|modern)\b)"
)


def _verb_then_preposition(verbs: str, prepositions: str) -> str:
    return rf"(?:{verbs})\s+(?:{_CLAUSE}\s)?(?:{prepositions})\s+{_VAGUE_TARGET}[\w/.`'\"]"


_END_STATE = re.compile(
    rf"\b{_AT_A_WORD}{_NOT_NEGATED}(?:"
    + "|".join(
        (
            _verb_then_preposition(r"move[sd]?|moving", r"to|into|onto|under|out\s+of"),
            _verb_then_preposition(r"replac(?:e|es|ed|ing)", r"with|by"),
            _verb_then_preposition(r"renam(?:e|es|ed|ing)", r"to|as"),
            _verb_then_preposition(r"migrat(?:e|es|ed|ing)", r"to|onto|into"),
            _verb_then_preposition(r"upgrad(?:e|es|ed|ing)|downgrad(?:e|es|ed|ing)|bump(?:s|ed|ing)?", r"to"),
            _verb_then_preposition(r"convert(?:s|ed|ing)?", r"to|into"),
            _verb_then_preposition(r"extract(?:s|ed|ing)?", r"into|to|as"),
            _verb_then_preposition(r"split(?:s|ting)?", r"into|in\s+two|in\s+half"),
            _verb_then_preposition(r"port(?:s|ed|ing)?", r"to|onto"),
            _verb_then_preposition(r"switch(?:es|ed|ing)?", r"to"),
            _verb_then_preposition(r"stop(?:s|ped|ping)?|prevent(?:s|ed|ing)?|keep(?:s|ing)?", r"from"),
            r"instead\s+of\s+[\w`'\"]|rather\s+than\s+[\w`'\"]",
            _verb_then_preposition(r"deprecat(?:e|es|ed|ing)", r"in\s+favou?r\s+of"),
            # "Add a Troubleshooting section to docs/install.md": the named page holds it when done ("add type
            # hints to views.py" says not how many, so only a documentation page counts).
            rf"(?:add|writ|document)(?:e|es|ed|s|ing)?\s+{_CLAUSE}\s(?:to|in|into)\s+[`'\"]?[\w.-]*/?[\w./-]*\w"
            r"\.(?:md|rst|txt|adoc)\b",
            # "… with `pip-compile --upgrade requirements/dev.in`": the way there is a named command.
            rf"(?:updat|regenerat|recompil|rebuild|reformat|upgrad)\w*\s+{_CLAUSE}"
            r"\b(?:with|using|by\s+running)\s+`[^`\n]{2,200}`",
            # "Add docs/export.md describing …": the named file exists when done.
            rf"(?:add|creat|writ)(?:e|es|ed|s|ing)?\s+(?:(?:an?|the|new)\s+)*(?:file\s+)?[`'\"]?[\w.-]*/?[\w./-]*\w\.{_CODE_EXTENSIONS}\b",
            r"(?:remove[sd]?|delete[sd]?|(?<!-)(?<!and\s)(?<!&\s)drop(?:s|ped)?|restor(?:e|es|ed|ing))"
            r"\s+(?:the\s+)?\S",
        )
    )
    + ")",
    re.IGNORECASE,
)

# Expected versus actual: what happens today ("raises KeyError", "returns 99 rows") and what should happen
# instead ("expected …", "it should …", "instead of …"), or "should be X but is Y".
_ACTUAL = (
    r"(?:rais(?:e|es|ed|ing)|throw(?:s|n)?|threw|return(?:s|ed|ing)?|crash(?:es|ed)?|exit(?:s|ed)?"
    r"|fail(?:s|ed)?|hang(?:s)?|hung|time(?:s|d)?\s+out|panic(?:s|ked)?|error(?:s|ed)?|show(?:s|ed|n)?"
    r"|print(?:s|ed)?|display(?:s|ed)?|give(?:s|n)?|gave|yield(?:s|ed)?|produc(?:e|es|ed)|emit(?:s|ted)?"
    r"|send(?:s)?|sent|log(?:s|ged)?|leak(?:s|ed)?|grow(?:s|n)?|grew|reject(?:s|ed)?|accept(?:s|ed)?"
    r"|ignor(?:e|es|ed)|lose(?:s)?|lost|segfault(?:s|ed)?|report(?:s|ed)?|render(?:s|ed)?|duplicat(?:es|ed)"
    r"|skip(?:s|ped)|drop(?:s|ped)|hit(?:s)?|responds?|responded|answer(?:s|ed)?|reads?|writes?|wrote"
    r"|takes?|took|freez(?:es|ed)|froze|loops?|retr(?:ies|ied)|overflows?|truncat(?:es|ed)|creat(?:es|ed)"
    r"|open(?:s|ed)|allow(?:s|ed)|lets|delet(?:es|ed)|overwrit(?:es|ten)|sav(?:es|ed)|load(?:s|ed)|breaks|broke"
    r"|us(?:es|ed)|stor(?:es|ed)|count(?:s|ed)|match(?:es|ed)|sort(?:s|ed)|keeps|kept|miss(?:es|ed)|fir(?:es|ed)"
    r"|call(?:s|ed)|charg(?:es|ed)|redirect(?:s|ed)|generat(?:es|ed)|includ(?:es|ed)|contains|omit(?:s|ted))"
)
_EXPECTED = r"(?:expected|expecting|should|must|instead(?:\s+of)?|rather\s+than|but\s+(?:it\s+)?(?:should|must))"
# What follows "should" must itself say something: "it should work" is a wish, not an expected result.
_WISH = (
    r"(?:(?:to\s+)?(?:work|be\s+(?:fixed|better|faster|fine|ok|good|correct|working|improved|nicer|cleaner|prettier"
    r"|simpler|easier|clearer|friendlier|smoother|more\s+\w+))\b\W*$)"
)
_EXPECTED_VERSUS_ACTUAL = re.compile(
    rf"{_AT_A_WORD}(?:"
    rf"\b{_ACTUAL}\b(?:[^\n]{{0,120}}?)\b{_EXPECTED}\b(?!\s*{_WISH})(?=\W*\w)"
    rf"|\bshould\s+(?:be|return|give|show)\b{_CLAUSE}\bbut\s+(?:it\s+)?(?:is|was|gets|got|returns|gives|shows)\b"
    rf"|\bexpected\s*:?\s*\S{_CLAUSE}\b(?:got|actual|but\s+(?:got|was|is|it))\b"
    ")",
    re.IGNORECASE,
)

_FILE_PATH = re.compile(rf"(?<![\w./-])([\w./-]*\w)\.({_CODE_EXTENSIONS})\b")
_DIRECTORY = re.compile(r"(?<![\w./-])(?:[\w.-]{1,100})?/[\w.-]{1,100}(?:/[\w./-]{0,200})?|(?<![\w./-])[\w.-]{1,100}/")
# "Node.js", "Vue.js": framework names, not files.
_FRAMEWORK_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_TEST_FILE = re.compile(
    r"(?:^|/)(?:tests?|specs?|__tests__|testing|testsuite)(?:/|$)|(?:^|/)test_[\w.-]+$|_test$|\.(?:test|spec)$|Tests?$",
)
_NAMED_TEST_PATTERNS = (
    re.compile(r"\w::\w"),  # a pytest node id, or Rust's module::test
    re.compile(r"\btest_\w"),
    re.compile(r"\w_(?:test|spec)\b"),
    re.compile(r"\bTest[A-Z0-9_]"),
    re.compile(r"\b[A-Z][A-Za-z0-9_]*Tests?\b"),
)
_BACKTICKED = re.compile(r"`([^`\n]{1,200})`")
_JOB_STOPWORDS = r"(?!(?:the|a|an|this|that|ci|whole|every|any|each|one|my|our|its|failing|broken|red)\b)"
_QUOTED_NAME = r"[\"“'`][^\"”'`\n]{1,60}[\"”'`]"
_JOINED_NAME = r"(?<![\w.:/-])[A-Za-z][\w.:/]{0,60}[-_:/][\w.:/-]{0,60}\w"
_CI_JOB = re.compile(
    rf"(?:{_QUOTED_NAME}|{_JOINED_NAME})\s+(?:ci\s+)?(?:job|workflow)\b"
    rf"|\b(?:job|workflow|check)\s+(?:named\s+|called\s+)?(?:{_QUOTED_NAME}|{_JOINED_NAME})"
    rf"|\b{_JOB_STOPWORDS}[a-z]\w*\s+(?:ci\s+)?job\s+(?:{_SHORT_CLAUSE}\s)?(?:to\s+)?(?:pass|passes|passing|green|succeeds?)\b",
    re.IGNORECASE,
)

# "make tox -e py313 pass": a command named without backticks.
_COMMAND_TO_PASS = re.compile(
    r"\b(?:make|get|have|keep)\s+((?:[\w./:=-]{1,60}\s+){2,8}?)(?:pass|passing|green|succeed)\b", re.IGNORECASE
)

# Deleting or loosening checks reaches any finish line: those goals block whatever else they say.
_CHECKS = (
    r"(?:tests?|test\s+cases?|specs?|assertions?|asserts?|checks?|expectations?|tolerances?|thresholds?"
    r"|lint(?:ing)?\s+rules?|type\s+checks?|coverage\s+(?:gate|threshold|minimum))"
)
_MODIFIERS = r"(?:(?:[\"“'][^\"”'\n]{1,40}[\"”']|[\w-]{1,40})\s+){0,6}?"
_WEAKENS_CHECKS = re.compile(
    rf"{_AT_A_WORD}(?:"
    rf"\b{_NOT_NEGATED}(?:delet(?:e|ing)|remov(?:e|ing)|drop(?:ping)?|skip(?:ping)?|disabl(?:e|ing)|mut(?:e|ing)"
    rf"|ignor(?:e|ing)|loosen(?:ing)?|relax(?:ing)?|weaken(?:ing)?|comment(?:ing)?\s+out|quarantin(?:e|ing)"
    rf"|xfail(?:ing)?|silenc(?:e|ing)|suppress(?:ing)?)\s+(?:all\s+|every\s+|any\s+)?(?:of\s+)?"
    rf"(?:the\s+|our\s+|those\s+|these\s+)?{_MODIFIERS}{_CHECKS}\b"
    rf"|\bmark\s+{_SHORT_CLAUSE}\s+as\s+(?:an?\s+)?(?:xfail|skip(?:ped)?|flaky|ignored|expected\s+failures?|known\s+failures?)\b"
    rf"|\b(?:add|put)\s+(?:an?\s+)?@?(?:skip|xfail|ignore|disabled|flaky|retry|retries|rerun|reruns)\b"
    # More time or slack for a check, or a lower bar: the check lets more through.
    rf"|\b{_NOT_NEGATED}(?:rais|increas|doubl|bump|extend|loosen|widen)(?:e|es|ed|ing|s)?\s+(?:the\s+)?{_MODIFIERS}"
    r"(?:timeouts?|time\s+limits?|tolerances?|retr(?:y|ies)(?:\s+count)?|reruns?|allowed\s+failures?|epsilon)\b"
    rf"|\b{_NOT_NEGATED}(?:lower|reduc|decreas|drop)(?:s|ed|ing|e|es)?\s+(?:the\s+)?{_MODIFIERS}"
    r"coverage\s+(?:gate|threshold|minimum|bar|requirement)s?\b"
    r"|\bby\s+(?:any|whatever)\s+means\b|\bwhatever\s+it\s+takes\b"
    ")",
    re.IGNORECASE,
)

_SUITE = (
    r"(?:(?:all|every|any)\s+(?:of\s+)?)?(?:the\s+|our\s+|my\s+)?(?:\d+\s+)?"
    r"(?:(?:unit|integration|e2e|failing|broken|red|remaining|existing|flaky)\s+)*"
    r"(?:test\s+suite|tests?|suite|specs?|ci|build|pipeline|checks?)"
)
_TOO_WIDE = re.compile(
    rf"\b(?:make|get|have|turn|bring)\s+{_SUITE}\s+(?:to\s+)?(?:pass|passing|green|work|working|succeed)\b"
    rf"|\b(?:fix|restore)(?:es|ed|ing|s)?\s+(?:up\s+)?{_SUITE}\b"
    rf"|\bpass\s+{_SUITE}\b"
    rf"|^[\W_]*{_SUITE}\s+(?:should\s+|must\s+|to\s+)?(?:pass|passes|passing|be\s+green|are\s+green|green)\b",
    re.IGNORECASE,
)

# Wide words: fine with a path or a named scope ("all handlers under api/"), blocking without one.
_WIDE_WORDS = re.compile(
    rf"{_AT_A_WORD}(?:"
    r"\b(?:every(?:where|thing)?|any(?:where|thing)?|all)\b(?!\s+(?:\d|of\s+(?:them|it)\b))(?<!\bat\sall)"
    r"|\bacross\s+(?:the\s+)?(?:whole\s+|entire\s+)?(?:project|codebase|code\s+base|repo(?:sitory)?|app)\b"
    r"|\b(?:the\s+)?(?:whole|entire)\s+(?:project|codebase|code\s+base|repo(?:sitory)?|app)\b"
    ")",
    re.IGNORECASE,
)
_NAMED_SCOPE = re.compile(
    r"(?<![\w.-])[\w.-]{1,60}\s+(?:package|module|crate|app|service|directory|folder|class|namespace|endpoint|component|"
    r"library|plugin|command|view|page|screen|table|model)\b"
    r"|\b(?:under|in|inside|within)\s+[`\"“'][^`\"”'\n]{1,80}[`\"”']",
    re.IGNORECASE,
)
# What follows "without", "do not", "never" … up to the clause's end is a constraint, not the goal's scope.
_CONSTRAINT_CLAUSE = re.compile(
    r"\b(?:without|do\s+not|don't|never|not|no|while\s+keeping|keeping|except|instead\s+of|rather\s+than)\b(?:[^\n.;!?]|\.(?=\S)){0,400}",
    re.IGNORECASE,
)

_VAGUE_WORDS = re.compile(
    rf"{_AT_A_WORD}(?:"
    rf"\bmak(?:e|es|ing)\s+{_CLAUSE}\bbetter\b"
    r"|\bimprov(?:e|es|ed|ing|ements?)\b"
    r"|\benhanc(?:e|es|ed|ing|ements?)\b"
    r"|\boptimi[sz](?:e|es|ed|ing|ations?)\b"
    r"|\bclean(?:s|ed|ing)?[\s-]*up\b"
    r"|\btid(?:y|ies|ied|ying)\b"
    r"|\bpolish(?:es|ed|ing)?\b"
    r"|\bmoderni[sz](?:e|es|ed|ing|ation)\b"
    r"|\bstreamlin(?:e|es|ed|ing)\b"
    r"|\brevamp(?:s|ed|ing)?\b"
    r"|\bspeed(?:s|ing)?\s+up\b"
    r"|\b(?:better|faster|quicker|nicer|cleaner)\b"
    r"|\bmore\s+(?:robust|efficient)\b"
    ")",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:where(?:ver)?|when(?:ever)?|if)\s+(?:it\s+)?(?:makes\s+sense|possible|appropriate|feasible|needed|useful|sensible)\b"
    r"|\bas\s+(?:much|far)\s+as\s+(?:possible|practical|reasonable)\b|\bas\s+(?:needed|appropriate)\b",
    re.IGNORECASE,
)
_INVESTIGATION = re.compile(
    r"^\W*(?:investigate|look\s+into|explore|understand|figure\s+out|find\s+out|research|dig\s+into|debug)\b",
    re.IGNORECASE,
)
_MAKE_SOMETHING_BETTER = re.compile(r"^mak(?:e|es|ing)\s.*\bbetter$", re.IGNORECASE | re.DOTALL)
_SPEED_WORDS = re.compile(r"fast|quick|speed|optimi|efficient", re.IGNORECASE)
_TIDY_WORDS = re.compile(r"clean|tid|moderni|streamlin|revamp|polish", re.IGNORECASE)

_ACTION_VERBS = (
    "add",
    "fix",
    "remove",
    "refactor",
    "migrate",
    "update",
    "implement",
    "rewrite",
    "replace",
    "improve",
    "make",
    "reduce",
    "increase",
    "move",
    "rename",
    "delete",
    "upgrade",
    "build",
    "create",
    "write",
    "support",
    "restore",
    "convert",
    "extract",
    "split",
    "port",
    "introduce",
    "change",
    "get",
    "optimize",
    "optimise",
    "speed",
    "clean",
    "cut",
    "drop",
    "bump",
    "document",
    "enable",
    "disable",
    "deprecate",
)
_ACTION_VERB = r"(?:" + "|".join(_ACTION_VERBS) + r")"
# "make sure"/"make certain" introduces a constraint; "drag and drop", "find and replace" are one feature.
_SECOND_OBJECTIVE = re.compile(
    rf"(?<!search\s)(?<!find\s)(?<!drag\s)\band\s+(?:then\s+|also\s+)?(?!make\s+(?:sure|certain)\b)"
    rf"(?!drop\b){_ACTION_VERB}\b"
    rf"|;\s*(?:then\s+|also\s+)?(?!make\s+(?:sure|certain)\b){_ACTION_VERB}\b"
    rf"|,\s*(?:and\s+)?then\s+{_ACTION_VERB}\b",
    re.IGNORECASE,
)
_SENTENCE_OR_LINE_BREAK = re.compile(r"(?<=[.!?])\s+|\n+")
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d+[.)])\s+")
_STARTS_WITH_ACTION_VERB = re.compile(rf"^{_ACTION_VERB}\b(?!\s+(?:sure|certain)\b)", re.IGNORECASE)

_GENERIC_TEST_RUNNERS = (
    ("pytest",),
    ("py.test",),
    ("python", "-m", "pytest"),
    ("python3", "-m", "pytest"),
    ("npm", "test"),
    ("npm", "t"),
    ("npm", "run", "test"),
    ("yarn", "test"),
    ("pnpm", "test"),
    ("bun", "test"),
    ("make", "test"),
    ("make", "tests"),
    ("make", "check"),
    ("go", "test"),
    ("cargo", "test"),
    ("mvn", "test"),
    ("gradle", "test"),
    ("./gradlew", "test"),
    ("tox",),
    ("nox",),
    ("jest",),
    ("npx", "jest"),
    ("vitest",),
    ("npx", "vitest"),
    ("rspec",),
    ("bundle", "exec", "rspec"),
    ("rake", "test"),
    ("mix", "test"),
    ("dotnet", "test"),
    ("phpunit",),
    ("./manage.py", "test"),
    ("python", "manage.py", "test"),
    ("python3", "manage.py", "test"),
    ("django-admin", "test"),
    ("uv", "run", "pytest"),
    ("poetry", "run", "pytest"),
    ("deno", "test"),
)
_WHOLE_SUITE_ARGUMENTS = frozenset({"./...", "...", ".", "./", "all"})
_GENERIC_TEST_PROSE = re.compile(
    r"^\W*(?:(?:run|execute)\s+(?:all\s+(?:of\s+)?)?(?:the\s+)?(?:whole\s+|full\s+|unit\s+|existing\s+)?"
    r"(?:tests?|test\s+suite|suite|specs?)"
    r"|(?:all\s+)?(?:the\s+)?(?:tests?|test\s+suite|suite|ci|build)\s+(?:should\s+|must\s+)?"
    r"(?:pass|passes|passing|is\s+green|are\s+green|green))\W*$",
    re.IGNORECASE,
)


def _paths(objective: str) -> list[str]:
    """File paths (framework names like "Node.js" left out) and directories the objective names."""
    found = [
        match.group(0)
        for match in _FILE_PATH.finditer(objective)
        if not (match.group(2).lower() == "js" and _FRAMEWORK_NAME.fullmatch(match.group(1)))
    ]
    return found + [match.group(0) for match in _DIRECTORY.finditer(objective)]


def _is_named_test(text: str) -> bool:
    if any(pattern.search(text) for pattern in _NAMED_TEST_PATTERNS):
        return True
    return any(
        _TEST_FILE.search(match.group(1))
        for match in _FILE_PATH.finditer(text)
        if not (match.group(2).lower() == "js" and _FRAMEWORK_NAME.fullmatch(match.group(1)))
    )


@functools.lru_cache(maxsize=64)
def _names_a_check(objective: str) -> bool:
    """A test id, a test file, a command in backticks or a CI job by name."""
    if _is_named_test(objective) or _CI_JOB.search(objective):
        return True
    for match in _COMMAND_TO_PASS.finditer(objective):
        if match.group(1).split()[0] in KNOWN_TOOLS and _looks_like_command(match.group(1)):
            return True
    for match in _BACKTICKED.finditer(objective):
        inner = match.group(1).strip()
        if _looks_like_command(inner) or _is_named_test(inner):
            return True
    return False


def finish_lines(objective: str) -> tuple[str, ...]:
    """The kinds of finish line the objective carries: number, end state, expected versus actual, named check.

    A hedge ("where it makes sense") leaves an end state open, and a goal to investigate names its test as the
    subject, not as the check that says it is done."""
    kinds = (
        ("number", bool(_NUMBER_TARGET.search(objective))),
        ("end state", bool(_END_STATE.search(objective)) and not _HEDGE.search(objective)),
        ("expected versus actual", bool(_EXPECTED_VERSUS_ACTUAL.search(objective))),
        ("named check", _names_a_check(objective) and not _INVESTIGATION.match(objective)),
    )
    return tuple(kind for kind, found in kinds if found)


def has_measurable_target(objective: str) -> bool:
    """True when the objective has a finish line (see `finish_lines`)."""
    return bool(finish_lines(objective))


@functools.lru_cache(maxsize=64)
def _without_constraints(objective: str) -> str:
    return _CONSTRAINT_CLAUSE.sub(" ", objective)


def _phrase(match: re.Match[str], limit: int = 40) -> str:
    words = " ".join(match.group(0).split()).strip(" -*•").lower()
    return words if len(words) <= limit else words[: limit - 1].rstrip() + "…"


def _weakens_checks(objective: str) -> str:
    """The phrase by which the goal reaches its finish line through deleting or loosening checks, else ""."""
    match = _WEAKENS_CHECKS.search(_without_constraints(objective))
    return _phrase(match) if match else ""


def _is_too_wide(objective: str) -> str:
    """The wide phrase ("make tests pass", "fix the build") when no specific check is named, else ""."""
    match = _TOO_WIDE.search(objective)
    if match is None or _names_a_check(objective):
        return ""
    return _phrase(match)


def _wide_word_without_a_path(objective: str) -> str:
    """A wide word ("all", "everywhere") in the goal's own scope when no path or named scope narrows it."""
    scope = _without_constraints(objective)
    match = _WIDE_WORDS.search(scope)
    if match is None or _paths(scope) or _NAMED_SCOPE.search(scope) or _names_a_check(objective):
        return ""
    return _phrase(match)


def _vague_words(objective: str) -> list[str]:
    found: list[str] = []
    for match in _VAGUE_WORDS.finditer(objective):
        word = " ".join(match.group(0).split()).lower()
        if _MAKE_SOMETHING_BETTER.match(word):
            word = "make … better"
        if word not in found:
            found.append(word)
    return found


def _rewrite_for(vague: list[str]) -> str:
    if any(_SPEED_WORDS.search(word) for word in vague):
        return "say how fast, measured how: “dashboard load time below 1.5 s”."
    if all(_TIDY_WORDS.search(word) for word in vague):
        return "say the end state: “move X to Y” or “remove the deprecated flag --x”."
    return "say what must change and to what: “load time below 1.5 s” or “raises X; expected Y”."


def _has_several_objectives(objective: str) -> bool:
    if _SECOND_OBJECTIVE.search(objective):
        return True
    objective_like_parts = 0
    for part in _SENTENCE_OR_LINE_BREAK.split(objective):
        is_bullet = bool(_BULLET.match(part))
        text = _BULLET.sub("", part, count=1).strip()
        if text and (is_bullet or _STARTS_WITH_ACTION_VERB.match(text)):
            objective_like_parts += 1
    return objective_like_parts > 1


def _is_generic_command(command: str) -> bool:
    if _GENERIC_TEST_PROSE.match(command):
        return True
    tokens = command.split()
    for runner in _GENERIC_TEST_RUNNERS:
        if tuple(tokens[: len(runner)]) == runner:
            rest = tokens[len(runner) :]
            return all(token.startswith("-") or token in _WHOLE_SUITE_ARGUMENTS for token in rest)
    return False


def _quote_list(words: list[str]) -> str:
    return ", ".join(f"“{word}”" for word in words)


def _verb_for(words: list[str], singular: str, plural: str) -> str:
    return singular if len(words) == 1 else plural


# --- The rules --------------------------------------------------------------------------------------------


def _objective_findings(objective: str) -> list[Finding]:
    if not objective:
        return [
            Finding(
                "objective_missing",
                BLOCKING,
                "Write the objective: one sentence naming what must change and how you will measure it.",
            )
        ]
    findings = []
    kinds = finish_lines(objective)
    has_target = bool(kinds)
    weakening = _weakens_checks(objective)
    wide_phrase = _is_too_wide(objective)
    # In a bug report a wide word describes when it breaks ("every file"), not how far the work reaches.
    wide_word = "" if "expected versus actual" in kinds else _wide_word_without_a_path(objective)
    if weakening:
        findings.append(
            Finding(
                "objective_too_wide",
                BLOCKING,
                f"“{weakening}” gets there by removing checks. "
                "Name the test to fix: “Restore test_x without changing Y”.",
            )
        )
    elif wide_phrase:
        findings.append(
            Finding(
                "objective_too_wide",
                BLOCKING,
                f"“{wide_phrase}” is wide and weak: it invites deleting assertions. "
                "Name the failing test: “Make test_x pass, keep Y”.",
            )
        )
    elif wide_word:
        findings.append(
            Finding(
                "objective_too_wide",
                BLOCKING,
                f"“{wide_word}” has no path: say where, like “all handlers under api/”, or name the files.",
            )
        )
    elif not has_target:
        findings.append(
            Finding(
                "objective_no_target",
                BLOCKING,
                "That is a meeting, not a goal: name the number that must change "
                "(“load time below 1.5 s”) or the end state (“move X to Y”).",
            )
        )
    vague = _vague_words(objective)
    if vague:
        if has_target:
            findings.append(
                Finding(
                    "vague_verb",
                    ADVICE,
                    f"Your target carries this goal; {_quote_list(vague)} {_verb_for(vague, 'adds', 'add')} "
                    "nothing, so drop it.",
                )
            )
        else:
            findings.append(
                Finding(
                    "vague_verb",
                    BLOCKING,
                    f"{_quote_list(vague)} {_verb_for(vague, 'has', 'have')} no finish line: {_rewrite_for(vague)}",
                )
            )
    if _has_several_objectives(objective):
        findings.append(
            Finding(
                "multiple_objectives",
                ADVICE,
                "This reads as more than one objective: keep one and move the rest into their own goals.",
            )
        )
    return findings


def _constraint_findings(constraints: Iterable[str]) -> list[Finding]:
    if any(constraint.strip() for constraint in constraints):
        return []
    return [
        Finding(
            "constraints_missing",
            BLOCKING,
            "Add at least one constraint: name what the agent must not touch or change.",
        )
    ]


def _evidence_findings(evidence: tuple[EvidenceCheck, ...]) -> list[Finding]:
    findings = []
    prose = [check for check in evidence if check.runnable and reads_as_prose(check.command)]
    for check in prose:
        text = " ".join(check.command.split())
        text = text if len(text) <= 32 else text[:31].rstrip() + "…"
        findings.append(
            Finding(
                "evidence_not_a_command",
                BLOCKING,
                f"“{text}” is prose, not a command: write the command (“pytest tests/test_x.py”) "
                "or mark it a manual check.",
            )
        )
    runnable = [check for check in evidence if check.runnable and check not in prose]
    if not runnable:
        if evidence:
            message = "Your checks are all manual: add a command the agent can run to prove the objective."
        else:
            message = "Add evidence: a command the agent can run to prove the objective, like a named test."
        findings.append(Finding("evidence_missing", BLOCKING, message))
    every_command_is_generic = bool(runnable) and all(_is_generic_command(check.command) for check in runnable)
    generic_prose = any(
        not check.runnable and _GENERIC_TEST_PROSE.match(check.description or check.command) for check in evidence
    )
    if every_command_is_generic or generic_prose:
        findings.append(
            Finding(
                "evidence_generic",
                ADVICE,
                "“Run the tests” proves nothing specific: name the test or command that proves this goal.",
            )
        )
    return findings


def _budget_findings(contract: Contract) -> list[Finding]:
    findings = []
    for name in BUDGET_NAMES:
        value = contract.budget(name)
        if value is None or value == 0:
            findings.append(
                Finding(
                    "budget_unbounded",
                    BLOCKING,
                    f"Set a limit on {BUDGET_LABELS[name]} (try {DEFAULT_BUDGETS[name]:,}): "
                    "without one the agent never has to stop.",
                )
            )
    return findings


# An objective is a sentence or a short paragraph; reading past this keeps no real goal from being judged, and
# keeps a pasted log or a hostile 100 KB objective from costing seconds.
OBJECTIVE_READ_LIMIT = 10_000


def lint(contract: Contract) -> list[Finding]:
    """Check a contract; blocking findings come first, then advice, each group in rule order."""
    findings = _objective_findings(contract.objective.strip()[:OBJECTIVE_READ_LIMIT])
    findings += _constraint_findings(contract.constraints)
    findings += _evidence_findings(tuple(contract.evidence))
    findings += _budget_findings(contract)
    if contract.effective_risk == "high" and not contract.rollback_note.strip():
        findings.append(
            Finding(
                "rollback_missing",
                BLOCKING,
                "This is high-risk work: write how to undo it (revert, down migration, feature flag).",
            )
        )
    if not contract.done_criteria.strip():
        findings.append(
            Finding(
                "done_criteria_missing",
                ADVICE,
                "Add done criteria: the agent needs to know when to stop and what to hand back.",
            )
        )
    return sorted(findings, key=lambda finding: finding.severity != BLOCKING)

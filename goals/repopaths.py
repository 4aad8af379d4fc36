"""Which files of a repository are tests, generated or vendored: the built-in tables of goals/diffs.py, plus
what the repository says of itself, plus what staff set on the repository.

Detection is a pure function over "read this file of the repository" (:func:`detect`). The worker hands it a
reader of the trusted base commit the person chose (goals/workspace.py reads it with the worker's hardened git),
never the agent's worktree, so an agent cannot switch a gate off by rewriting `.gitattributes` or pytest's
`testpaths`; `rules_eval` hands it the saved config files of a commit's parent tree. Every file is read bounded
(:data:`MAX_CONFIG_BYTES`) and a file that cannot be parsed is skipped, never an error.

Patterns are gitignore-style (pathspec's ``GitIgnoreSpec``): "/tests/" is the top-level tests folder, "test_*.py"
a name at any depth. Staff patterns add to the built-in tables; they replace what was detected for that kind.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pathspec

from goals.diffs import classify_path

__all__ = ["CONFIG_FILES", "KINDS", "PathSetting", "RepoPaths", "detect", "parse_patterns"]

# The files detection reads, at the top of the repository. Editing one of them is a review-settings change.
CONFIG_FILES = (
    "pyproject.toml",
    "pytest.ini",
    "setup.cfg",
    "tox.ini",
    "package.json",
    ".gitattributes",
    "jest.config.js",
    "jest.config.ts",
    "jest.config.mjs",
    "jest.config.cjs",
    "jest.config.json",
    "vitest.config.ts",
    "vitest.config.js",
    "vitest.config.mts",
    "vitest.config.mjs",
    ".mocharc.json",
    ".mocharc.yml",
    ".mocharc.yaml",
    "pnpm-workspace.yaml",
    "lerna.json",
)
KINDS = ("tests", "generated", "vendored")
STAFF = "set by staff"
MAX_CONFIG_BYTES = 64 * 1024
MAX_PATTERNS = 100
MAX_PATTERN_CHARS = 200
MAX_GITATTRIBUTES_LINES = 2_000
# A detected pattern that matches these ordinary product files is too wide to mean anything: it is dropped.
_PRODUCT_PROBES = ("src/app.py", "lib/index.js", "main.go", "app/models.py", "src/main/java/App.java")
_SAYS_TEST = re.compile(r"test|spec", re.IGNORECASE)
_DEFAULT_PYTHON_FILES = ("test_*.py", "*_test.py")
_EXTGLOB = re.compile(r"[?*+@!]\(([^()]*)\)")
_BRACES = re.compile(r"\{([^{}]*)\}")
_QUOTED = re.compile(r"""["'`]([^"'`\n]{1,200})["'`]""")


@dataclass(frozen=True)
class PathSetting:
    """The patterns of one kind (tests, generated, vendored) and where they came from ("pyproject.toml",
    ".gitattributes", "set by staff")."""

    patterns: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def matches(self, path: str) -> bool:
        """Whether ``path`` matches the patterns (a "!pattern" later on takes a path back out)."""
        return bool(self.patterns) and _spec(self.patterns).match_file(path)

    def excludes(self, path: str) -> bool:
        """Whether a "!pattern" explicitly takes ``path`` out ("!packages/": our own code, not a vendored copy)."""
        return bool(self.patterns) and _spec(self.patterns).check_file(path).include is False

    def describe(self) -> str:
        """One short line: "tests/, testing/ — from pyproject.toml"; "" when there is nothing."""
        if not self.patterns:
            return ""
        shown = ", ".join(pattern.lstrip("/") for pattern in self.patterns[:4])
        if len(self.patterns) > 4:
            shown += f" and {len(self.patterns) - 4} more"
        where = " and ".join(self.sources)
        return f"{shown} — {where}" if where == STAFF else f"{shown} — from {where}"


@lru_cache(maxsize=256)
def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(patterns)


@dataclass(frozen=True)
class RepoPaths:
    """The effective path rules of a repository: extra patterns for each kind, and the folders it declares as
    its own workspaces (a `packages/` folder there is the project's code, not a vendored copy)."""

    tests: PathSetting = field(default_factory=PathSetting)
    generated: PathSetting = field(default_factory=PathSetting)
    vendored: PathSetting = field(default_factory=PathSetting)
    workspaces: PathSetting = field(default_factory=PathSetting)

    def classify(self, path: str, head: str = "") -> str:
        """The category of ``path`` (see goals.diffs.CATEGORIES) under these rules: lock files stay lock files;
        then the repository's vendored, generated and test patterns; then the built-in tables."""
        own_package = self.workspaces.matches(path) or self.vendored.excludes(path)
        builtin = classify_path(path, head, packages_vendored=not own_package)
        if builtin == "lock":
            return builtin
        if self.vendored.matches(path):
            return "vendored"
        if builtin == "vendored":
            return builtin
        if self.generated.matches(path):
            return "generated"
        if builtin in ("migration", "generated"):
            return builtin
        if self.tests.matches(path):
            return "test"
        return builtin

    def with_staff(self, **texts: str) -> RepoPaths:
        """These rules with staff's patterns (one a line, for tests / generated / vendored) in place of what was
        detected; a blank text keeps the detected ones."""
        changes = {}
        for kind in KINDS:
            patterns = parse_patterns(texts.get(kind) or "")
            if patterns:
                changes[kind] = PathSetting(patterns, (STAFF,))
        return RepoPaths(**{**self.__dict__, **changes})

    def as_dict(self) -> dict:
        """JSON-ready: {kind: {"patterns": [...], "sources": [...]}}."""
        return {
            kind: {"patterns": list(setting.patterns), "sources": list(setting.sources)}
            for kind, setting in self.__dict__.items()
        }

    @classmethod
    def from_dict(cls, data: object) -> RepoPaths:
        """The inverse of :meth:`as_dict`; anything malformed reads as nothing detected."""
        if not isinstance(data, dict):
            return cls()
        settings = {}
        for kind in (*KINDS, "workspaces"):
            entry = data.get(kind)
            if isinstance(entry, dict):
                patterns = _bounded(entry.get("patterns"))
                sources = _bounded(entry.get("sources"))
                settings[kind] = PathSetting(patterns, sources)
        return cls(**settings)

    def describe(self) -> list[tuple[str, str]]:
        """(label, line) for each kind that has patterns, for the goal page."""
        labels = {"tests": "Tests", "generated": "Generated", "vendored": "Vendored", "workspaces": "Own packages"}
        return [(labels[kind], setting.describe()) for kind, setting in self.__dict__.items() if setting.patterns]


def _bounded(values: object) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    return tuple(str(value)[:MAX_PATTERN_CHARS] for value in values[:MAX_PATTERNS] if isinstance(value, str))


def parse_patterns(text: str) -> tuple[str, ...]:
    """Staff's patterns: one a line, blank lines and "#" comments ignored, bounded in number and length."""
    lines = (line.strip() for line in str(text).splitlines())
    patterns = [line[:MAX_PATTERN_CHARS] for line in lines if line and not line.startswith("#")]
    return tuple(dict.fromkeys(patterns))[:MAX_PATTERNS]


# --- detection ---------------------------------------------------------------------------------------------------

Reader = Callable[[str], "str | bytes | None"]


def detect(read: Reader) -> RepoPaths:
    """What the repository says of its tests, generated and vendored files and its own workspaces, from its config
    files (:data:`CONFIG_FILES`), read with ``read(path)`` (None or "" when absent). Never raises for file
    contents; a reader that raises counts as the file being absent."""
    texts = {name: _read(read, name) for name in CONFIG_FILES}
    found: dict[str, dict[str, list[str]]] = {kind: {} for kind in (*KINDS, "workspaces")}

    def add(kind: str, source: str, patterns: Iterable[str]) -> None:
        for pattern in patterns:
            pattern = pattern.strip()[:MAX_PATTERN_CHARS]
            if pattern and (kind == "workspaces" or not _too_wide(pattern)):
                found[kind].setdefault(source, []).append(pattern)

    for name in ("pyproject.toml", "pytest.ini", "tox.ini", "setup.cfg"):
        add("tests", name, _pytest_tests(name, texts[name]))
    package = _json(texts["package.json"])
    if isinstance(package, dict):
        add("tests", "package.json", _package_tests(package))
        add("workspaces", "package.json", _workspace_dirs(package.get("workspaces")))
    for name in CONFIG_FILES:
        if name.startswith(("jest.config", "vitest.config", ".mocharc")) and texts[name]:
            add("tests", name, _runner_config_tests(name, texts[name]))
    add("workspaces", "pnpm-workspace.yaml", _workspace_dirs(_yaml_list(texts["pnpm-workspace.yaml"], "packages")))
    lerna = _json(texts["lerna.json"])
    if isinstance(lerna, dict):
        add("workspaces", "lerna.json", _workspace_dirs(lerna.get("packages")))
    generated, vendored = _gitattributes(texts[".gitattributes"])
    add("generated", ".gitattributes", generated)
    add("vendored", ".gitattributes", vendored)

    settings = {}
    for kind, by_source in found.items():
        patterns = tuple(dict.fromkeys(pattern for values in by_source.values() for pattern in values))
        settings[kind] = PathSetting(patterns[:MAX_PATTERNS], tuple(by_source))
    return RepoPaths(**settings)


def _read(read: Reader, name: str) -> str:
    try:
        data = read(name)
    except Exception:  # the reader is the caller's (git, a cache): a file it cannot give is a file not there
        return ""
    if isinstance(data, bytes):
        data = data[:MAX_CONFIG_BYTES].decode("utf-8", errors="replace")
    return data[:MAX_CONFIG_BYTES] if isinstance(data, str) else ""


def _too_wide(pattern: str) -> bool:
    if pattern.startswith("!"):
        return False
    spec = _spec((pattern,))
    return any(spec.match_file(probe) for probe in _PRODUCT_PROBES)


def _json(text: str) -> object:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value[:MAX_PATTERNS] if isinstance(item, str)]
    return []


def _anchored(path: str) -> str:
    """A path as the config writes it ("./tests", "<rootDir>/src") made a top-level gitignore pattern."""
    path = path.strip().replace("\\", "/").removeprefix("<rootDir>")
    while path.startswith("./"):
        path = path[2:]
    return "/" + path.lstrip("/") if path.strip("/.") else ""


def _test_folder_or_files(path: str, file_patterns: Iterable[str]) -> list[str]:
    """A folder a test runner searches: the whole folder when its name says test or spec, otherwise only the
    files in it that the runner takes for tests (pytest's `testpaths = src` must not make all of src/ tests)."""
    folder = _anchored(path).rstrip("/")
    if not folder:
        return []
    if _SAYS_TEST.search(folder.rsplit("/", 1)[-1]):
        return [folder + "/"]
    return [f"{folder}/**/{pattern}" for pattern in file_patterns]


def _glob(pattern: str) -> list[str]:
    """A test runner's glob (micromatch: braces, extglobs) as gitignore patterns."""
    pattern = _EXTGLOB.sub(_extglob_as_braces, pattern.strip())
    match = _BRACES.search(pattern)
    if match:
        options = match.group(1).split(",")[:10]
        return [
            expanded
            for option in options
            for expanded in _glob(pattern[: match.start()] + option + pattern[match.end() :])
        ]
    if pattern.startswith("!") or not pattern:
        return []
    if pattern.startswith("**/"):
        return [pattern]
    return [_anchored(pattern)] if _anchored(pattern) else []


def _extglob_as_braces(match: re.Match) -> str:
    """micromatch's "?(x)" is "{,x}", "+(a|b)" and "@(a|b)" are "{a,b}"; "*(…)" and "!(…)" read as "*"."""
    kind, options = match.group(0)[0], match.group(1).replace("|", ",")
    if kind == "?":
        return "{," + options + "}"
    if kind in "+@":
        return "{" + options + "}"
    return "*"


# pytest


def _pytest_tests(name: str, text: str) -> list[str]:
    if not text:
        return []
    testpaths: object = None
    python_files: object = None
    if name == "pyproject.toml":
        try:
            data = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError, ValueError):
            return []
        pytest_table = data.get("tool", {}).get("pytest", {}) if isinstance(data.get("tool"), dict) else {}
        if not isinstance(pytest_table, dict):
            return []
        options = pytest_table.get("ini_options", pytest_table)
        if not isinstance(options, dict):
            return []
        testpaths, python_files = options.get("testpaths"), options.get("python_files")
        testpaths = testpaths.split() if isinstance(testpaths, str) else _strings(testpaths)
        python_files = python_files.split() if isinstance(python_files, str) else _strings(python_files)
    else:
        section = "tool:pytest" if name == "setup.cfg" else "pytest"
        parser = configparser.RawConfigParser(strict=False)
        try:
            parser.read_string(text)
            testpaths = parser.get(section, "testpaths", fallback="").split()
            python_files = parser.get(section, "python_files", fallback="").split()
        except (configparser.Error, ValueError):
            return []
    file_patterns = [pattern for pattern in python_files if "/" not in pattern][:10] or list(_DEFAULT_PYTHON_FILES)
    patterns = [
        found
        for path in testpaths[:MAX_PATTERNS]
        if path.strip(" ./")
        for found in _test_folder_or_files(path, file_patterns)
    ]
    return patterns + [pattern for pattern in file_patterns if pattern not in _DEFAULT_PYTHON_FILES]


# JavaScript runners

_RUNNER_KEYS = ("testMatch", "include", "spec", "files", "roots")


def _package_tests(package: dict) -> list[str]:
    patterns: list[str] = []
    scripts = package.get("scripts")
    if isinstance(scripts, dict):
        for key, command in list(scripts.items())[:50]:
            if isinstance(key, str) and key.split(":")[0] == "test" and isinstance(command, str):
                patterns += _command_paths(command)
    for runner in ("jest", "ava", "mocha", "vitest"):
        options = package.get(runner)
        if isinstance(options, dict):
            patterns += _runner_patterns(options)
    return patterns


def _command_paths(command: str) -> list[str]:
    """The test folders and globs a `test` script names (`mocha test/ test/acceptance/`, `ava "src/**/*.spec.js"`)."""
    try:
        words = shlex.split(command[:2_000])
    except ValueError:
        return []
    patterns = []
    for word in words[:100]:
        if word.startswith("-") or "=" in word or "node_modules" in word or ".bin/" in word:
            continue
        if any(char in word for char in "*?{"):
            patterns += _glob(word)
        elif "/" in word:
            name = word.rstrip("/").rsplit("/", 1)[-1]
            if "." in name:  # a file: test/support/env.js
                if _SAYS_TEST.search(word):
                    patterns.append(_anchored(word))
            elif _SAYS_TEST.search(name):
                patterns += _test_folder_or_files(word, ())
    return [pattern for pattern in patterns if pattern]


def _runner_patterns(options: dict) -> list[str]:
    patterns: list[str] = []
    for key in _RUNNER_KEYS:
        for value in _strings(options.get(key)):
            if key == "roots":
                patterns += _test_folder_or_files(value, ())
            else:
                patterns += _glob(value)
    nested = options.get("test")  # vitest's `test: {include: [...]}`
    if isinstance(nested, dict):
        patterns += _runner_patterns({key: value for key, value in nested.items() if key != "test"})
    return patterns


def _runner_config_tests(name: str, text: str) -> list[str]:
    """Jest, Vitest and Mocha config files: JSON is parsed; JavaScript and YAML are read for the few keys that
    name test files (testMatch, roots, include, spec), without running anything."""
    if name.endswith(".json"):
        data = _json(text)
        return _runner_patterns(data) if isinstance(data, dict) else []
    if name.endswith((".yml", ".yaml")):
        return [found for value in _yaml_list(text, "spec") for found in _glob(value)]
    patterns: list[str] = []
    for key in _RUNNER_KEYS:
        for match in re.finditer(rf"\b{key}\s*:\s*(\[[^\]]{{0,2000}}\]|[\"'`][^\"'`\n]{{1,200}}[\"'`])", text):
            for value in _QUOTED.findall(match.group(1)):
                patterns += _test_folder_or_files(value, ()) if key == "roots" else _glob(value)
    return patterns


def _yaml_list(text: str, key: str) -> list[str]:
    """A top-level key's string or list of strings in a small YAML file (`packages:` then `- 'packages/*'`)."""
    values: list[str] = []
    inside = False
    for line in text.splitlines()[:500]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not line[0].isspace() and not stripped.startswith("-"):
            name, _, rest = stripped.partition(":")
            inside = name.strip() == key
            if inside and rest.strip():
                rest = rest.strip()
                values += _QUOTED.findall(rest) if rest.startswith(("[", "'", '"')) else [rest]
            continue
        if inside and stripped.startswith("-"):
            item = stripped[1:].strip()
            values += _QUOTED.findall(item) or [item]
    return values[:MAX_PATTERNS]


def _workspace_dirs(value: object) -> list[str]:
    """package.json `workspaces` (a list, or {"packages": [...]}), lerna's `packages`, pnpm's `packages`."""
    if isinstance(value, dict):
        value = value.get("packages")
    return [_anchored(pattern) for pattern in _strings(value) if not pattern.startswith("!") and _anchored(pattern)]


# .gitattributes


def _gitattributes(text: str) -> tuple[list[str], list[str]]:
    """The patterns `.gitattributes` marks linguist-generated and linguist-vendored; an unset or false value
    ("-linguist-generated", "linguist-generated=false") becomes a "!pattern" that takes paths back out."""
    generated: list[str] = []
    vendored: list[str] = []
    for line in text.splitlines()[:MAX_GITATTRIBUTES_LINES]:
        words = line.split()
        if not words or words[0].startswith("#") or words[0].startswith("["):
            continue
        pattern = words[0]
        for attribute in words[1:20]:
            for name, target in (("linguist-generated", generated), ("linguist-vendored", vendored)):
                if attribute in (name, f"{name}=true"):
                    target.append(pattern)
                elif attribute in (f"-{name}", f"{name}=false", f"!{name}") and target:
                    target.append("!" + pattern)
    return generated, vendored

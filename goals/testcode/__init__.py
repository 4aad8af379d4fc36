"""Reading test code: one small analyser per test framework, grouped by language.

Each framework (pytest, unittest, Jest, Vitest, Mocha/Chai, AVA, Go's testing, Rust's ``#[test]``, JUnit,
RSpec) says, line by line, which lines check something, which skip, ignore, mark as failing or focus a test,
and which define one. A :class:`Language` joins the frameworks that share a file type, since one file may mix
them (Mocha with Chai, pytest with unittest). The gates ask :func:`analyser_for` about a path and read the
answers; nothing here knows about diffs or gates, and nothing here imports Django.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache


def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns)) if patterns else None


@dataclass(frozen=True)
class Framework:
    """What one test framework writes. Every entry is a regular expression searched in one stripped line.

    ``assertions``: a line that checks something. ``skips``: a marker that stops a test from running or from
    failing (skip, xfail, ignore, assume, failing, a compile-time or version gate, an importorskip).
    ``focus``: a marker that runs one test alone and drops the others. ``definitions``: a line that starts a
    test (one per test). ``content``: a line that says a source file outside the test folders holds tests.
    """

    name: str
    assertions: tuple[str, ...]
    skips: tuple[str, ...] = ()
    focus: tuple[str, ...] = ()
    definitions: tuple[str, ...] = ()
    content: tuple[str, ...] = ()


@dataclass(frozen=True)
class Language:
    """The frameworks that share one kind of file, read together."""

    name: str
    frameworks: tuple[Framework, ...]
    comments: tuple[str, ...] = ("//", "/*", "*")
    imports: str = r"^(?:import|from\s+\S+\s+import)\b"

    def _joined(self, attribute: str) -> re.Pattern[str] | None:
        return _any_of(
            tuple(pattern for framework in self.frameworks for pattern in getattr(framework, attribute))
        )

    @cached_property
    def _assertion(self) -> re.Pattern[str] | None:
        return self._joined("assertions")

    @cached_property
    def _skip(self) -> re.Pattern[str] | None:
        return self._joined("skips")

    @cached_property
    def _focus(self) -> re.Pattern[str] | None:
        return self._joined("focus")

    @cached_property
    def _definition(self) -> re.Pattern[str] | None:
        return self._joined("definitions")

    @cached_property
    def _content(self) -> re.Pattern[str] | None:
        return self._joined("content")

    @cached_property
    def _import(self) -> re.Pattern[str]:
        return re.compile(self.imports)

    def is_comment(self, text: str) -> bool:
        """Whether the line is only a comment in this language."""
        return text.lstrip().startswith(self.comments)

    def _code(self, text: str) -> str:
        stripped = text.strip()
        return "" if not stripped or self.is_comment(stripped) else stripped

    def _search(self, pattern: re.Pattern[str] | None, text: str) -> bool:
        code = self._code(text)
        return bool(code) and pattern is not None and bool(pattern.search(code))

    def is_assertion(self, text: str) -> bool:
        """Whether the line checks something (an assert, an expect, a t.Error, an assertThat …)."""
        return self._search(self._assertion, text)

    def skip_markers(self, text: str) -> list[str]:
        """The markers in the line that skip, ignore, gate or excuse a test, as written."""
        code = self._code(text)
        if not code or self._skip is None:
            return []
        return [match.group(0) for match in self._skip.finditer(code)]

    def is_skip(self, text: str) -> bool:
        """Whether the line skips, ignores, gates or excuses a test."""
        return bool(self.skip_markers(text))

    def is_focus(self, text: str) -> bool:
        """Whether the line runs one test alone (``.only``, ``fit``), dropping every other test of the file."""
        return self._search(self._focus, text)

    def is_definition(self, text: str) -> bool:
        """Whether the line starts a test (one line per test)."""
        return self._search(self._definition, text)

    def is_import(self, text: str) -> bool:
        """Whether the line only imports a name."""
        code = self._code(text)
        return bool(code) and bool(self._import.search(code))

    def holds_tests(self, text: str) -> bool:
        """Whether a line of a source file outside the test folders says the file holds tests."""
        return self._search(self._content, text)


# Imported late: the framework modules build on Framework and Language above.
from goals.testcode import go, java, javascript, python, ruby, rust  # noqa: E402

LANGUAGES: dict[str, Language] = {
    language.name: language
    for language in (
        python.LANGUAGE,
        javascript.LANGUAGE,
        go.LANGUAGE,
        rust.LANGUAGE,
        java.LANGUAGE,
        ruby.LANGUAGE,
    )
}
OTHER = Language(
    "other",
    tuple(framework for language in LANGUAGES.values() for framework in language.frameworks),
    comments=("//", "/*", "*", "--"),
)
_BY_SUFFIX = {
    suffix: language
    for language, suffixes in (
        (python.LANGUAGE, python.SUFFIXES),
        (javascript.LANGUAGE, javascript.SUFFIXES),
        (go.LANGUAGE, go.SUFFIXES),
        (rust.LANGUAGE, rust.SUFFIXES),
        (java.LANGUAGE, java.SUFFIXES),
        (ruby.LANGUAGE, ruby.SUFFIXES),
    )
    for suffix in suffixes
}


@lru_cache(maxsize=256)
def analyser_for(path: str) -> Language:
    """The analyser for a file, chosen by its suffix; unknown suffixes get every framework at once."""
    name = path.rsplit("/", 1)[-1]
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return _BY_SUFFIX.get(suffix, OTHER)

"""Per-repository path rules: detection from a repository's own config, staff settings, and the gates judging
with them (goals/repopaths.py, gates.run_gates(paths=...))."""

from __future__ import annotations

import json

import pytest

from goals import gates
from goals.diffs import parse_diff
from goals.lint import Contract
from goals.repopaths import MAX_CONFIG_BYTES, MAX_PATTERNS, PathSetting, RepoPaths, detect, parse_patterns


def detected(files: dict[str, str]) -> RepoPaths:
    return detect(files.get)


def edit_diff(path: str, old: str = "a = 1", new: str = "a = 2") -> str:
    return f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n"


def fired(diff: str, paths: RepoPaths | None = None) -> dict[str, list[str]]:
    findings = gates.run_gates(Contract(), gates.Step(diff=parse_diff(diff)), paths=paths)
    found: dict[str, list[str]] = {}
    for finding in findings:
        if finding.severity in (gates.APPROVAL, gates.STOP):
            found.setdefault(finding.gate, []).append(finding.reason)
    return found


# --- detection ------------------------------------------------------------------------------------------------

PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["testing", "src"]\npython_files = ["check_*.py"]\n'


@pytest.mark.parametrize(
    ("files", "path", "category"),
    [
        pytest.param({"pyproject.toml": PYPROJECT}, "testing/helpers.py", "test", id="pyproject-testpaths-folder"),
        pytest.param({"pyproject.toml": PYPROJECT}, "src/pkg/check_io.py", "test", id="pyproject-python-files"),
        pytest.param({"pyproject.toml": PYPROJECT}, "src/pkg/io.py", "code", id="testpaths-src-is-not-all-tests"),
        pytest.param(
            {"pytest.ini": "[pytest]\ntestpaths = itests\n"}, "itests/run.py", "test", id="pytest-ini-testpaths"
        ),
        pytest.param({"setup.cfg": "[tool:pytest]\ntestpaths = qa/itest\n"}, "qa/itest/x.py", "test", id="setup-cfg"),
        pytest.param({"tox.ini": "[pytest]\ntestpaths = checks_test\n"}, "checks_test/a.py", "test", id="tox-ini"),
        pytest.param(
            {"package.json": json.dumps({"scripts": {"test": "mocha --reporter spec e2e-tests/"}})},
            "e2e-tests/login.js",
            "test",
            id="package-json-test-script-folder",
        ),
        pytest.param(
            {"package.json": json.dumps({"scripts": {"test": "mocha --reporter spec lib/"}})},
            "spec/x.js",
            "test",
            id="a-reporter-named-spec-is-no-folder-but-spec-is-built-in",
        ),
        pytest.param(
            {"package.json": json.dumps({"jest": {"testMatch": ["**/checks/**/*.[jt]s?(x)"]}})},
            "src/checks/sum.ts",
            "test",
            id="jest-testmatch-extglob",
        ),
        pytest.param(
            {"jest.config.js": "module.exports = {\n  roots: ['<rootDir>/unit-tests'],\n};\n"},
            "unit-tests/a.js",
            "test",
            id="jest-config-js-roots",
        ),
        pytest.param(
            {"vitest.config.ts": "export default defineConfig({ test: { include: ['src/**/*.check.ts'] } })"},
            "src/a/sum.check.ts",
            "test",
            id="vitest-include",
        ),
        pytest.param(
            {".mocharc.yml": "spec:\n  - 'acceptance/**/*.js'\n"}, "acceptance/a.js", "test", id="mocharc-yaml"
        ),
        pytest.param(
            {".gitattributes": "api/gen/** linguist-generated=true\n"}, "api/gen/x.go", "generated", id="linguist-gen"
        ),
        pytest.param(
            {".gitattributes": "lib/extern/** linguist-vendored\n"}, "lib/extern/a.c", "vendored", id="linguist-vend"
        ),
        pytest.param(
            {".gitattributes": "*.js linguist-generated\nsrc/*.js -linguist-generated\n"},
            "src/a.js",
            "code",
            id="gitattributes-unset-takes-back",
        ),
        pytest.param(
            {"package.json": json.dumps({"workspaces": ["packages/*"]})},
            "packages/core/index.js",
            "code",
            id="npm-workspaces-are-own-code",
        ),
        pytest.param(
            {"pnpm-workspace.yaml": "packages:\n  - 'packages/*'\n"},
            "packages/core/index.js",
            "code",
            id="pnpm-workspaces-are-own-code",
        ),
        pytest.param(
            {"lerna.json": json.dumps({"packages": ["packages/*"]})}, "packages/a/b.js", "code", id="lerna-packages"
        ),
        pytest.param({}, "packages/core/index.js", "vendored", id="packages-without-evidence-is-vendored"),
        pytest.param(
            {"package.json": json.dumps({"workspaces": ["apps/*"]})},
            "packages/left-pad/index.js",
            "vendored",
            id="packages-outside-the-workspaces-is-vendored",
        ),
    ],
)
def test_detected_rules_classify(files: dict[str, str], path: str, category: str) -> None:
    assert detected(files).classify(path) == category


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["."]\n'}, id="testpaths-dot"),
        pytest.param({"package.json": json.dumps({"jest": {"testMatch": ["**/*"]}})}, id="jest-everything"),
        pytest.param({".gitattributes": "* linguist-vendored\n"}, id="everything-vendored"),
        pytest.param({"pyproject.toml": "[tool.pytest.ini_options\n"}, id="broken-toml"),
        pytest.param({"pyproject.toml": "a = " + "[" * 50_000}, id="deep-toml"),
        pytest.param({"package.json": "[" * 50_000}, id="deep-json"),
        pytest.param({"setup.cfg": "[tool:pytest\nno section"}, id="broken-ini"),
        pytest.param({"pyproject.toml": "\x00\xff"}, id="binary"),
    ],
)
def test_detection_ignores_what_is_too_wide_or_unreadable(files: dict[str, str]) -> None:
    rules = detected(files)
    assert rules.classify("src/app.py") == "code"
    assert rules.classify("lib/index.js") == "code"


def test_detection_is_bounded_on_a_huge_gitattributes() -> None:
    lines = "".join(f"gen{number}/** linguist-generated\n" for number in range(100_000))
    rules = detected({".gitattributes": lines})
    assert len(rules.generated.patterns) <= MAX_PATTERNS
    assert rules.generated.patterns[0] == "gen0/**"


def test_a_reader_that_fails_counts_as_no_file() -> None:
    def broken(path: str) -> str:
        raise OSError("gone")

    assert detect(broken) == RepoPaths()


def test_bytes_are_read_bounded() -> None:
    big = b'{"workspaces": ["packages/*"], "pad": "' + b"x" * (MAX_CONFIG_BYTES * 2) + b'"}'
    assert detect({"package.json": big}.get).workspaces.patterns == ()


def test_the_page_lines_say_where_each_rule_came_from() -> None:
    rules = detected({"pyproject.toml": PYPROJECT, ".gitattributes": "api/gen/** linguist-generated\n"})
    lines = dict(rules.with_staff(vendored="lib/extern/\n# a comment\n").describe())
    assert lines["Tests"] == "testing/, src/**/check_*.py, check_*.py — from pyproject.toml"
    assert lines["Generated"] == "api/gen/** — from .gitattributes"
    assert lines["Vendored"] == "lib/extern/ — set by staff"


def test_staff_patterns_replace_detected_ones_and_blank_keeps_them() -> None:
    rules = detected({"pyproject.toml": PYPROJECT})
    assert rules.with_staff(tests="").tests == rules.tests
    staffed = rules.with_staff(tests="qa/\n")
    assert staffed.tests == PathSetting(("qa/",), ("set by staff",))
    assert staffed.classify("qa/x.py") == "test"
    assert staffed.classify("testing/helpers.py") == "test"  # built in, whatever staff says


def test_staff_can_say_packages_is_the_projects_own_code() -> None:
    assert RepoPaths().classify("packages/core/app.py") == "vendored"
    assert RepoPaths().with_staff(vendored="!packages/\n").classify("packages/core/app.py") == "code"


def test_rules_round_trip_through_json_and_survive_junk() -> None:
    rules = detected({"pyproject.toml": PYPROJECT, "package.json": json.dumps({"workspaces": ["packages/*"]})})
    assert RepoPaths.from_dict(json.loads(json.dumps(rules.as_dict()))) == rules
    assert RepoPaths.from_dict({"tests": {"patterns": [1, None, "ok/"], "sources": "x"}}).tests.patterns == ("ok/",)
    assert RepoPaths.from_dict("junk") == RepoPaths()


def test_staff_text_is_parsed_one_pattern_a_line() -> None:
    assert parse_patterns("  a/\n\n# no\nb/**\na/\n") == ("a/", "b/**")


# --- the gates with the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["setuptools/_vendor/packaging/version.py", "third_party/zlib/inflate.c", "packages/pad/index.js", "vendor/x.go"],
)
def test_a_vendored_file_stops_with_a_reason_that_says_what_to_do(path: str) -> None:
    reasons = fired(edit_diff(path))["protected_path"]
    assert reasons == [f"Vendored file changed: {path} (update the vendored copy from upstream instead)"]


def test_a_workspace_package_is_the_projects_own_code() -> None:
    rules = detected({"package.json": json.dumps({"workspaces": ["packages/*"]})})
    assert "protected_path" not in fired(edit_diff("packages/pad/index.js"), rules)


def test_a_hand_written_build_probe_is_not_build_output() -> None:
    assert "protected_path" not in fired(edit_diff("build/probe.rs"))


def test_a_generated_path_from_gitattributes_stops() -> None:
    rules = detected({".gitattributes": "api/gen/** linguist-generated\n"})
    assert "protected_path" not in fired(edit_diff("api/gen/client.go"))
    assert fired(edit_diff("api/gen/client.go"), rules)["protected_path"][0].startswith("Generated file changed")


def test_a_test_folder_from_pyproject_counts_as_tests() -> None:
    rules = detected({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["integration_tests"]\n'})
    diff = edit_diff("integration_tests/run_case.py", "    assert total == 3", "    pass")
    assert "tests_without_code" not in fired(diff)
    assert "tests_without_code" in fired(diff, rules)


def test_editing_a_rules_file_is_noted_and_changes_nothing_for_that_step() -> None:
    # The agent marks tests/ generated and vendored and points pytest elsewhere, while loosening a test: the
    # rules come from the base commit, so the weakened test is still a test and still asks a person.
    rules = detected({"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'})
    diff = (
        edit_diff(".gitattributes", "*.png binary", "tests/** linguist-generated linguist-vendored")
        + edit_diff("pyproject.toml", 'testpaths = ["tests"]', 'testpaths = ["nothing"]')
        + edit_diff("tests/test_total.py", "    assert total(1) == 3", "    pass")
    )
    findings = gates.run_gates(Contract(), gates.Step(diff=parse_diff(diff)), paths=rules)
    notes = [finding for finding in findings if finding.data.get("why") == "rules_config"]
    assert [(note.path, note.severity) for note in notes] == [(".gitattributes", "info"), ("pyproject.toml", "info")]
    loud = {finding.gate for finding in findings if finding.severity in (gates.APPROVAL, gates.STOP)}
    assert "tests_without_code" in loud
    assert not any(finding.data.get("why") in ("vendored", "generated") for finding in findings)

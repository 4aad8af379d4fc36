import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest

from goals import evidence
from goals.evidence import EvidenceRun, parse_junit_xml, parse_pytest_summary, run_check, run_checks
from goals.sandbox import Box, Limits, Session, identity, reachable, scrubbed_env

NO_COUNTS = ({}, ())
LIMITS = Limits(cpu_seconds=60, memory_mb=512, processes=128, file_size_mb=1, disk_mb=256, tmp_mb=64)
SAMPLE_TESTS = """\
import pytest


def test_ok():
    assert True


def test_bad():
    assert 1 == 2


@pytest.mark.skip(reason="later")
def test_later():
    pass
"""
PYTEST = f"{shlex.quote(sys.executable)} -m pytest -q -p no:cacheprovider"
# A plugin-free pytest: the tiny project must not pick up the plugins installed for Goalpost itself.
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def counts(passed=0, failed=0, skipped=0, errors=0, **more) -> dict:
    return {"passed": passed, "failed": failed, "skipped": skipped, "errors": errors, **more}


def marker() -> str:
    """A sleep duration no other process on the machine uses, to find the processes a command left."""
    return f"3600.{uuid.uuid4().int % 10**9:09d}"


def processes_with(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        if process.info["status"] != psutil.STATUS_ZOMBIE and text in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def left_over(text: str, timeout_s: float = 10) -> list[psutil.Process]:
    """The processes still alive with ``text`` in their command line, once the deadline has passed."""
    deadline = time.monotonic() + timeout_s
    while (alive := processes_with(text)) and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=0.1)
    return processes_with(text)


class Place(NamedTuple):
    cwd: Path
    options: dict


@pytest.fixture(params=["plain", "sandboxed"])
def place(request, tmp_path):
    """Each test runs as is and in a sandbox session (skipped when bubblewrap cannot run here)."""
    if request.param == "plain":
        yield Place(tmp_path, {})
        return
    worktree = request.getfixturevalue("box_worktree")
    with Session(Box(worktree, limits=LIMITS)) as session:
        yield Place(worktree, {"session": session})


# --- running commands ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected_exit", "passed", "summary"),
    [
        pytest.param("exit 0", 0, True, "exit 0", id="success"),
        pytest.param("echo broken >&2; exit 2", 0, False, "exit 2 (expected 0)", id="failure"),
        pytest.param("exit 2", 2, True, "exit 2", id="expected-failure"),
        pytest.param("true", 1, False, "exit 0 (expected 1)", id="unexpected-success"),
        pytest.param("kill -9 $$", 0, False, "exit 137 (expected 0)", id="killed-by-a-signal"),
        pytest.param("no-such-command-xyz", 0, False, "exit 127 (expected 0)", id="command-not-found"),
    ],
)
def test_the_exit_code_is_judged_against_the_expected_one(place, command, expected_exit, passed, summary):
    run = run_check(command, place.cwd, expected_exit=expected_exit, **place.options)
    assert (run.passed, run.timed_out, run.summary()) == (passed, False, summary)
    assert run.exit_code == int(summary.split()[1])
    assert (run.counts, run.failing_tests) == NO_COUNTS


def test_the_output_holds_stdout_and_stderr_in_order(place):
    run = run_check("echo one; echo two >&2; echo three", place.cwd, **place.options)
    assert run.output == "one\ntwo\nthree\n"
    assert run.name == run.command == "echo one; echo two >&2; echo three"


def test_a_timeout_kills_the_command_and_everything_it_started(place):
    sleep = marker()
    command = (
        f"trap '' TERM; bash -c \"trap '' TERM; sleep {sleep}\" & (sleep {sleep} &) ; "
        f"sleep {sleep} & echo started; wait"
    )
    run = run_check(command, place.cwd, timeout_s=1, **place.options)

    assert (run.timed_out, run.exit_code, run.passed) == (True, None, False)
    assert run.output == "started\n"
    assert 1 <= run.duration_s < 10
    assert run.summary() == f"timed out after {run.duration_s:.1f} s"  # the time it took, however busy the machine
    assert left_over(sleep) == []


def test_background_processes_do_not_outlive_a_finished_command(place):
    sleep = marker()
    run = run_check(f"sleep {sleep} & echo done", place.cwd, timeout_s=60, **place.options)
    assert (run.passed, run.timed_out, run.output) == (True, False, "done\n")
    assert run.duration_s < 10
    assert left_over(sleep) == []


def test_a_run_stopped_by_a_sandbox_limit_says_which(box_worktree):
    with Session(Box(box_worktree, limits=LIMITS)) as session:
        checks = [
            {"command": "head -c 3000000 /dev/zero > big", "expect_exit": 153},
            {"command": "echo fine"},
        ]
        big, fine = run_checks(checks, box_worktree, session=session)
    assert (big.exit_code, big.passed, big.stopped) == (153, False, big.summary())
    assert big.summary() == "The step tried to write a file larger than 1 MB and was stopped."
    assert big.summary() in big.to_gate().output_tail
    assert (fine.passed, fine.stopped, fine.summary()) == (True, "", "exit 0")


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        pytest.param(1_000, "FIRST\nxxx", id="head-and-tail-kept"),
        pytest.param(200_000, "FIRST\n" + "x" * 100_000 + "\nLAST\n", id="under-the-cap-untouched"),
    ],
)
def test_long_output_is_capped_keeping_head_and_tail(tmp_path, cap, expected):
    command = "echo FIRST; head -c 100000 /dev/zero | tr '\\0' x; echo; echo LAST"
    run = run_check(command, tmp_path, output_cap=cap)
    assert run.output.startswith(expected)
    assert run.output.endswith("xxx\nLAST\n")
    if cap < 100_000:
        assert f"\n… {6 + 100_000 + 1 + 5 - cap} bytes cut …\n" in run.output
        assert len(run.output.encode()) < cap + 100


@pytest.mark.parametrize(
    "variable",
    ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "GITHUB_TOKEN", "ANTHROPIC_API_KEY", "AWS_SECRET_ACCESS_KEY"],
)
def test_the_servers_secrets_do_not_reach_the_command(place, monkeypatch, variable):
    monkeypatch.setenv(variable, "leaked-value")
    run = run_check(f'echo "[${variable}]"', place.cwd, **place.options)
    assert run.output == "[]\n"


def test_an_explicit_environment_is_used_as_given(tmp_path):
    run = run_check('echo "$GOALPOST_STEP $HOME"', tmp_path, env=scrubbed_env({"GOALPOST_STEP": "3"}))
    assert run.output == "3 /tmp\n"


@pytest.mark.parametrize(
    ("folder", "path", "wrap", "message"),
    [
        pytest.param("missing", None, None, "does not exist", id="missing-folder"),
        pytest.param("", "{tmp}", None, "Could not run bash: No such file or directory", id="no-bash"),
        pytest.param(
            "",
            None,
            lambda argv: ["goalpost-no-such-sandbox", *argv],
            "Could not run goalpost-no-such-sandbox",
            id="missing-wrapper",
        ),
    ],
)
def test_a_command_that_cannot_start_is_a_failed_run_not_an_error(tmp_path, folder, path, wrap, message):
    env = {"PATH": path.format(tmp=tmp_path)} if path else None
    run = run_check("true", tmp_path / folder, env=env, wrap=wrap)
    assert (run.exit_code, run.passed, run.timed_out) == (None, False, False)
    assert message in run.output
    assert run.summary() == f"did not run: {run.output}"


# --- reading test results --------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    return tmp_path


@pytest.mark.parametrize(
    ("arguments", "source", "failing", "summary"),
    [
        pytest.param("", "pytest", "test_sample.py::test_bad", "pytest 1 passed, 1 failed, 1 skipped", id="summary"),
        pytest.param(
            "--junitxml=report.xml",
            "junit",
            "test_sample.test_bad",
            "JUnit 1 passed, 1 failed, 1 skipped",
            id="junit",
        ),
        pytest.param(
            "--junit-xml reports/out.xml",
            "junit",
            "test_sample.test_bad",
            "JUnit 1 passed, 1 failed, 1 skipped",
            id="junit-spelled-apart",
        ),
    ],
)
def test_a_real_pytest_run_gives_counts_and_failing_tests(place, arguments, source, failing, summary):
    if place.options and not identity().switched and not reachable(Path(sys.executable).resolve(), identity()):
        pytest.skip(f"the sandbox user cannot reach this Python ({Path(sys.executable).resolve()})")
    (place.cwd / "test_sample.py").write_text(SAMPLE_TESTS)
    run = run_check(f"{PYTEST} {arguments}", place.cwd, env=scrubbed_env(PYTEST_ENV), **place.options)

    assert (run.exit_code, run.passed) == (1, False), run.output
    assert run.counts == counts(passed=1, failed=1, skipped=1)
    assert run.failing_tests == (failing,)
    assert run.counts_from == source
    assert run.summary() == summary


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(lambda project: None, id="report-not-written"),
        pytest.param(lambda project: (project / "report.xml").write_text("<testsuite"), id="report-broken"),
        pytest.param(
            lambda project: (
                (project / "report.xml").write_text(
                    '<testsuite><testcase name="old"><failure/></testcase></testsuite>'
                ),
                os.utime(project / "report.xml", (time.time() - 3600, time.time() - 3600)),
            ),
            id="report-from-an-earlier-run",
        ),
    ],
)
def test_a_junit_report_that_says_nothing_about_this_run_is_ignored(project, setup):
    setup(project)
    run = run_check(f"echo --junitxml=report.xml; {PYTEST}", project, env=scrubbed_env(PYTEST_ENV))
    assert run.counts_from == "pytest"
    assert run.failing_tests == ("test_sample.py::test_bad",)


def test_a_junit_report_outside_the_folder_is_not_read(tmp_path):
    (tmp_path / "outside.xml").write_text('<testsuite><testcase name="a"/></testsuite>')
    (tmp_path / "project").mkdir()
    run = run_check("echo --junitxml=../outside.xml", tmp_path / "project")
    assert (run.counts, run.failing_tests, run.counts_from) == ({}, (), "")


def test_run_checks_runs_the_command_checks_of_a_goal(tmp_path):
    checks = [
        {"kind": "command", "command": "exit 0", "expect_exit": 0, "description": "Smoke test"},
        {"kind": "manual", "command": "", "expect_exit": 0, "description": "The table looks the same"},
        {"kind": "command", "command": "exit 3", "expect_exit": 3, "description": ""},
        {"kind": "command", "command": "exit 1", "expect_exit": None},
        {"kind": "command", "command": "  ", "expect_exit": 0, "description": "nothing to run"},
    ]
    runs = run_checks(checks, tmp_path, timeout_s=30)
    assert [(run.name, run.expected_exit, run.passed) for run in runs] == [
        ("Smoke test", 0, True),
        ("exit 3", 3, True),
        ("exit 1", 0, False),
    ]


def test_a_run_is_stored_as_json(tmp_path):
    run = run_check("echo 'FAILED t.py::test_x - boom'; echo '1 failed in 0.1s'; exit 1", tmp_path)
    data = json.loads(json.dumps(run.as_dict()))
    assert data["failing_tests"] == ["t.py::test_x"]
    assert data["counts"] == counts(failed=1)
    assert EvidenceRun(**{**data, "failing_tests": tuple(data["failing_tests"])}) == run


def test_a_run_becomes_gate_evidence(tmp_path):
    gates = pytest.importorskip("goals.gates")
    run = run_check("echo 'FAILED t.py::test_x - boom'; echo '1 failed in 0.1s'; exit 1", tmp_path)
    result = run.to_gate()
    assert isinstance(result, gates.EvidenceResult)
    assert (result.exit_code, result.expected_exit, result.passed, result.timed_out) == (1, 0, False, False)
    assert result.failing_tests == ("t.py::test_x",)
    assert result.output_tail == run.output
    assert gates.failure_signature([result]) == "t.py::test_x"


# --- parsers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param("=== 41 passed, 1 failed in 2.30s ===", counts(passed=41, failed=1), id="plain"),
        pytest.param("1 failed, 41 passed in 0.12s", counts(passed=41, failed=1), id="quiet"),
        pytest.param(
            "==== 2 failed, 3 passed, 1 skipped, 4 warnings, 1 error in 1.23s (0:00:01) ====",
            counts(passed=3, failed=2, skipped=1, errors=1, warnings=4),
            id="everything",
        ),
        pytest.param("== 3 errors in 0.50s ==", counts(errors=3), id="collection-errors"),
        pytest.param("=== no tests ran in 0.01s ===", counts(), id="no-tests"),
        pytest.param(
            "5 passed, 2 deselected, 1 xfailed, 1 xpassed in 0.30s",
            counts(passed=5, deselected=2, xfailed=1, xpassed=1),
            id="deselected-and-xfail",
        ),
        pytest.param("=== 1 passed in 0.01 seconds ===", counts(passed=1), id="old-pytest"),
        pytest.param(
            "\x1b[31m=== \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m2 passed\x1b[0m\x1b[31m in 0.10s\x1b[0m\x1b[31m ===\x1b[0m",
            counts(passed=2, failed=1),
            id="colour",
        ),
        pytest.param(
            "3 passed in 0.1s\nlater output\n1 failed, 2 passed in 0.2s\n",
            counts(passed=2, failed=1),
            id="the-last-summary-wins",
        ),
        pytest.param("Ran 3 tests in 0.001s\n\nOK", {}, id="unittest-is-not-pytest"),
        pytest.param("make: *** [test] Error 2", {}, id="no-summary"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_pytest_summary_counts(output, expected):
    assert parse_pytest_summary(output)[0] == expected


@pytest.mark.parametrize(
    ("lines", "failing"),
    [
        pytest.param(
            ["FAILED tests/test_x.py::test_y - AssertionError: boom"],
            ("tests/test_x.py::test_y",),
            id="failed-with-message",
        ),
        pytest.param(
            ["FAILED tests/test_x.py::TestA::test_b"],
            ("tests/test_x.py::TestA::test_b",),
            id="class-without-message",
        ),
        pytest.param(
            ["FAILED t.py::test_p[a - b] - assert [1] == [2]"],
            ("t.py::test_p[a - b]",),
            id="parameters-with-dashes",
        ),
        pytest.param(
            ["ERROR tests/test_x.py::test_z - fixture 'db' not found"],
            ("tests/test_x.py::test_z",),
            id="error-in-setup",
        ),
        pytest.param(["ERROR tests/test_broken.py - ImportError"], ("tests/test_broken.py",), id="collection-error"),
        pytest.param(["ERROR root:app.py:12 something went wrong"], (), id="a-log-line-is-not-a-test"),
        pytest.param(
            ["FAILED t.py::test_a - x", "FAILED t.py::test_a - x", "FAILED t.py::test_b"],
            ("t.py::test_a", "t.py::test_b"),
            id="duplicates-once",
        ),
    ],
)
def test_pytest_failing_test_ids(lines, failing):
    output = "\n".join([*lines, "=== 1 failed in 0.1s ==="])
    assert parse_pytest_summary(output)[1] == failing


def test_failed_lines_without_a_pytest_summary_are_not_trusted():
    assert parse_pytest_summary("FAILED t.py::test_a - boom\nsomething else") == NO_COUNTS


PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="1" failures="1" skipped="1" tests="4">
<testcase classname="tests.test_x" name="test_ok" time="0.001"/>
<testcase classname="tests.test_x" name="test_bad"><failure message="assert 1 == 2">boom</failure></testcase>
<testcase classname="tests.test_x" name="test_later"><skipped type="pytest.skip" message="later"/></testcase>
<testcase classname="tests.test_x" name="test_db"><error message="fixture 'db' not found"/></testcase>
</testsuite></testsuites>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<testsuite><testcase name="&lol2;"/></testsuite>"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            PYTEST_JUNIT,
            (counts(1, 1, 1, 1), ("tests.test_x.test_bad", "tests.test_x.test_db")),
            id="pytest-report",
        ),
        pytest.param(
            '<testsuite><testcase name="a"/><testcase name="b"><failure/></testcase></testsuite>',
            (counts(passed=1, failed=1), ("b",)),
            id="bare-suite-without-classnames",
        ),
        pytest.param(
            '<testsuites><testsuite><testcase classname="A" name="a"/></testsuite>'
            '<testsuite><testcase classname="B" name="b"><error/></testcase></testsuite></testsuites>',
            (counts(passed=1, errors=1), ("B.b",)),
            id="several-suites-summed",
        ),
        pytest.param("<testsuites/>", (counts(), ()), id="no-tests"),
        pytest.param(
            "\ufeff" + PYTEST_JUNIT,
            (counts(1, 1, 1, 1), ("tests.test_x.test_bad", "tests.test_x.test_db")),
            id="byte-order-mark",
        ),
        pytest.param(
            '<?xml version="1.0" encoding="ISO-8859-1"?><testsuite><testcase name="café"/></testsuite>',
            (counts(passed=1), ()),
            id="declared-latin-1",
        ),
        pytest.param("<testsuite><testcase", NO_COUNTS, id="malformed"),
        pytest.param("<html><body>not a report</body></html>", NO_COUNTS, id="not-junit"),
        pytest.param(BILLION_LAUGHS, NO_COUNTS, id="doctype-refused"),
        pytest.param('<!ENTITY x SYSTEM "file:///etc/passwd"><testsuite/>', NO_COUNTS, id="entity-refused"),
        pytest.param("", NO_COUNTS, id="empty"),
        pytest.param("\x00\xff garbage", NO_COUNTS, id="garbage"),
    ],
)
def test_junit_xml(text, expected):
    assert parse_junit_xml(text) == expected


def test_a_junit_report_over_the_size_cap_is_ignored(monkeypatch):
    monkeypatch.setattr(evidence, "JUNIT_MAX_BYTES", 100)
    assert parse_junit_xml("<testsuite>" + " " * 100 + "</testsuite>") == NO_COUNTS

"""The first screen's words: the ask in one sentence and the failing checks with their real message."""

import pytest

from approvals.briefing import ask_sentence, failing_checks, files_phrase, ordered_findings
from tests.factories import finding, run_record

WEAKENED = finding(gate="tests_weakened")
HIGH_RISK = finding(reason="High-risk goal: every step is reviewed", gate="risk")


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"),
    [
        pytest.param(
            "step",
            {"step_number": 3, "paths": ["api/a.py", "api/b.py", "api/c.py", "api/d.py"], "findings": [WEAKENED]},
            "Approve step 3: 4 files in api/ — tests weakened",
            id="a step names its files, folder and gates",
        ),
        pytest.param(
            "step",
            {"step_number": 2, "paths": ["app.py"], "findings": [WEAKENED, HIGH_RISK], "failing": 3},
            "Approve step 2: 1 file: app.py — 3 checks failing, tests weakened",
            id="failing checks come first and the high-risk note is left out",
        ),
        pytest.param(
            "plan",
            {
                "step_number": 1,
                "paths": [f"shop/m{n}.py" for n in range(7)],
                "findings": [finding(gate="blast_radius")],
            },
            "Approve the plan for step 1: 7 files in shop/ — many files",
            id="a plan request",
        ),
        pytest.param("done", {"step_number": 4}, "Accept the goal as done after step 4", id="a done review"),
        pytest.param(
            "step",
            {"agent": "Claude Code", "tool": "Bash", "what": "npm test", "failing": 1},
            "Allow Claude Code to run Bash: npm test — 1 check failing",
            id="a call of an agent elsewhere",
        ),
        pytest.param("budget", {}, "Extend the budget or stop the goal", id="a budget request"),
    ],
)
def test_ask_sentence(kind, kwargs, expected):
    assert ask_sentence(kind, **kwargs) == expected


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        pytest.param([], "", id="none"),
        pytest.param(["api/v1/a.py", "api/v2/b.py"], "2 files in api/", id="one top folder"),
        pytest.param(["README.md", "api/a.py", "web/b.js"], "3 files in 3 folders", id="several folders"),
    ],
)
def test_files_phrase(paths, expected):
    assert files_phrase(paths) == expected


@pytest.mark.parametrize(
    ("run", "name", "message"),
    [
        pytest.param(
            run_record(
                passed=False, name="unit tests", summary="exit 127 (expected 0)", output="sh: 1: pytset: not found\n"
            ),  # fmt: skip
            "unit tests",
            "sh: 1: pytset: not found",
            id="a command that is not found says so, not exit 127",
        ),
        pytest.param(
            run_record(
                passed=False,
                summary="pytest 41 passed, 1 failed",
                output="E   AssertionError: 3 != 4\nFAILED tests/test_x.py::test_y\n1 failed, 41 passed in 2.1s\n",
            ),  # fmt: skip
            "pytest",
            "pytest 41 passed, 1 failed — E AssertionError: 3 != 4",
            id="the counts and the error line keep their real numbers",
        ),
        pytest.param(
            run_record(passed=False, summary="exit 1 (expected 0)", output="E   AssertionError: 3 != 4\n"),
            "pytest",
            "E AssertionError: 3 != 4",
            id="never the normalised N != N",
        ),
        pytest.param(
            {**run_record(passed=False, summary="timed out after 60 s"), "timed_out": True},
            "pytest",
            "timed out after 60 s",
            id="a timeout",
        ),
    ],
)
def test_failing_checks_name_the_check_and_its_real_message(run, name, message):
    [check] = failing_checks([run, run_record(name="ruff")])
    assert (check.name, check.message) == (name, message)


def test_the_high_risk_note_goes_last_and_info_is_left_out():
    info = finding(reason="fine", gate="blast_radius", severity="info")
    ordered = ordered_findings([HIGH_RISK, info, WEAKENED])
    assert [f["gate"] for f in ordered] == ["tests_weakened", "risk"]
    assert [f["note"] for f in ordered] == [False, True]

"""Does an evidence command name something that runs where it will run: the word read from the command (pure),
the probe in a folder and in the real sandbox, and the done review's before and after (pure)."""

import os
import sys

import pytest

from goals import evidence, sandbox
from goals.evidence import compare_to_baseline, executable_of, unresolved_commands


@pytest.mark.parametrize(
    ("command", "word"),
    [
        ("run the tests", "run"),
        ("pytest -q tests", "pytest"),
        ("FOO=1 BAR='a b' pytest -q", "pytest"),
        ("env -i HOME=/tmp make test", "make"),
        ("time npm test", "npm"),
        ("sh -c 'run tests'", "run"),
        ("bash -c 'cd api && make'", "cd"),
        ("sh -c ''", "sh"),
        ("./scripts/check.sh --fast", "./scripts/check.sh"),
        (".venv/bin/pytest", ".venv/bin/pytest"),
        ("node_modules/.bin/jest --ci", "node_modules/.bin/jest"),
        ("make test && echo ok", "make"),
        ("pytest|tee out", "pytest"),
        # Shell syntax and expansions: only a run can read them.
        ("(cd api && make)", ""),
        ("$PYTHON -m pytest", ""),
        ("if true; then pytest; fi", ""),
        ("unterminated 'quote", ""),
        ("FOO=1", ""),
    ],
)
def test_the_word_that_names_what_runs(command, word):
    assert executable_of(command) == word


@pytest.fixture
def checkout(tmp_path):
    folder = tmp_path / "checkout"
    (folder / "scripts").mkdir(parents=True)
    (folder / "scripts" / "check.sh").write_text("#!/bin/sh\nexit 0\n")
    (folder / "scripts" / "check.sh").chmod(0o755)
    (folder / "scripts" / "plain.sh").write_text("exit 0\n")
    return folder


def test_commands_that_resolve_say_nothing_and_the_others_say_why(checkout):
    commands = ["run the tests", "ls -l", "./scripts/check.sh", "./scripts/plain.sh", "./scripts/gone.sh", "cd x"]
    found = unresolved_commands(commands, checkout)
    assert set(found) == {"run the tests", "./scripts/plain.sh", "./scripts/gone.sh"}
    assert found["run the tests"] == (
        f"`run` is not a command here: no executable named run in the sandbox (PATH {os.environ['PATH']}). "
        "Write the command you would type, or mark it a manual check."
    )
    assert "is not executable" in found["./scripts/plain.sh"] and "sh ./scripts/plain.sh" in found["./scripts/plain.sh"]
    assert "in the repository's checkout" in found["./scripts/gone.sh"]


def test_a_hostile_command_word_is_only_ever_a_word(checkout):
    """The probe quotes each word: a command whose first word is crafted to break out of the probe runs nothing."""
    marker = checkout / "pwned"
    hostile = f"'x\ntouch {marker}'"
    assert executable_of(hostile) == f"x\ntouch {marker}"
    found = unresolved_commands([hostile], checkout)
    assert list(found) == [hostile]
    assert not marker.exists()


def test_nothing_to_resolve_runs_no_probe(checkout):
    assert unresolved_commands(["$PY -m pytest", "(make)"], checkout) == {}


def test_in_the_sandbox_the_box_path_and_the_checkout_decide(box_worktree):
    """Inside the real bubblewrap box: the server's own Python resolves (it is bound in), a tool that exists only
    outside the box does not, and a script of the checkout resolves from the checkout."""
    script = box_worktree / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    hidden = "/root/.goalpost-test-only-tool"
    commands = [f"{sys.executable} -V", "./check.sh", hidden, "not-a-tool-anywhere"]
    with sandbox.Session(sandbox.Box(box_worktree)) as session:
        found = unresolved_commands(commands, box_worktree, session=session)
    assert set(found) == {hidden, "not-a-tool-anywhere"}
    assert found["not-a-tool-anywhere"].startswith(
        "`not-a-tool-anywhere` is not a command here: no executable named not-a-tool-anywhere in the sandbox (PATH "
    )


@pytest.mark.parametrize(
    ("before", "after", "line", "fixed", "broken"),
    [
        pytest.param(
            [
                {"command": "a", "passed": False, "failing_tests": ["t::rounding"]},
                {"command": "b", "passed": True},
                {"command": "c", "passed": True},
            ],
            [{"command": "a", "passed": True}, {"command": "b", "passed": True}, {"command": "c", "passed": True}],
            "before: 1 failing; after: all 3 pass",
            ["t::rounding"],
            [],
            id="one-fixed",
        ),
        pytest.param(
            [{"command": "a", "passed": True}],
            [{"command": "a", "passed": False, "failing_tests": ["t::new"]}],
            "before: all 1 pass; after: 1 failing",
            [],
            ["t::new"],
            id="one-broken",
        ),
        pytest.param(
            [{"command": "a", "passed": False, "name": "a"}],
            [{"command": "a", "passed": False, "name": "a"}],
            "before: 1 failing; after: 1 failing",
            [],
            [],
            id="still-failing",
        ),
        pytest.param(
            [{"command": "a", "passed": True}],
            [],
            "before: all 1 pass; after: no checks",
            [],
            [],
            id="no-after",
        ),
    ],
)
def test_before_and_after(before, after, line, fixed, broken):
    compared = compare_to_baseline(before, after)
    assert (compared["line"], compared["fixed"], compared["broken"]) == (line, fixed, broken)


def test_the_resolution_probe_is_bounded_in_time():
    assert evidence.RESOLVE_TIMEOUT_S <= 60

"""The first screen of a request: what is asked in one sentence, and the failing checks by name with their real
message. Pure: dicts in (the request's kind, findings, files and evidence runs as stored), words out."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from goals.gates import error_line

MESSAGE_LIMIT = 200
BARE_EXIT = re.compile(r"^exit -?\d+( \(expected -?\d+\))?$")
FINAL_COUNTS = re.compile(r"\b\d+ (?:passed|failed|errors?)\b.* in \d+(?:\.\d+)? ?s")
# Findings that say how the goal is reviewed rather than what is wrong with this step: shown after the others,
# as a note, never as the news above a failing check.
NOTE_GATES = frozenset({"risk"})
GATE_WORDS = {
    "blast_radius": "many files",
    "protected_path": "protected path",
    "tests_without_code": "tests without code",
    "tests_weakened": "tests weakened",
    "repeated_failure": "same failure again",
    "follow_up": "a separate bug",
    "budget": "budget used up",
    "diff_unreadable": "unreadable diff",
}


@dataclass(frozen=True)
class FailingCheck:
    name: str
    message: str  # the real error line, numbers and paths kept
    tests: tuple[str, ...] = ()


def failing_checks(runs: Iterable[dict]) -> list[FailingCheck]:
    """The checks that failed, each by its name and the line of its output that says why: `sh: 1: pytset: not
    found` rather than `exit 127`, `AssertionError: 3 != 4` rather than the normalised `N != N`."""
    failing = []
    for run in runs:
        if not isinstance(run, dict) or (run.get("passed") and not run.get("timed_out")):
            continue
        name = str(run.get("name") or run.get("command") or "check")
        output = str(run.get("output") or run.get("output_tail") or "")
        summary = str(run.get("summary") or "")
        if run.get("stopped"):
            message = str(run["stopped"])
        elif run.get("timed_out"):
            message = summary or "timed out"
        else:
            message = _real_message(summary, error_line(output, normalised=False))
        tests = tuple(str(test) for test in run.get("failing_tests") or () if str(test).strip())
        failing.append(FailingCheck(name=name, message=message[:MESSAGE_LIMIT], tests=tests[:5]))
    return failing


def _real_message(summary: str, error: str) -> str:
    """The run's own words: its test counts when it has them, then the line that names the error. A bare
    "exit 127" says nothing a person can act on, and a closing "3 passed in 0.2s" line adds nothing to counts."""
    counted = summary if summary and not BARE_EXIT.match(summary) else ""
    if FINAL_COUNTS.search(error):
        error = ""
    return " — ".join(part for part in (counted, error) if part) or summary or "failed"


def files_phrase(paths: list[str]) -> str:
    """ "4 files in api/", "1 file: README.md", "6 files in 3 folders"; "" for none."""
    paths = [path for path in paths if path]
    if not paths:
        return ""
    if len(paths) == 1:
        return f"1 file: {paths[0]}"
    folders = {path.rsplit("/", 1)[0] + "/" if "/" in path else "./" for path in paths}
    tops = {path.split("/", 1)[0] + "/" if "/" in path else "./" for path in paths}
    count = f"{len(paths)} files"
    if len(folders) == 1:
        return f"{count} in {folders.pop()}"
    if len(tops) == 1 and tops != {"./"}:
        return f"{count} in {tops.pop()}"
    return f"{count} in {len(tops)} folders"


def gate_words(findings: Iterable[dict]) -> list[str]:
    """The gates that asked, in a few words each, most serious first, without the review notes."""
    words: list[str] = []
    for finding in findings:
        if not isinstance(finding, dict) or finding.get("severity") == "info":
            continue
        gate = str(finding.get("gate") or "")
        if gate in NOTE_GATES:
            continue
        word = GATE_WORDS.get(gate, gate.replace("_", " "))
        if word and word not in words:
            words.append(word)
    return words


def ask_sentence(
    kind: str,
    *,
    step_number: int | None = None,
    paths: list[str] | None = None,
    findings: Iterable[dict] = (),
    failing: int = 0,
    agent: str = "",
    tool: str = "",
    what: str = "",
) -> str:
    """What the request asks of the person, in one sentence: "Approve step 3: 4 files in api/ — tests weakened".

    ``agent``/``tool``/``what`` describe an agent elsewhere's call (the command or the files it writes)."""
    step = f"step {step_number}" if step_number else ""
    files = files_phrase(list(paths or ()))
    if agent.startswith(("An ", "A ")):
        agent = agent[0].lower() + agent[1:]  # "Allow an agent (API) to run Write"
    if tool:
        head = f"Allow {agent or 'the agent'} to run {tool}" + (f": {what}" if what else "")
    elif kind == "plan":
        head = f"Approve the plan for {step or 'the next step'}" + (f": {files}" if files else "")
    elif kind == "done":
        head = "Accept the goal as done" + (f" after {step}" if step else "")
    elif kind == "budget":
        head = "Extend the budget or stop the goal"
    elif kind == "stall":
        head = "The goal stalled: let it go on, or stop it"
    elif kind == "follow_up":
        head = "Approve a follow-up goal for a separate bug"
    elif kind == "stop":
        head = f"Accept what {agent or 'the agent'} changed, or keep the goal stopped"
    else:
        head = f"Approve {step or 'this step'}" + (f": {files}" if files else "")
    tail = gate_words(findings)
    if failing:
        tail.insert(0, f"{failing} check{'s' if failing != 1 else ''} failing")
    return head + (f" — {', '.join(tail)}" if tail else "")


def ordered_findings(findings: list[dict]) -> list[dict]:
    """The findings as the page lists them: what is wrong first, review notes (a high-risk goal) last, each
    marked ``note``."""
    shown = [finding for finding in findings if isinstance(finding, dict) and finding.get("severity") != "info"]
    return [
        {**finding, "note": finding.get("gate") in NOTE_GATES}
        for finding in sorted(shown, key=lambda finding: finding.get("gate") in NOTE_GATES)
    ]

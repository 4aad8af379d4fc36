"""Run a goal's evidence commands after a step and read what they say: exit code, output, test counts.

No Django here: the loop passes the worktree, the environment and (when bubblewrap works) a sandbox
``Session`` (or, the older way, a ``wrap`` that turns the command line into a sandboxed one).
"""

import contextlib
import os
import re
import selectors
import shlex
import signal
import subprocess
import time
import xml.etree.ElementTree as ET  # DOCTYPE and ENTITY are refused before parsing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from goals.sandbox import Session, scrubbed_env

OUTPUT_TAIL_CHARS = 20_000
JUNIT_MAX_BYTES = 20_000_000
READ_CHUNK = 65_536
POLL_S = 0.1
# After the command itself exits, how long its background children may go on writing before they are killed.
LINGER_S = 0.5
BASE_COUNTS = ("passed", "failed", "skipped", "errors")
SHOWN_COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
COUNT_NAMES = {"error": "errors", "warning": "warnings"}

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_PYTEST_FINAL = re.compile(r"^(?P<body>.*?),? in \d+(?:\.\d+)? ?s(?:econds)?\b")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?|rerun)")
_PYTEST_COUNTS = re.compile(rf"{_PYTEST_COUNT.pattern}(?:, {_PYTEST_COUNT.pattern})*")
# A node id has no spaces except inside its [parameters]; " - " starts the message.
_PYTEST_FAILURE = re.compile(r"^(?:FAILED|ERROR) (?P<id>[^\s\[]+(?:\[.*?\])?)(?: - .*)?$")
_XML_DECLARATIONS = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True)
class EvidenceRun:
    """What one evidence command did: its exit code against the expected one, a capped copy of its output,
    and the test counts and failing tests found in that output or in a JUnit report it wrote."""

    name: str
    command: str
    expected_exit: int
    exit_code: int | None  # None: it timed out or could not start; 128 + N: killed by signal N
    passed: bool
    timed_out: bool
    duration_s: float
    output: str
    counts: dict = field(default_factory=dict)
    failing_tests: tuple[str, ...] = ()
    counts_from: str = ""  # "pytest" (its summary line), "junit" (an XML report) or "" (none found)
    stopped: str = ""  # the sandbox limit that stopped it, as a sentence ("" when none did)

    def summary(self) -> str:
        """One line for the step page: the limit that stopped it, the test counts, or the exit code, or the
        timeout."""
        if self.stopped:
            return self.stopped
        if self.timed_out:
            return f"timed out after {_seconds(self.duration_s)}"
        if self.exit_code is None:
            first = next((line.strip() for line in self.output.splitlines() if line.strip()), "")
            return f"did not run: {first}" if first else "did not run"
        mismatch = f"exit {self.exit_code} (expected {self.expected_exit})"
        if not self.counts:
            return f"exit {self.exit_code}" if self.passed else mismatch
        shown = [_count_text(self.counts[key], key) for key in SHOWN_COUNTS if self.counts.get(key)]
        text = f"{'JUnit' if self.counts_from == 'junit' else 'pytest'} {', '.join(shown) or 'no tests ran'}"
        explained = self.counts.get("failed") or self.counts.get("errors")
        return text if self.passed or explained else f"{text}; {mismatch}"

    def as_dict(self) -> dict:
        """The run as JSON-ready data, to store on the step."""
        data = asdict(self)
        data["failing_tests"] = list(self.failing_tests)
        return data

    def to_gate(self):
        """The run as the review gates' ``EvidenceResult``."""
        from goals.gates import EvidenceResult

        return EvidenceResult(
            name=self.name,
            command=self.command,
            exit_code=self.exit_code,
            expected_exit=self.expected_exit,
            passed=self.passed,
            failing_tests=self.failing_tests,
            output_tail=(self.output + (f"\n{self.stopped}\n" if self.stopped else ""))[-OUTPUT_TAIL_CHARS:],
            timed_out=self.timed_out,
        )


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def _count_text(number: int, key: str) -> str:
    return f"{number} error" if key == "errors" and number == 1 else f"{number} {key}"


class _CappedOutput:
    """Keeps the first and the last ``cap // 2`` bytes of a stream and counts what falls between."""

    def __init__(self, cap: int):
        self.half = max(cap, 0) // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        if len(self.tail) > self.half:
            del self.tail[: len(self.tail) - self.half]

    def text(self) -> str:
        cut = self.total - len(self.head) - len(self.tail)
        if cut <= 0:
            return (self.head + self.tail).decode("utf-8", "replace")
        head, tail = self.head.decode("utf-8", "replace"), self.tail.decode("utf-8", "replace")
        return f"{head}\n… {cut} bytes cut …\n{tail}"


def _exited(pid: int) -> bool:
    # WNOWAIT leaves the exited leader unreaped, so its pid (the group's id) cannot be reused before the
    # group is killed.
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _collect(process: subprocess.Popen, timeout_s: float, output: _CappedOutput) -> bool:
    """Read the process's output until it ends or the deadline passes; kill its whole process group either
    way (background children included). True when it timed out."""
    deadline = time.monotonic() + timeout_s
    exited_at = None
    timed_out = False
    with process.stdout, selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if exited_at is None and _exited(process.pid):
                exited_at = now
            if exited_at is not None and now - exited_at >= LINGER_S:
                break
            if selector.select(min(deadline - now, POLL_S)):
                chunk = os.read(process.stdout.fileno(), READ_CHUNK)
                if not chunk:
                    break
                output.add(chunk)
        # The output ended (or was closed) but the command may still run: it gets the time that is left.
        selector.unregister(process.stdout)
        while not timed_out and not _exited(process.pid):
            if time.monotonic() >= deadline:
                timed_out = True
            else:
                selector.select(POLL_S)  # no file is registered any more: this only waits
    _kill_group(process.pid)
    process.wait()
    return timed_out


def _shell_exit_code(returncode: int) -> int:
    # Killed by signal N: the shell's 128 + N, which is also what bubblewrap reports for its child.
    return 128 - returncode if returncode < 0 else returncode


def _junit_reports(command: str, cwd: Path) -> list[Path]:
    """The JUnit XML files that the command names (``--junitxml=path``, ``--junit-xml path``) inside cwd."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)  # `;`, `&&`, `|` end a word
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return []
    names = []
    for index, word in enumerate(words):
        option, equals, value = word.partition("=")
        if option not in ("--junitxml", "--junit-xml"):
            continue
        if equals:
            names.append(value)
        elif index + 1 < len(words):
            names.append(words[index + 1])
    root = cwd.resolve()
    paths = [(root / name).resolve() for name in names if name]
    return [path for path in paths if path.is_relative_to(root)]


def _read_junit(paths: list[Path], since: float) -> tuple[dict, tuple[str, ...]]:
    counts: dict = {}
    failing: tuple[str, ...] = ()
    for path in paths:
        try:
            stat = path.stat()
            # A report left from an earlier run says nothing about this one.
            if not path.is_file() or stat.st_size > JUNIT_MAX_BYTES or stat.st_mtime < since:
                continue
            text = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        found, found_failing = parse_junit_xml(text)
        if found:
            counts = {key: counts.get(key, 0) + found.get(key, 0) for key in {*counts, *found}}
            failing += found_failing
    return counts, failing


def run_check(
    command: str,
    cwd: Path,
    *,
    name: str = "",
    expected_exit: int = 0,
    timeout_s: float = 300,
    output_cap: int = 64_000,
    env: dict[str, str] | None = None,
    wrap: Callable[[list[str]], list[str]] | None = None,
    session: Session | None = None,
) -> EvidenceRun:
    """Run ``bash -c command`` in ``cwd`` and judge it against ``expected_exit``; never raises.

    ``env`` is the whole environment (default: ``scrubbed_env()``, without the server's secrets); ``wrap``
    turns the argv into a sandboxed one. With a sandbox ``session`` the command runs in its box instead, in
    ``session.env(env)`` (``env`` then adds to the box's environment), and a limit that stopped it is kept
    in ``stopped``. The command runs in its own process group, which is killed when
    it times out and when it ends (so nothing it started in the background lingers). Test counts come from
    a JUnit report the command names, else from pytest's summary line.
    """
    started, started_wall = time.monotonic(), time.time()
    cwd = Path(cwd)
    argv = ["bash", "-c", command]
    stops_before = len(session.reasons) if session is not None else 0

    def not_run(message: str) -> EvidenceRun:
        return EvidenceRun(
            name=name or command,
            command=command,
            expected_exit=expected_exit,
            exit_code=None,
            passed=False,
            timed_out=False,
            duration_s=time.monotonic() - started,
            output=message,
        )

    if not cwd.is_dir():
        return not_run(f"The folder {cwd} does not exist.")
    try:
        if session is not None:
            argv, env = session.wrap(argv), session.env(env)
        elif wrap is not None:
            argv = wrap(argv)
    except Exception as error:  # a box that cannot be set up is a run that did not happen
        return not_run(f"The sandbox could not run it: {error}")
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=scrubbed_env() if env is None else env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as error:
        return not_run(f"Could not run {argv[0]}: {error.strerror or error}.")
    output = _CappedOutput(output_cap)
    timed_out = _collect(process, timeout_s, output)
    duration_s = round(time.monotonic() - started, 3)
    text = output.text()
    counts, failing = _read_junit(_junit_reports(command, cwd), since=started_wall - 1)
    counts_from = "junit" if counts else ""
    if not counts:
        counts, failing = parse_pytest_summary(text)
        counts_from = "pytest" if counts else ""
    exit_code = None if timed_out else _shell_exit_code(process.returncode)
    stops = session.reasons[stops_before:] if session is not None else []
    return EvidenceRun(
        name=name or command,
        command=command,
        expected_exit=expected_exit,
        exit_code=exit_code,
        passed=exit_code == expected_exit and not stops,
        timed_out=timed_out,
        duration_s=duration_s,
        output=text,
        counts=counts,
        failing_tests=failing,
        counts_from=counts_from,
        stopped=stops[0] if stops else "",
    )


def run_checks(checks: list[dict], cwd: Path, **kwargs) -> list[EvidenceRun]:
    """Run a goal's command checks (as stored on the goal) one after another, each in ``session`` when one
    is given; manual checks are skipped."""
    runs = []
    for check in checks:
        command = str(check.get("command") or "").strip()
        if check.get("kind", "command") != "command" or not command:
            continue
        expected = check.get("expect_exit")
        name = str(check.get("description") or "").strip() or command
        runs.append(
            run_check(command, cwd, name=name, expected_exit=int(expected or 0), **kwargs),
        )
    return runs


def parse_pytest_summary(output: str) -> tuple[dict, tuple[str, ...]]:
    """Counts from pytest's final line (``=== 41 passed, 1 failed in 2.3s ===`` or ``-q``'s
    ``1 failed, 41 passed in 0.1s``) and the node ids of its ``FAILED``/``ERROR`` lines; ``({}, ())``
    when the output has no pytest summary."""
    lines = [_ANSI_ESCAPE.sub("", line).strip() for line in output.splitlines()]
    counts: dict = {}
    for line in reversed(lines):
        match = _PYTEST_FINAL.match(line.strip("= "))
        if not match:
            continue
        body = match.group("body")
        if body == "no tests ran" or _PYTEST_COUNTS.fullmatch(body):
            counts = dict.fromkeys(BASE_COUNTS, 0)
            for number, key in _PYTEST_COUNT.findall(body):
                key = COUNT_NAMES.get(key, key)
                counts[key] = counts.get(key, 0) + int(number)
            break
    if not counts:
        return {}, ()
    failing = []
    for line in lines:
        match = _PYTEST_FAILURE.match(line)
        # Log lines also start with "ERROR"; node ids contain "::" or name a test file.
        if match and ("::" in match.group("id") or match.group("id").endswith(".py")):
            failing.append(match.group("id"))
    return counts, tuple(dict.fromkeys(failing))


def parse_junit_xml(text: str) -> tuple[dict, tuple[str, ...]]:
    """Counts and failing tests (``classname.name``) from a JUnit XML report; ``({}, ())`` for anything
    that is not one (malformed, too large, or declaring a DOCTYPE or entities)."""
    if len(text) > JUNIT_MAX_BYTES or _XML_DECLARATIONS.search(text):
        return {}, ()
    try:
        root = ET.fromstring(text.lstrip("\ufeff \t\r\n"))  # noqa: S314  # see the import
    except (ET.ParseError, ValueError):
        return {}, ()
    if root.tag not in ("testsuites", "testsuite"):
        return {}, ()
    counts = dict.fromkeys(BASE_COUNTS, 0)
    failing = []
    for case in root.iter("testcase"):
        outcomes = {child.tag for child in case}
        name = ".".join(part for part in (case.get("classname"), case.get("name")) if part)
        if "failure" in outcomes or "error" in outcomes:
            counts["failed" if "failure" in outcomes else "errors"] += 1
            failing.append(name)
        elif "skipped" in outcomes:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, tuple(dict.fromkeys(failing))


# --- does each command name something that runs here ----------------------------------------------------------

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
# Words that only prefix the command that follows them.
PREFIXES = frozenset({"time", "exec", "command", "nohup"})
# Shell syntax a command may start with: what follows is not read here, the run says what it does.
SHELL_SYNTAX = frozenset({"(", "{", "!", "[[", "if", "for", "while", "until", "case", "function", "select"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
RESOLVE_TIMEOUT_S = 30
# Printed by the probe run in the box, one line per word: "+" runs, "x" is a file that is not executable, "-" none.
_PROBE = (
    'printf "PATH=%s\\n" "$PATH"; '
    "for w; do "
    'if command -v -- "$w" >/dev/null 2>&1; then echo "+"; '
    'elif [ "${w#*/}" != "$w" ] && [ -e "$w" ]; then echo "x"; '
    'else echo "-"; fi; done'
)


def executable_of(command: str) -> str:
    """The word of ``command`` that names what runs: its first word after variable assignments, ``env`` and
    prefixes like ``time``; inside ``sh -c SCRIPT`` the script's own. "" when the command starts with shell
    syntax or an expansion, which only a run can read."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError:
        return ""
    index = 0
    while index < len(words):
        word = words[index]
        if _ASSIGNMENT.match(word) or word in PREFIXES:
            index += 1
        elif word == "env":
            index += 1
            while index < len(words) and (words[index].startswith("-") or _ASSIGNMENT.match(words[index])):
                index += 1
        else:
            break
    if index >= len(words):
        return ""
    word = words[index]
    if word in SHELL_SYNTAX or any(char in word for char in "$`*?[();&|<>"):
        return ""
    rest = words[index + 1 :]
    if os.path.basename(word) in SHELLS and len(rest) >= 2 and rest[0] == "-c":
        return executable_of(rest[1]) or word
    return word


def not_a_command(word: str, path: str) -> str:
    """Why ``word`` cannot run in the box, and what to do instead, in one sentence for the goal page."""
    where = "in the repository's checkout" if "/" in word else f"in the sandbox (PATH {path or 'empty'})"
    return (
        f"`{word}` is not a command here: no executable named {word} {where}. "
        "Write the command you would type, or mark it a manual check."
    )


def not_executable(word: str) -> str:
    return (
        f"`{word}` is not a command here: {word} is in the repository's checkout but is not executable. "
        f"Make it executable (chmod +x) or run it through its interpreter (sh {word})."
    )


def unresolved_commands(commands: list[str], cwd: Path, **kwargs) -> dict[str, str]:
    """The commands whose executable does not resolve where they would run (``cwd``, in ``session`` when one
    is given, with the same PATH): command → the reason, one sentence. Commands whose first word only a run
    can read are not judged here. ``kwargs`` go to ``run_check`` (``session``, ``env``)."""
    words = {command: executable_of(command) for command in commands}
    asked = list(dict.fromkeys(word for word in words.values() if word))
    if not asked:
        return {}
    probe = f"set -- {' '.join(shlex.quote(word) for word in asked)}; {_PROBE}"
    run = run_check(probe, cwd, name="which commands run here", timeout_s=RESOLVE_TIMEOUT_S, **kwargs)
    lines = run.output.splitlines()
    path = lines[0].removeprefix("PATH=") if lines and lines[0].startswith("PATH=") else ""
    answers = dict(zip(asked, lines[1:], strict=False))
    if run.exit_code != 0 or len(answers) < len(asked):
        return {}  # the probe itself did not run through: the checks' own runs will say why
    found = {}
    for command, word in words.items():
        answer = answers.get(word, "+")
        if answer == "x":
            found[command] = not_executable(word)
        elif answer == "-":
            found[command] = not_a_command(word, path)
    return found


# --- before and after ---------------------------------------------------------------------------------------


def _failing_text(runs: list[dict]) -> str:
    failing = [run for run in runs if not run.get("passed")]
    if not runs:
        return "no checks"
    return f"{len(failing)} failing" if failing else f"all {len(runs)} pass"


def compare_to_baseline(before: list[dict], after: list[dict]) -> dict:
    """The done review's before and after: the baseline's checks (``before``) against the last run of the same
    checks (``after``), matched by command. ``line`` reads "before: 1 failing; after: all 3 pass"; ``fixed``
    and ``broken`` name the checks (and failing tests) that changed side."""

    def failing_names(run: dict) -> list[str]:
        return [str(test) for test in run.get("failing_tests") or []] or [str(run.get("name") or run.get("command"))]

    earlier = {str(run.get("command")): run for run in before}
    fixed, broken = [], []
    for run in after:
        was = earlier.get(str(run.get("command")))
        if was is None:
            continue
        if not was.get("passed") and run.get("passed"):
            fixed += failing_names(was)
        elif was.get("passed") and not run.get("passed"):
            broken += failing_names(run)
    return {
        "line": f"before: {_failing_text(before)}; after: {_failing_text(after)}",
        "before_failing": sum(1 for run in before if not run.get("passed")),
        "after_failing": sum(1 for run in after if not run.get("passed")),
        "checks": len(after),
        "fixed": fixed[:20],
        "broken": broken[:20],
    }

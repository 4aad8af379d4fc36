"""The labelled corpus the review rules are measured on (issue 14): real commits, synthetic diffs, goal statements.

Labels live in ``docs/rules/`` and are committed; the diffs of real commits are not (no code from other
repositories enters ours), so ``rebuild`` recreates them from locally fetched bare copies into a gitignored cache.
``evaluate_*`` runs the very functions the loop runs (``parse_diff`` then ``gates.run_gates``; ``lint.lint``) and
counts agreement with the labels, so a figure here is a figure of the product, not of a copy of it.

Pure apart from reading the label files and the cache and, in ``rebuild`` only, running ``git`` on the mirrors.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from goals import gates, lint, repopaths
from goals.diffs import HEAD_LINES, DiffError, parse_diff

DIFF_GATES = ("blast_radius", "protected_path", "tests_without_code", "tests_weakened")
# The linter measured on its objective rules only: the rest (evidence, budgets, constraints) is the form's job.
OBJECTIVE_RULES = ("objective_missing", "objective_too_wide", "objective_no_target", "vague_verb")
LANGUAGES = ("python", "javascript", "typescript", "go", "rust", "java", "ruby", "other")
SPLITS = ("tune", "held-out")
GOAL_VERDICTS = ("ready", "blocked")
# A gate "fires" when it asks a person: info-level notes are not verdicts.
FIRING = (gates.APPROVAL, gates.STOP)
_SHA = re.compile(r"[0-9a-f]{40}")
_REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_SYNTHETIC_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")
GIT_TIMEOUT = 60
HEAD_BYTES = 8_192


class LabelError(ValueError):
    """A label file that does not say what it must: the line and what is wrong."""


def split_of(key: str) -> str:
    """The split a record belongs to, decided by a hash of its key (a sha or an id) so nobody picks it:
    one in three is held out."""
    return "held-out" if int(hashlib.sha256(key.encode()).hexdigest(), 16) % 3 == 0 else "tune"


@dataclass(frozen=True)
class DiffLabel:
    """One diff with the verdict each diff gate should give. ``key`` is the sha (real) or the file stem
    (synthetic)."""

    key: str
    expected: dict[str, bool]
    why: str
    split: str
    repo: str = ""
    language: str = ""
    kind: str = ""  # synthetic only: the miss or false alarm of the issue this case stands for
    base_files: dict[str, str] = field(default_factory=dict)  # synthetic only: config files of the base tree
    # Synthetic only: the first lines of changed files, what the loop's file_head reads from its worktree (a
    # generated-file marker above the hunks); None judges from the diff alone.
    heads: dict[str, str] | None = None

    @property
    def cache_name(self) -> str:
        return f"{self.repo.replace('/', '+')}+{self.key}.diff"

    @property
    def heads_name(self) -> str:
        """Beside the diff: the first lines of each changed file at the commit, what ``file_head`` gives the
        loop from its worktree (a generated-file marker sits on line 1, rarely inside a hunk)."""
        return f"{self.repo.replace('/', '+')}+{self.key}.heads.json"

    @property
    def config_name(self) -> str:
        """Beside the diff: the few config files of the parent tree that say where tests, generated and vendored
        files are (goals/repopaths.py), what the loop reads from the goal's base commit."""
        return f"{self.repo.replace('/', '+')}+{self.key}.config.json"


@dataclass(frozen=True)
class GoalLabel:
    """A goal statement (our words) and whether the linter's objective rules should block it."""

    key: str
    statement: str
    expected: str
    why: str
    split: str


def _records(path: Path) -> Iterable[tuple[int, dict]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise LabelError(f"{path.name}:{number}: not JSON: {error.msg}") from error
        if not isinstance(record, dict):
            raise LabelError(f"{path.name}:{number}: a record must be an object")
        yield number, record


def _expected(where: str, record: dict) -> dict[str, bool]:
    expected = record.get("gates")
    if not isinstance(expected, dict) or set(expected) != set(DIFF_GATES):
        raise LabelError(f"{where}: gates must give exactly {', '.join(DIFF_GATES)}")
    if not all(isinstance(value, bool) for value in expected.values()):
        raise LabelError(f"{where}: each gate's verdict is true or false")
    return {gate: expected[gate] for gate in DIFF_GATES}


def _why(where: str, record: dict) -> str:
    why = record.get("why")
    if not isinstance(why, str) or not why.strip():
        raise LabelError(f"{where}: why is missing")
    return why


def _split(where: str, record: dict, key: str) -> str:
    if record.get("split") != split_of(key):
        raise LabelError(f"{where}: split must be {split_of(key)!r} (a hash of {key!r} decides it)")
    return record["split"]


def load_labels(labels_dir: Path) -> tuple[list, list, list]:
    """The labelled commits, goal statements and synthetic diffs of a label directory (docs/rules)."""
    return (
        load_commits(labels_dir / "corpus.jsonl"),
        load_goals(labels_dir / "goals.jsonl"),
        load_synthetic(labels_dir / "synthetic"),
    )


def second_review(path: Path, commits: Sequence[DiffLabel]) -> list[Outcome]:
    """A second reviewer's blind verdicts on a sample of the labelled commits, as outcomes against the labels: how
    far two careful people agree is the ceiling any rule can be held to. Refuses a record for an unlabelled commit."""
    by_commit = {(label.repo, label.key): label for label in commits}
    outcomes = []
    for number, record in _records(path):
        where = f"{path.name}:{number}"
        label = by_commit.get((record.get("repo"), record.get("sha")))
        if label is None:
            raise LabelError(f"{where}: {record.get('repo')} {record.get('sha')} is not a labelled commit")
        _why(where, record)
        outcomes.append(Outcome(label, _expected(where, record)))
    return outcomes


def load_commits(path: Path) -> list[DiffLabel]:
    """The labelled real commits; refuses a record with a missing field, a short sha or a hand-picked split."""
    labels, seen = [], set()
    for number, record in _records(path):
        where = f"{path.name}:{number}"
        repo, sha, language = record.get("repo"), record.get("sha"), record.get("language")
        if not isinstance(repo, str) or not _REPO.fullmatch(repo):
            raise LabelError(f"{where}: repo must be owner/name")
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise LabelError(f"{where}: sha must be the full 40-character lower-case sha")
        if language not in LANGUAGES:
            raise LabelError(f"{where}: language must be one of {', '.join(LANGUAGES)}")
        if (repo, sha) in seen:
            raise LabelError(f"{where}: {repo} {sha} is labelled twice")
        seen.add((repo, sha))
        labels.append(
            DiffLabel(
                key=sha,
                expected=_expected(where, record),
                why=_why(where, record),
                split=_split(where, record, sha),
                repo=repo,
                language=language,
            )
        )
    return labels


def load_synthetic(directory: Path) -> list[tuple[DiffLabel, Path]]:
    """The synthetic cases: ``labels.jsonl`` names each ``<name>.diff`` beside it."""
    cases = []
    for number, record in _records(directory / "labels.jsonl"):
        where = f"labels.jsonl:{number}"
        name, kind = record.get("name"), record.get("kind")
        if not isinstance(name, str) or not _SYNTHETIC_NAME.fullmatch(name):
            raise LabelError(f"{where}: name must be a plain file stem")
        if not isinstance(kind, str) or not kind.strip():
            raise LabelError(f"{where}: kind is missing")
        diff = directory / f"{name}.diff"
        if not diff.is_file():
            raise LabelError(f"{where}: {diff.name} does not exist")
        base_files = record.get("base_files", {})
        if not isinstance(base_files, dict) or not all(
            name in repopaths.CONFIG_FILES and isinstance(text, str) for name, text in base_files.items()
        ):
            raise LabelError(
                f"{where}: base_files maps config file names ({', '.join(repopaths.CONFIG_FILES[:6])} …) to text"
            )
        heads = record.get("heads")
        readable = isinstance(heads, dict) and all(isinstance(text, str) for text in heads.values())
        if heads is not None and not readable:
            raise LabelError(f"{where}: heads maps changed paths to their first lines")
        label = DiffLabel(
            key=name,
            expected=_expected(where, record),
            why=_why(where, record),
            split=_split(where, record, name),
            kind=kind,
            base_files=base_files,
            heads=heads,
        )
        cases.append((label, diff))
    return cases


def load_goals(path: Path) -> list[GoalLabel]:
    """The labelled goal statements."""
    labels, seen = [], set()
    for number, record in _records(path):
        where = f"{path.name}:{number}"
        key, statement, expected = record.get("id"), record.get("statement"), record.get("expected")
        if not isinstance(key, str) or not key or key in seen:
            raise LabelError(f"{where}: id must be a unique string")
        seen.add(key)
        if not isinstance(statement, str):
            raise LabelError(f"{where}: statement must be a string")
        if expected not in GOAL_VERDICTS:
            raise LabelError(f"{where}: expected must be ready or blocked")
        labels.append(GoalLabel(key, statement, expected, _why(where, record), _split(where, record, key)))
    return labels


# --- rebuilding real diffs from fetched copies --------------------------------------------------------------


def mirror_for(mirrors: Path, repo: str) -> Path:
    """Where the `fetch` tool leaves a repository: ``<mirrors>/<owner>+<name>/repo`` (a bare git dir)."""
    return mirrors / repo.replace("/", "+") / "repo"


def commit_diff(git_dir: Path, sha: str) -> bytes:
    """The commit's change against its first parent, as the loop's ``git diff`` would show it: renames found,
    no external diff drivers or text conversions (the mirror's config is not ours to trust)."""
    command = [
        "git", "-c", "core.attributesFile=/dev/null", "-c", "diff.external=", "--git-dir", str(git_dir),
        "diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M", f"{sha}^", sha, "--",
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, check=True, timeout=GIT_TIMEOUT).stdout


def file_heads(git_dir: Path, sha: str, diff: bytes) -> dict[str, str]:
    """The first lines of every file the diff leaves in place, read from the commit's tree (never a worktree)."""
    heads = {}
    try:
        parsed = parse_diff(diff)
    except DiffError:
        return heads
    for file in parsed.files:
        if file.change == "deleted" or file.binary or not file.path:
            continue
        command = ["git", "--git-dir", str(git_dir), "cat-file", "blob", f"{sha}:{file.path}"]
        try:
            blob = subprocess.run(command, capture_output=True, check=True, timeout=GIT_TIMEOUT).stdout
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            continue
        text = blob[:HEAD_BYTES].decode("utf-8", errors="replace")
        heads[file.path] = "\n".join(text.splitlines()[:HEAD_LINES])
    return heads


def config_files(git_dir: Path, sha: str) -> dict[str, str]:
    """The config files detection reads (goals/repopaths.CONFIG_FILES), from the parent's tree: the base the loop
    would judge the commit against. Bounded; absent files are left out."""
    found = {}
    for name in repopaths.CONFIG_FILES:
        command = ["git", "--git-dir", str(git_dir), "cat-file", "blob", f"{sha}^:{name}"]
        try:
            blob = subprocess.run(command, capture_output=True, check=True, timeout=GIT_TIMEOUT).stdout
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            continue
        found[name] = blob[: repopaths.MAX_CONFIG_BYTES].decode("utf-8", errors="replace")
    return found


@dataclass
class Rebuilt:
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (cache name, why)


def load_heads(path: Path) -> dict[str, str] | None:
    """The file heads (or config files) saved beside a rebuilt diff, None when absent or unreadable (then: the
    diff alone, or no detected rules)."""
    try:
        heads = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(heads, dict):
        return None
    return {str(key): value for key, value in heads.items() if isinstance(value, str)}


def rebuild(labels: Sequence[DiffLabel], mirrors: Path, cache: Path, force: bool = False) -> Rebuilt:
    """Write each labelled commit's diff (and its files' heads) into ``cache``; say which could not be rebuilt
    and why."""
    cache.mkdir(parents=True, exist_ok=True)
    result = Rebuilt()
    for label in labels:
        target = cache / label.cache_name
        config = cache / label.config_name
        git_dir = mirror_for(mirrors, label.repo)
        if target.is_file() and not force:
            if not config.is_file() and git_dir.is_dir():  # a cache from before config files were saved
                config.write_text(json.dumps(config_files(git_dir, label.key)), encoding="utf-8")
            result.kept.append(label.cache_name)
            continue
        if not git_dir.is_dir():
            result.missing.append((label.cache_name, f"no fetched copy of {label.repo} at {git_dir}"))
            continue
        try:
            diff = commit_diff(git_dir, label.key)
        except subprocess.CalledProcessError as error:
            message = error.stderr.decode("utf-8", "replace").strip().splitlines()
            result.missing.append((label.cache_name, message[0] if message else "git diff failed"))
            continue
        except subprocess.TimeoutExpired:
            result.missing.append((label.cache_name, "git diff took too long"))
            continue
        target.write_bytes(diff)
        heads = file_heads(git_dir, label.key, diff)
        (cache / label.heads_name).write_text(json.dumps(heads, ensure_ascii=False), encoding="utf-8")
        config.write_text(json.dumps(config_files(git_dir, label.key), ensure_ascii=False), encoding="utf-8")
        result.written.append(label.cache_name)
    return result


# --- measuring ------------------------------------------------------------------------------------------------


@dataclass
class Counts:
    """Agreement between labels and verdicts for one rule on one set; positive means "fires" / "blocked"."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, expected: bool, actual: bool) -> None:
        if expected and actual:
            self.tp += 1
        elif actual:
            self.fp += 1
        elif expected:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.positives if self.positives else None

    def as_dict(self) -> dict:
        return {
            "precision": self.precision,
            "recall": self.recall,
            "positives": self.positives,
            "cases": self.tp + self.fp + self.fn + self.tn,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "tn": self.tn,
        }


@dataclass
class Outcome:
    """One judged case: what was expected, what the product said, and any reading error."""

    label: DiffLabel | GoalLabel
    actual: dict[str, bool]
    error: str = ""

    @property
    def disagreements(self) -> list[str]:
        if isinstance(self.label, GoalLabel):
            return [] if self.actual["linter"] == (self.label.expected == "blocked") else ["linter"]
        return [gate for gate in DIFF_GATES if self.actual[gate] != self.label.expected[gate]]


def gate_verdicts(
    diff: bytes | str, heads: dict[str, str] | None = None, config: dict[str, str] | None = None
) -> dict[str, bool]:
    """Which diff gates ask a person about this diff, with a default contract (five files a step). ``heads``
    (path → first lines) stands in for the loop's worktree; without it the gates judge from the diff alone,
    as the ``gates`` command does without ``--repo``. ``config`` (config file name → text, from the parent tree)
    is what the loop reads from the base commit: the path rules are detected from it, as the loop does."""
    file_head = None if heads is None else (lambda path: heads.get(path, ""))
    paths = repopaths.detect((config or {}).get)
    step = gates.Step(diff=parse_diff(diff))
    findings = gates.run_gates(lint.Contract(), step, file_head=file_head, paths=paths)
    fired = {finding.gate for finding in findings if finding.severity in FIRING}
    return {gate: gate in fired for gate in DIFF_GATES}


def judge_diff(
    label: DiffLabel, diff: bytes | str, heads: dict[str, str] | None = None, config: dict[str, str] | None = None
) -> Outcome:
    """A diff the parser refuses is recorded as an error and counted as silence from every gate. A synthetic
    label's own ``heads`` and ``base_files`` stand in for the worktree when the caller gives none."""
    heads = heads if heads is not None else label.heads
    try:
        return Outcome(label, gate_verdicts(diff, heads, config if config is not None else label.base_files))
    except DiffError as error:
        return Outcome(label, dict.fromkeys(DIFF_GATES, False), error=f"diff refused: {error}")


def linter_blocks(statement: str) -> bool:
    """Whether the linter's objective rules block this statement."""
    findings = lint.lint(lint.Contract(objective=statement))
    return any(finding.severity == lint.BLOCKING and finding.rule in OBJECTIVE_RULES for finding in findings)


def judge_goal(label: GoalLabel) -> Outcome:
    return Outcome(label, {"linter": linter_blocks(label.statement)})


def table(outcomes: Sequence[Outcome], rules: Sequence[str], held_out_only: bool = False) -> dict[str, Counts]:
    """Counts per rule over the outcomes (the held-out third only when asked)."""
    counts = {rule: Counts() for rule in rules}
    for outcome in outcomes:
        if held_out_only and outcome.label.split != "held-out":
            continue
        for rule in rules:
            if isinstance(outcome.label, GoalLabel):
                expected = outcome.label.expected == "blocked"
            else:
                expected = outcome.label.expected[rule]
            counts[rule].add(expected, outcome.actual[rule])
    return counts

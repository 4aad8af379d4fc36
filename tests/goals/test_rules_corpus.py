"""The rules corpus (issue 14): its labels load, rules_eval prints the table without fetched repositories, and the
rebuild reads mirrors with git without running anything a mirror's config or attributes ask for."""

import json
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from goals import corpus

LABELS = Path(settings.BASE_DIR) / "docs" / "rules"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def git(*args, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_committed_labels_load_and_splits_follow_the_hash():
    commits = corpus.load_commits(LABELS / "corpus.jsonl")
    synthetic = corpus.load_synthetic(LABELS / "synthetic")
    goals = corpus.load_goals(LABELS / "goals.jsonl")
    assert synthetic and goals
    for label in [*commits, *(label for label, _ in synthetic), *goals]:
        assert label.split == corpus.split_of(label.key)


def test_rules_eval_without_a_cache_prints_the_synthetic_table_and_says_what_to_run(tmp_path):
    output = run("rules_eval", "--cache", str(tmp_path / "none"))
    if corpus.load_commits(LABELS / "corpus.jsonl"):
        assert "rules_corpus rebuild --mirrors DIR" in output
    assert "synthetic diffs" in output
    for gate in corpus.DIFF_GATES:
        assert gate in output
    assert "linter, held-out third" in output


def test_rules_eval_json_counts_every_synthetic_case(tmp_path):
    data = json.loads(run("rules_eval", "--json", "--cache", str(tmp_path)))
    synthetic = next(section for section in data["sections"] if section["name"] == "synthetic diffs")
    cases = len(corpus.load_synthetic(LABELS / "synthetic"))
    assert all(rule["cases"] == cases for rule in synthetic["rules"].values())


def test_a_hand_picked_split_is_refused(tmp_path):
    sha = "a" * 40
    wrong = "tune" if corpus.split_of(sha) == "held-out" else "held-out"
    record = {"repo": "o/n", "sha": sha, "language": "python", "why": "x", "split": wrong,
              "gates": dict.fromkeys(corpus.DIFF_GATES, False)}  # fmt: skip
    (tmp_path / "corpus.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(corpus.LabelError, match="split must be"):
        corpus.load_commits(tmp_path / "corpus.jsonl")


def test_a_ruby_commit_loads_and_an_unknown_language_is_refused(tmp_path):
    sha = "c" * 40
    record = {"repo": "o/n", "sha": sha, "language": "ruby", "why": "a pending added to an example",
              "split": corpus.split_of(sha), "gates": dict.fromkeys(corpus.DIFF_GATES, False)}  # fmt: skip
    (tmp_path / "corpus.jsonl").write_text(json.dumps(record) + "\n")
    assert [label.language for label in corpus.load_commits(tmp_path / "corpus.jsonl")] == ["ruby"]
    (tmp_path / "corpus.jsonl").write_text(json.dumps({**record, "language": "cobol"}) + "\n")
    with pytest.raises(corpus.LabelError, match="language must be one of"):
        corpus.load_commits(tmp_path / "corpus.jsonl")


@pytest.fixture
def hostile_mirror(tmp_path):
    """A fetched repository whose config and attributes try to run a command when its diff is taken."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", cwd=work)
    (work / "tests").mkdir()
    (work / "tests" / "test_x.py").write_text("def test_x():\n    assert 1 == 1\n    assert 2 == 2\n")
    (work / "pyproject.toml").write_text('[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    git("add", "-A", cwd=work)
    git("-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qm", "one", cwd=work)
    (work / "tests" / "test_x.py").write_text("def test_x():\n    assert 1 == 1\n")
    (work / ".gitattributes").write_text("*.py diff=evil\n")
    git("add", "-A", cwd=work)
    git("-c", "user.name=a", "-c", "user.email=a@a", "commit", "-qm", "two", cwd=work)
    sha = git("rev-parse", "HEAD", cwd=work).strip()
    mirrors = tmp_path / "mirrors"
    bare = mirrors / "someone+thing" / "repo"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    marker = tmp_path / "ran"
    git("config", "diff.external", f"touch {marker}", cwd=bare)
    git("config", "diff.evil.textconv", f"touch {marker}; cat", cwd=bare)
    git("config", "diff.evil.command", f"touch {marker}", cwd=bare)
    return mirrors, sha, marker


def test_rebuild_then_eval_reads_the_mirror_and_runs_nothing_it_asks_for(tmp_path, hostile_mirror):
    mirrors, sha, marker = hostile_mirror
    labels = tmp_path / "labels"
    (labels / "synthetic").mkdir(parents=True)
    (labels / "synthetic" / "labels.jsonl").write_text("")
    (labels / "goals.jsonl").write_text("")
    record = {"repo": "someone/thing", "sha": sha, "language": "python", "why": "an assert removed",
              "split": corpus.split_of(sha),
              "gates": {"blast_radius": False, "protected_path": False, "tests_without_code": True,
                        "tests_weakened": True}}  # fmt: skip
    missing = {**record, "repo": "someone/absent", "sha": "b" * 40, "split": corpus.split_of("b" * 40)}
    (labels / "corpus.jsonl").write_text(json.dumps(record) + "\n" + json.dumps(missing) + "\n")
    cache = tmp_path / "cache"

    output = run("rules_corpus", "rebuild", "--mirrors", str(mirrors), "--cache", str(cache), "--labels", str(labels))

    assert "1 written" in output and "1 missing" in output and "someone+absent" in output
    assert not marker.exists()
    diff = (cache / f"someone+thing+{sha}.diff").read_text()
    assert "-    assert 2 == 2" in diff
    heads = json.loads((cache / f"someone+thing+{sha}.heads.json").read_text())
    assert heads["tests/test_x.py"].startswith("def test_x():")
    # The config files come from the parent's tree (the base), not from the commit that added .gitattributes.
    config = json.loads((cache / f"someone+thing+{sha}.config.json").read_text())
    assert config == {"pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'}
    data = json.loads(run("rules_eval", "--json", "--cache", str(cache), "--labels", str(labels)))
    real = data["sections"][0]["rules"]
    assert real["tests_without_code"]["positives"] == 1
    assert data["missing"] == [f"someone+absent+{'b' * 40}.diff"]


def test_rebuild_needs_mirrors():
    with pytest.raises(CommandError, match="--mirrors"):
        run("rules_corpus", "rebuild")


def test_a_generated_marker_outside_the_hunks_is_seen_through_the_saved_heads():
    diff = (LABELS / "synthetic" / "hit-generated-header.diff").read_bytes()
    assert not corpus.gate_verdicts(diff)["protected_path"]
    heads = {"api/types_gen.go": "// Code generated by tool. DO NOT EDIT.\n\npackage api"}
    assert corpus.gate_verdicts(diff, heads)["protected_path"]


def test_the_linter_meets_its_targets_on_the_goal_statements():
    goals = corpus.load_goals(LABELS / "goals.jsonl")
    [counts] = corpus.table([corpus.judge_goal(label) for label in goals], ("linter",)).values()

    assert counts.precision >= 0.90
    assert counts.recall >= 0.90


def test_synthetic_cases_are_judged_with_the_config_files_their_label_gives():
    synthetic = dict((label.key, (label, path)) for label, path in corpus.load_synthetic(LABELS / "synthetic"))
    label, path = synthetic["quiet-workspace-package"]
    assert "workspaces" in label.base_files["package.json"]
    assert not corpus.judge_diff(label, path.read_bytes()).actual["protected_path"]
    assert corpus.gate_verdicts(path.read_bytes())["protected_path"]  # without them, packages/ is a vendored copy


def test_base_files_must_name_config_files(tmp_path):
    (tmp_path / "case.diff").write_text("")
    record = {"name": "case", "kind": "k", "why": "w", "split": corpus.split_of("case"),
              "gates": dict.fromkeys(corpus.DIFF_GATES, False), "base_files": {"src/app.py": "x"}}  # fmt: skip
    (tmp_path / "labels.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(corpus.LabelError, match="base_files"):
        corpus.load_synthetic(tmp_path)


def test_the_second_review_is_of_labelled_commits_and_rules_eval_reports_it():
    commits = corpus.load_commits(LABELS / "corpus.jsonl")
    second = corpus.second_review(LABELS / "second_review.jsonl", commits)
    assert len(second) >= 80
    assert "a second reviewer, blind, on" in run("rules_eval")


def test_a_second_verdict_on_an_unlabelled_commit_is_refused(tmp_path):
    record = {"repo": "o/n", "sha": "b" * 40, "why": "x", "gates": dict.fromkeys(corpus.DIFF_GATES, False)}
    (tmp_path / "second_review.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(corpus.LabelError, match="not a labelled commit"):
        corpus.second_review(tmp_path / "second_review.jsonl", [])

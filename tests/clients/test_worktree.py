"""What really changed in a working tree (goalpost_client.worktree): read from a hostile repository, the agent's
to write, without running anything it configures, never through a symlink, bounded, and in a shape the server's
diff parser reads."""

import os
import stat

import pytest

from goalpost_client import worktree
from goals.diffs import parse_diff
from tests.factories import make_git_repo, run_git


@pytest.fixture
def repo(tmp_path):
    return make_git_repo(tmp_path / "repo", {"app.py": "print('hello')\n", "secrets/.keep": "", "docs/a.md": "a\n"})


@pytest.fixture
def base(repo):
    return worktree.head(repo)


def paths_of(change: worktree.Change) -> dict[str, str]:
    """path → change kind, as the server's parser reads the diff."""
    return {file.path: file.change for file in parse_diff(change.diff).files}


# --- what counts as the change ---------------------------------------------------------------------------------


def test_an_untouched_tree_has_no_change(repo, base):
    change = worktree.change_since(repo, base)
    assert change.diff == "" and change.paths == []


def test_modified_new_and_deleted_files_are_all_in_the_diff(repo, base):
    (repo / "app.py").write_text("print('bye')\n")
    (repo / "new.py").write_text("x = 1\n")
    (repo / "docs" / "a.md").unlink()
    change = worktree.change_since(repo, base)
    assert paths_of(change) == {"app.py": "modified", "new.py": "added", "docs/a.md": "deleted"}
    assert "-print('hello')\n+print('bye')\n" in change.diff and "+x = 1\n" in change.diff


def test_a_change_the_agent_committed_still_shows_against_the_baseline(repo, base):
    (repo / "secrets" / "api.key").write_text("sk-live\n")
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", "nothing to see")
    assert "secrets/api.key" in paths_of(worktree.change_since(repo, base))


def test_a_repository_without_commits_counts_every_file_as_new(tmp_path):
    repo = tmp_path / "empty"
    repo.mkdir()
    run_git(repo, "init", "-q")
    (repo / "a.txt").write_text("a\n")
    assert worktree.head(repo) is None
    assert paths_of(worktree.change_since(repo, None)) == {"a.txt": "added"}


def test_ignored_files_stay_out_but_a_gitignore_hiding_itself_shows(repo, base):
    (repo / ".gitignore").write_text("build/\n")
    run_git(repo, "add", ".gitignore")
    run_git(repo, "commit", "-q", "-m", "ignore build")
    (repo / "build").mkdir()
    (repo / "build" / "out.js").write_text("x\n")
    (repo / "secrets" / ".gitignore").write_text("*\n")  # hides the whole folder, itself included
    (repo / "secrets" / "api.key").write_text("sk-live\n")
    found = paths_of(worktree.change_since(repo, base))
    assert "build/out.js" not in found
    assert "secrets/.gitignore" in found


def test_git_info_exclude_does_not_hide_a_new_file(repo, base):
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("secrets/\n")
    (repo / "secrets" / "api.key").write_text("sk-live\n")
    assert "secrets/api.key" in paths_of(worktree.change_since(repo, base))


def test_a_mode_change_alone_is_a_change(repo, base):
    (repo / "app.py").chmod(0o700)
    change = worktree.change_since(repo, base)
    assert "old mode 100644\nnew mode 100755\n" in change.diff and change.paths == ["app.py"]


# --- the repository is hostile ------------------------------------------------------------------------------------


def planted(repo, tmp_path, config: str, attributes: str = "") -> os.PathLike:
    """A repository config (and .gitattributes) that would run a program writing `marker`."""
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\ntouch {marker}\ncat\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    with open(repo / ".git" / "config", "a") as handle:
        handle.write(config.format(script=script))
    if attributes:
        (repo / ".gitattributes").write_text(attributes)
    return marker


@pytest.mark.parametrize(
    ("config", "attributes"),
    [
        pytest.param('[filter "evil"]\n\tclean = {script}\n\tsmudge = {script}\n', "* filter=evil\n", id="clean-filter"),
        pytest.param('[diff "evil"]\n\ttextconv = {script}\n', "* diff=evil\n", id="textconv"),
        pytest.param("[diff]\n\texternal = {script}\n", "", id="external-diff"),
        pytest.param("[core]\n\tfsmonitor = {script}\n", "", id="fsmonitor"),
        pytest.param("[core]\n\thooksPath = /nonexistent\n\tpager = {script}\n", "", id="pager"),
        pytest.param("[alias]\n\tls-files = !{script}\n", "", id="alias"),
    ],
)
def test_nothing_the_repository_configures_runs(repo, base, tmp_path, config, attributes):
    marker = planted(repo, tmp_path, config, attributes)
    (repo / "app.py").write_text("print('changed')\n")
    (repo / "new.txt").write_text("new\n")
    change = worktree.change_since(repo, base)
    assert not marker.exists(), "a program the repository configured ran"
    assert "+print('changed')\n" in change.diff and "new.txt" in change.paths


def test_a_symlink_is_diffed_as_its_target_never_followed(repo, base, tmp_path):
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("the worker's secret\n")
    (repo / "link").symlink_to(outside)
    change = worktree.change_since(repo, base)
    assert "new file mode 120000" in change.diff and str(outside) in change.diff
    assert "the worker's secret" not in change.diff


def test_files_behind_a_symlinked_directory_are_not_read(repo, base, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.md").write_text("private\n")
    (repo / "docs" / "a.md").unlink()
    (repo / "docs").rmdir()
    (repo / "docs").symlink_to(elsewhere, target_is_directory=True)
    change = worktree.change_since(repo, base)
    assert "private" not in change.diff
    assert paths_of(change) == {"docs/a.md": "deleted", "docs": "added"}


def test_a_fifo_in_the_tree_does_not_hang_it(repo, base):
    os.mkfifo(repo / "pipe")
    assert "pipe" not in worktree.change_since(repo, base).paths


def test_git_environment_variables_cannot_point_it_elsewhere(repo, base, tmp_path, monkeypatch):
    other = make_git_repo(tmp_path / "other", {"z.py": "z\n"})
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'core.fsmonitor'='/bin/false'")
    (repo / "app.py").write_text("print('changed')\n")
    assert worktree.change_since(repo, base).paths == ["app.py"]


# --- bounded, and readable by the server -----------------------------------------------------------------------------


def test_a_binary_file_is_listed_without_its_bytes(repo, base):
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    change = worktree.change_since(repo, base)
    assert "Binary files /dev/null and b/logo.png differ" in change.diff and paths_of(change) == {"logo.png": "added"}


def test_a_large_file_is_listed_by_its_path_only(repo, base):
    (repo / "secrets" / "dump.sql").write_text("x" * (worktree.MAX_FILE_BYTES + 1))
    change = worktree.change_since(repo, base)
    assert "secrets/dump.sql" in paths_of(change) and len(change.diff) < 200


def test_past_the_size_limit_files_keep_their_paths(repo, base):
    for number in range(30):
        (repo / f"f{number:02}.txt").write_text(f"{number}\n" * 2_000)
    change = worktree.change_since(repo, base, max_chars=20_000)
    assert change.cut and len(paths_of(change)) == 30 and len(change.diff) < 40_000


def test_paths_git_would_quote_come_through_the_servers_parser(repo, base):
    for name in ('we"ird.txt', "tab\there.txt", "naïve.txt", "sp ace.txt"):
        (repo / name).write_text("x\n")
    assert set(paths_of(worktree.change_since(repo, base))) == {'we"ird.txt', "tab\there.txt", "naïve.txt", "sp ace.txt"}

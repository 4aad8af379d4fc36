"""goals.diffs refuses what unidiff would misread, made by real git: combined merge diffs, logs of several commits;
and a binary file that git only renamed (no "Binary files" line) still parses as binary."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from goals.diffs import DiffError, parse_diff

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable")

GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Goalpost Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Goalpost Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
}
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
SHA = "0123456789abcdef0123456789abcdef01234567"


def git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=check, capture_output=True)
    return done.stdout.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class History:
    """Outputs of real git over a small history: a merge whose conflict was resolved by hand, two commits."""

    show_merge: str  # git show MERGE: "diff --cc"
    diff_cc: str  # git diff --cc MERGE^1 MERGE^2 MERGE... as git show --cc prints it
    show_combined: str  # git show -c MERGE: "diff --combined"
    merge_against_parent: str  # git diff MERGE^1 MERGE: one ordinary diff
    log_two: str  # git log -p -2 --first-parent
    format_patch_two: str  # git format-patch -2 --stdout
    format_patch_one: str  # git format-patch -1 --stdout
    show_one: str  # git show of one ordinary commit
    pure_rename: str  # git diff -M of a binary file only moved (similarity 100%)
    rename_with_change: str  # git diff -M of a binary file moved and changed
    text_rename: str  # git diff -M of a text file only moved


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    repo = tmp_path_factory.mktemp("history")
    git(repo, "init", "-q", "-b", "main")
    (repo / "price.py").write_text("rate = 1\ntax = 0.2\nround_to = 2\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "price.py").write_text("rate = 1\ntax = 0.25\nround_to = 2\n")
    git(repo, "commit", "-q", "-am", "side: raise the tax")
    git(repo, "checkout", "-q", "main")
    (repo / "price.py").write_text("rate = 1\ntax = 0.19\nround_to = 2\n")
    git(repo, "commit", "-q", "-am", "main: lower the tax")
    git(repo, "merge", "-q", "side", check=False)  # conflicts: resolved by hand below
    (repo / "price.py").write_text("rate = 1\ntax = 0.21\nround_to = 2\n")
    git(repo, "add", "price.py")
    git(repo, "commit", "-q", "-m", "merge side")
    outputs = {
        "show_merge": git(repo, "show", "HEAD"),
        "diff_cc": git(repo, "show", "--cc", "--format=", "HEAD"),
        "show_combined": git(repo, "show", "-c", "HEAD"),
        "merge_against_parent": git(repo, "diff", "HEAD^1", "HEAD"),
    }
    (repo / "price.py").write_text("rate = 2\ntax = 0.21\nround_to = 2\n")
    git(repo, "commit", "-q", "-am", "double the rate")
    (repo / "README.md").write_text("# Price\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "say what it is")
    outputs["log_two"] = git(repo, "log", "-p", "-2", "--first-parent")
    outputs["format_patch_two"] = git(repo, "format-patch", "-2", "--stdout")
    outputs["format_patch_one"] = git(repo, "format-patch", "-1", "--stdout", "HEAD~1")
    outputs["show_one"] = git(repo, "show", "HEAD~1")

    (repo / "assets").mkdir()
    (repo / "assets/logo.png").write_bytes(PNG_BYTES)
    (repo / "assets/photo.png").write_bytes(PNG_BYTES[::-1])
    (repo / "notes.txt").write_text("".join(f"note {n}\n" for n in range(10)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "assets")
    (repo / "static").mkdir()
    git(repo, "mv", "assets/logo.png", "static/logo.png")
    outputs["pure_rename"] = git(repo, "diff", "--cached", "-M")
    git(repo, "mv", "assets/photo.png", "static/photo.png")
    (repo / "static/photo.png").write_bytes(PNG_BYTES[::-1] + b"\x00more")
    git(repo, "add", "-A")
    outputs["rename_with_change"] = git(repo, "diff", "--cached", "-M", "--", "assets/photo.png", "static/photo.png")
    git(repo, "mv", "notes.txt", "docs.txt")
    outputs["text_rename"] = git(repo, "diff", "--cached", "-M", "--", "notes.txt", "docs.txt")
    return History(**outputs)


# --- what real git prints, checked first so the tests below rest on it -----------------------------------------


def test_git_prints_a_combined_diff_for_a_resolved_merge(history: History) -> None:
    assert "diff --cc price.py" in history.show_merge
    assert "@@@ " in history.show_merge
    assert "diff --cc price.py" in history.diff_cc
    assert "diff --combined price.py" in history.show_combined


def test_git_prints_no_binary_line_for_a_binary_file_it_only_renamed(history: History) -> None:
    assert "similarity index 100%" in history.pure_rename
    assert "Binary files" not in history.pure_rename
    assert "Binary files" in history.rename_with_change


# --- refusals ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["show_merge", "diff_cc", "show_combined"])
def test_it_refuses_a_combined_merge_diff(history: History, output: str) -> None:
    with pytest.raises(DiffError, match="combined merge diff") as raised:
        parse_diff(getattr(history, output))
    assert "price.py" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_it_reads_the_merge_against_one_parent(history: History) -> None:
    (file,) = parse_diff(history.merge_against_parent).files
    assert (file.path, file.added, file.removed) == ("price.py", 1, 1)


@pytest.mark.parametrize("output", ["log_two", "format_patch_two"])
def test_it_refuses_a_log_of_several_commits(history: History, output: str) -> None:
    with pytest.raises(DiffError, match="log of several commits"):
        parse_diff(getattr(history, output))


@pytest.mark.parametrize("output", ["format_patch_one", "show_one"])
def test_it_reads_one_commit(history: History, output: str) -> None:
    (file,) = parse_diff(getattr(history, output)).files
    assert (file.path, file.added, file.removed) == ("price.py", 1, 1)


def test_it_refuses_a_log_given_with_crlf_line_endings(history: History) -> None:
    with pytest.raises(DiffError, match="log of several commits"):
        parse_diff(history.format_patch_two.replace("\n", "\r\n").encode())


# --- crafted by a hostile agent ----------------------------------------------------------------------------------

ONE_FILE = "diff --git a/app.py b/app.py\nindex 1111111..2222222 100644\n--- a/app.py\n+++ b/app.py\n"


def _file(path: str, body: str) -> str:
    return ONE_FILE.replace("app.py", path) + body


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            _file("app.py", "@@ -1 +1 @@\n-a\n+b\n")
            + "diff --cc tests/test_app.py\nindex 1,2..3\n--- a/tests/test_app.py\n+++ b/tests/test_app.py\n"
            "@@@ -1,1 -1,1 +1,1 @@@\n- assert x\n -assert x\n++pass\n",
            id="combined-header-after-an-ordinary-file",
        ),
        pytest.param(
            _file("app.py", "@@ -1 +1 @@\n-a\n+b\n")
            + "--- a/tests/test_app.py\n+++ b/tests/test_app.py\n@@@ -1,1 -1,1 +1,1 @@@\n- assert x\n -assert x\n",
            id="combined-hunk-without-its-diff-line",
        ),
    ],
)
def test_it_refuses_a_combined_header_hidden_mid_diff(text: str) -> None:
    with pytest.raises(DiffError, match="combined merge diff"):
        parse_diff(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(
            f"From {SHA} Mon Sep 17 00:00:00 2001\nSubject: [PATCH] one\n\n---\n"
            + _file("app.py", "@@ -1 +1 @@\n-a\n+b\n")
            + f"\nFrom {SHA[::-1]} Mon Sep 17 00:00:00 2001\nSubject: [PATCH] two\n\n---\n"
            + _file("tests/test_app.py", "@@ -1 +1 @@\n-assert ok\n+pass\n"),
            id="second-format-patch-header",
        ),
        pytest.param(
            _file("app.py", "@@ -1 +1 @@\n-a\n+b\n")
            + f"\ncommit {SHA}\nAuthor: A <a@example.com>\n\n    undo\n\n"
            + _file("app.py", "@@ -1 +1 @@\n-b\n+a\n")
            + f"commit {SHA[::-1]}\nAuthor: A <a@example.com>\n\n",
            id="git-log-headers-between-files",
        ),
    ],
)
def test_it_refuses_a_second_commit_header(text: str) -> None:
    with pytest.raises(DiffError, match="log of several commits"):
        parse_diff(text)


@pytest.mark.parametrize(
    ("body", "added", "removed"),
    [
        pytest.param(
            f"@@ -1,2 +1,2 @@\n commit {SHA}\n-Author: A <a@example.com>\n+Author: B <b@example.com>\n",
            1,
            1,
            id="commit-line-as-context",
        ),
        pytest.param(
            f"@@ -0,0 +1,4 @@\n+commit {SHA}\n+Author: A <a@example.com>\n"
            f"+commit {SHA[::-1]}\n+Author: B <b@example.com>\n",
            4,
            0,
            id="two-commit-lines-as-added-content",
        ),
        pytest.param(
            f"@@ -1,2 +1,2 @@\n-From {SHA} Mon Sep 17 00:00:00 2001\n+From {SHA[::-1]} Mon Sep 17 00:00:00 2001\n"
            f" From {SHA} Mon Sep 17 00:00:00 2001\n",
            1,
            1,
            id="mail-headers-as-content",
        ),
        pytest.param(
            "@@ -1,2 +1,2 @@\n-diff --cc a.py\n+@@@ -1,1 -1,1 +1,1 @@@\n diff --combined b.py\n",
            1,
            1,
            id="combined-as-content",
        ),
    ],
)
def test_header_lookalikes_inside_a_hunk_are_content(body: str, added: int, removed: int) -> None:
    (file,) = parse_diff(_file("log.txt", body)).files
    assert (file.path, file.added, file.removed) == ("log.txt", added, removed)


def test_a_commit_message_that_mentions_a_commit_is_one_commit() -> None:
    text = f"commit {SHA}\nAuthor: A <a@example.com>\n\n    Revert\n\n    This reverts commit {SHA}.\n\n" + _file(
        "app.py", "@@ -1 +1 @@\n-a\n+b\n"
    )
    (file,) = parse_diff(text).files
    assert file.path == "app.py"


# --- binary renames ----------------------------------------------------------------------------------------------


def test_a_binary_file_only_renamed_stays_binary(history: History) -> None:
    (file,) = parse_diff(history.pure_rename).files
    assert (file.path, file.old_path, file.change) == ("static/logo.png", "assets/logo.png", "renamed")
    assert file.binary
    assert (file.added, file.removed, file.hunks) == (0, 0, ())
    assert parse_diff(history.pure_rename).stats.binary == 1


def test_a_binary_file_renamed_and_changed_is_binary(history: History) -> None:
    (file,) = parse_diff(history.rename_with_change).files
    assert (file.path, file.old_path, file.change, file.binary) == (
        "static/photo.png",
        "assets/photo.png",
        "renamed",
        True,
    )


def test_a_text_file_only_renamed_stays_text(history: History) -> None:
    (file,) = parse_diff(history.text_rename).files
    assert (file.path, file.old_path, file.change, file.binary) == ("docs.txt", "notes.txt", "renamed", False)


RENAMED_BLOB = "diff --git a/data/blob b/data/moved\nsimilarity index 100%\nrename from data/blob\nrename to data/moved\n"


@pytest.mark.parametrize(
    ("is_binary", "binary"),
    [
        pytest.param(None, False, id="no-probe-unknown-suffix-is-text"),
        pytest.param(lambda path: path == "data/moved", True, id="probe-says-binary"),
        pytest.param(lambda path: False, False, id="probe-says-text"),
    ],
)
def test_a_caller_that_holds_the_repository_settles_a_rename_the_name_does_not(is_binary, binary) -> None:
    (file,) = parse_diff(RENAMED_BLOB, is_binary=is_binary).files
    assert (file.path, file.old_path, file.binary) == ("data/moved", "data/blob", binary)


def test_the_probe_is_asked_only_about_pure_renames(history: History) -> None:
    asked: list[str] = []
    parse_diff(history.merge_against_parent, is_binary=lambda path: asked.append(path) or True)
    parse_diff(history.rename_with_change, is_binary=lambda path: asked.append(path) or True)
    assert asked == []


# --- a file named twice ------------------------------------------------------------------------------------------


def test_it_refuses_a_log_without_commit_headers(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for text in ("one\n", "two\n", "three\n"):
        (repo / "app.py").write_text(text)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", text.strip())
    log = git(repo, "log", "-p", "--format=", "-2")
    assert "commit " not in log and log.count("diff --git a/app.py b/app.py") == 2
    with pytest.raises(DiffError, match="names app.py 2 times"):
        parse_diff(log)


def test_a_file_that_becomes_a_symlink_is_read(tmp_path: Path) -> None:
    """git writes a type change as the file deleted, then added: the one file a diff may name twice."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "config.py").write_text("DEBUG = False\n")
    (repo / "settings.py").write_text("DEBUG = True\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    (repo / "config.py").unlink()
    (repo / "config.py").symlink_to("settings.py")
    git(repo, "add", "-A")
    parsed = parse_diff(git(repo, "diff", "--cached"))
    assert [(file.path, file.change) for file in parsed.files] == [("config.py", "deleted"), ("config.py", "added")]
    assert parsed.files[1].new_mode == "120000"


def test_it_refuses_one_change_split_in_two_sections() -> None:
    """A hostile agent shows a test file's added line in one section and hides its removed assert in another."""
    text = _file("tests/test_app.py", "@@ -1 +1,2 @@\n assert total() == 5\n+assert total()\n") + _file(
        "tests/test_app.py", "@@ -1 +0,0 @@\n-assert total() == 5\n"
    )
    with pytest.raises(DiffError, match="names tests/test_app.py 2 times"):
        parse_diff(text)

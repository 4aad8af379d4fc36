import json
import os
import sys
import time

import pytest

from goals.agents.base import (
    LOG_LIMIT,
    OUTPUT_LIMIT,
    AgentError,
    apply_patch,
    cap_tail,
    check_confinement,
    confined_path,
    inspect_patch,
    run_process,
)
from tests.factories import GREETING_PATCH, run_git
from tests.support.fakes import install_fake
from tests.support.processes import wait_until_gone

NEW_FILE_PATCH = """\
diff --git a/docs/notes.md b/docs/notes.md
new file mode 100644
--- /dev/null
+++ b/docs/notes.md
@@ -0,0 +1,2 @@
+# Notes
+Greeting changed.
"""


@pytest.mark.parametrize(
    "patch, path, content",
    [
        pytest.param(GREETING_PATCH, "app.py", "print('hi')\n", id="a-git-diff-applies"),
        pytest.param(
            "--- app.py\n+++ app.py\n@@ -1 +1 @@\n-print('hello')\n+print('hi')\n",
            "app.py",
            "print('hi')\n",
            id="a-diff-naming-files-bare-applies",
        ),
        pytest.param(
            "--- a/app.py\n+++ b/app.py\n@@ -1,4 +1,9 @@\n-print('hello')\n+print('hi')",
            "app.py",
            "print('hi')\n",
            id="wrong-hunk-counts-and-no-final-newline-are-forgiven",
        ),
        pytest.param(NEW_FILE_PATCH, "docs/notes.md", "# Notes\nGreeting changed.\n", id="a-new-file-is-created"),
    ],
)
def test_it_applies_a_patch(worktree, patch, path, content):
    apply_patch(worktree, patch)
    assert (worktree / path).read_text() == content


@pytest.mark.parametrize(
    "patch, reason",
    [
        pytest.param(GREETING_PATCH.replace("hello", "howdy"), "does not apply", id="context-that-does-not-match"),
        pytest.param("", "empty", id="an-empty-patch"),
        pytest.param("I changed the greeting for you.\n", "not a unified diff", id="prose-instead-of-a-diff"),
        pytest.param(
            "diff --git a/logo.png b/logo.png\nnew file mode 100644\nindex 0000000..1b2c3d4\nGIT binary patch\nliteral 4\nLcmZ?wbhEHbZ\n",
            "binary",
            id="a-binary-patch",
        ),
        pytest.param(
            "--- a/../outside.txt\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n", "“..”", id="a-path-climbing-out"
        ),
        pytest.param("--- /dev/null\n+++ /tmp/outside.txt\n@@ -0,0 +1 @@\n+x\n", "absolute", id="an-absolute-path"),
        pytest.param(
            "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit\nnew file mode 100755\n--- /dev/null\n+++ b/.git/hooks/pre-commit\n@@ -0,0 +1 @@\n+rm -rf /\n",
            ".git",
            id="a-git-hook",
        ),
    ],
)
def test_it_refuses_a_bad_patch_and_leaves_the_worktree_alone(worktree, patch, reason):
    with pytest.raises(AgentError, match=reason) as error:
        apply_patch(worktree, patch)
    assert not error.value.permanent
    assert (worktree / "app.py").read_text() == "print('hello')\n"
    assert run_git(worktree, "status", "--porcelain") == ""


def test_it_refuses_to_write_through_a_symlink_leading_outside(worktree, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (worktree / "out").symlink_to(outside)
    run_git(worktree, "add", "out")
    run_git(worktree, "commit", "-q", "-m", "link")
    patch = "--- /dev/null\n+++ b/out/evil.txt\n@@ -0,0 +1 @@\n+x\n"
    with pytest.raises(AgentError, match="symlink"):
        apply_patch(worktree, patch)
    assert list(outside.iterdir()) == []


def test_it_falls_back_to_a_three_way_merge(worktree):
    (worktree / "lines.txt").write_text("one\ntwo\nthree\nfour\nfive\nsix\n")
    run_git(worktree, "add", "lines.txt")
    run_git(worktree, "commit", "-q", "-m", "lines")
    (worktree / "lines.txt").write_text("one\ntwo\nTHREE\nfour\nfive\nsix\n")
    patch = run_git(worktree, "diff")
    run_git(worktree, "checkout", "-q", "lines.txt")
    (worktree / "lines.txt").write_text("one\ntwo\nthree\nfour\nFIVE\nsix\n")
    run_git(worktree, "commit", "-q", "-am", "five")

    apply_patch(worktree, patch)

    assert (worktree / "lines.txt").read_text() == "one\ntwo\nTHREE\nfour\nFIVE\nsix\n"


def test_a_conflicting_three_way_merge_is_rolled_back(worktree):
    (worktree / "lines.txt").write_text("a\nb\nc\n")
    run_git(worktree, "add", "lines.txt")
    run_git(worktree, "commit", "-q", "-m", "lines")
    (worktree / "lines.txt").write_text("a\nB\nc\n")
    patch = run_git(worktree, "diff")
    run_git(worktree, "checkout", "-q", "lines.txt")
    (worktree / "lines.txt").write_text("a\nX\nc\n")
    run_git(worktree, "commit", "-q", "-am", "x")

    with pytest.raises(AgentError, match="does not apply"):
        apply_patch(worktree, patch)

    assert (worktree / "lines.txt").read_text() == "a\nX\nc\n"
    assert run_git(worktree, "status", "--porcelain") == ""


@pytest.mark.parametrize(
    "patch, paths, strip",
    [
        pytest.param(GREETING_PATCH, ["app.py"], 1, id="git-style"),
        pytest.param("--- app.py\n+++ app.py\n@@ -1 +1 @@\n-a\n+b\n", ["app.py"], 0, id="bare-names"),
        pytest.param(
            "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,1 @@\n--- a comment\n select 1;\n",
            ["q.sql"],
            1,
            id="a-removed-sql-comment-is-not-a-header",
        ),
        pytest.param(
            "diff --git a/old.py b/new.py\nsimilarity index 90%\nrename from old.py\nrename to new.py\n",
            ["old.py", "new.py"],
            1,
            id="a-rename",
        ),
    ],
)
def test_it_reads_the_paths_a_patch_touches(patch, paths, strip):
    assert inspect_patch(patch) == (paths, strip)


@pytest.mark.parametrize(
    "relative, reason",
    [
        pytest.param("/etc/passwd", "absolute", id="absolute"),
        pytest.param("../x", "“..”", id="dot-dot"),
        pytest.param("a/../../x", "“..”", id="dot-dot-inside"),
        pytest.param(".git/config", ".git", id="git-folder"),
        pytest.param("", "not a file name", id="empty"),
        pytest.param("link/x", "symlink", id="through-a-symlink"),
    ],
)
def test_it_confines_paths_to_the_worktree(worktree, tmp_path, relative, reason):
    (worktree / "link").symlink_to(tmp_path)
    with pytest.raises(AgentError, match=reason):
        confined_path(worktree, relative)


def test_a_path_inside_the_worktree_is_fine(worktree):
    assert confined_path(worktree, "src/new.py") == worktree / "src/new.py"


@pytest.mark.parametrize(
    "target, escapes",
    [
        pytest.param("/etc", True, id="absolute-outside"),
        pytest.param("../..", True, id="relative-outside"),
        pytest.param(".git/hooks", True, id="into-git"),
        pytest.param("app.py", False, id="inside"),
    ],
)
def test_it_refuses_a_new_symlink_leading_outside(worktree, target, escapes):
    (worktree / "link").symlink_to(target)
    if escapes:
        with pytest.raises(AgentError, match="symlink leading outside"):
            check_confinement(worktree)
        assert not (worktree / "link").is_symlink()
    else:
        check_confinement(worktree)
        assert (worktree / "link").is_symlink()


def test_it_stops_a_command_and_its_children_at_the_timeout(tmp_path):
    tool = install_fake(tmp_path / "bin", "tool")
    pids = tmp_path / "pids.json"
    env = {**os.environ, "FAKE_SCENARIO": "hang", "FAKE_PIDS": str(pids)}
    started = time.monotonic()
    with pytest.raises(AgentError, match="timed out after 1.5 s") as error:
        run_process([str(tool)], cwd=tmp_path, env=env, timeout_s=1.5)
    assert time.monotonic() - started < 10
    assert not error.value.permanent
    for pid in json.loads(pids.read_text()):
        assert wait_until_gone(pid)


def test_it_stops_what_a_command_left_running(tmp_path):
    output = run_process(["sh", "-c", "sleep 600 & echo $!"], cwd=tmp_path, env=None, timeout_s=30)
    assert output.returncode == 0
    assert wait_until_gone(int(output.stdout))


def test_it_keeps_only_the_tail_of_a_huge_output(tmp_path):
    script = "import sys\nsys.stdout.write(('line ' + 'x' * 50 + '\\n') * 300_000)\nprint('THE END')"
    output = run_process([sys.executable, "-c", script], cwd=tmp_path, env=None, timeout_s=60)
    assert output.dropped > 0
    assert len(output.stdout) <= OUTPUT_LIMIT
    assert output.stdout.startswith("line ")
    assert output.stdout.rstrip().endswith("THE END")


def test_a_missing_executable_is_a_permanent_error(tmp_path):
    with pytest.raises(AgentError, match="not found") as error:
        run_process([str(tmp_path / "no-such-agent")], cwd=tmp_path, env=None, timeout_s=5)
    assert error.value.permanent


def test_it_caps_a_log_at_its_tail():
    log = cap_tail("x" * (LOG_LIMIT + 500) + "the end")
    assert log.endswith("the end")
    assert log.startswith("[… 507 characters dropped …]")

import shutil

import pytest

from goals.workspace import RepositoryError, Workspace, WorkspaceError, check_repository
from tests.conftest import run_git


def test_a_repository_and_its_branch_pass(git_repo):
    assert check_repository(str(git_repo), "main") == str(git_repo)


def test_another_existing_branch_passes(git_repo):
    run_git(git_repo, "branch", "release")
    assert check_repository(str(git_repo), "release") == str(git_repo)


def test_a_tag_is_not_a_branch(git_repo):
    run_git(git_repo, "tag", "v1")
    with pytest.raises(RepositoryError) as error:
        check_repository(str(git_repo), "v1")
    assert error.value.field == "base_branch"


def test_a_symlink_to_a_repository_resolves(git_repo, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(git_repo)
    assert check_repository(str(link), "main") == str(git_repo.resolve())


def test_a_file_is_not_a_repository(tmp_path):
    path = tmp_path / "file.txt"
    path.write_text("x")
    with pytest.raises(RepositoryError, match="No folder"):
        check_repository(str(path), "main")


def test_branch_option_injection_is_refused(git_repo):
    with pytest.raises(RepositoryError) as error:
        check_repository(str(git_repo), "--output=/tmp/x")
    assert error.value.field == "base_branch"


# --- per-goal worktrees ----------------------------------------------------------------------------------

GOAL_ID = 7
AGENT = ("Goalpost agent", "agent@goalpost.invalid")


@pytest.fixture
def workspace(git_repo, tmp_path):
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    workspace.ensure()
    return workspace


def main_checkout_state(repo) -> tuple[str, str, str, str]:
    """What a person sees in their own checkout: branch, status, unstaged and staged diffs."""
    return (
        run_git(repo, "symbolic-ref", "HEAD"),
        run_git(repo, "status", "--porcelain", "--untracked-files=all"),
        run_git(repo, "diff"),
        run_git(repo, "diff", "--cached"),
    )


def subject_and_body(repo, rev: str) -> tuple[str, str]:
    subject = run_git(repo, "log", "-1", "--format=%s", rev).strip()
    return subject, run_git(repo, "log", "-1", "--format=%b", rev)


def test_ensure_creates_the_worktree_on_the_goal_branch_from_the_base(workspace, git_repo, tmp_path):
    assert workspace.path == tmp_path / "worktrees" / f"goal-{GOAL_ID}"
    assert workspace.branch == f"goalpost/{GOAL_ID}"
    assert (workspace.path / "app.py").read_text() == "print('hello')\n"
    assert run_git(workspace.path, "symbolic-ref", "HEAD").strip() == f"refs/heads/goalpost/{GOAL_ID}"
    assert workspace.head() == run_git(git_repo, "rev-parse", "main").strip()


def test_the_main_checkout_and_its_uncommitted_work_are_never_disturbed(git_repo, tmp_path):
    run_git(git_repo, "checkout", "-q", "-b", "feature")
    (git_repo / "app.py").write_text("print('work in progress')\n")
    (git_repo / "staged.txt").write_text("staged\n")
    run_git(git_repo, "add", "staged.txt")
    (git_repo / "notes.txt").write_text("untracked\n")
    before = main_checkout_state(git_repo)

    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    workspace.ensure()
    (workspace.path / "app.py").write_text("print('agent')\n")
    step = workspace.commit_step(1, "Change the greeting")
    workspace.reset_to(step.parent)
    workspace.discard_changes()
    workspace.remove()

    assert main_checkout_state(git_repo) == before
    assert (git_repo / "app.py").read_text() == "print('work in progress')\n"


def test_ensure_is_idempotent_and_keeps_the_work(workspace):
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")
    (workspace.path / "scratch.txt").write_text("uncommitted\n")
    workspace.ensure()
    workspace.ensure()
    assert workspace.head() == step.sha
    assert (workspace.path / "scratch.txt").exists()


@pytest.mark.parametrize(
    "lose_the_folder",
    [
        pytest.param(lambda workspace: shutil.rmtree(workspace.path), id="folder-deleted"),
        pytest.param(lambda workspace: workspace.remove(), id="worktree-removed"),
    ],
)
def test_ensure_reattaches_the_goal_branch_when_the_worktree_is_gone(workspace, lose_the_folder):
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")
    lose_the_folder(workspace)
    assert not workspace.path.exists()

    workspace.ensure()

    assert workspace.head() == step.sha
    assert (workspace.path / "new.py").read_text() == "x = 1\n"


def test_two_goals_on_one_repository_work_side_by_side(git_repo, tmp_path):
    first = Workspace(git_repo, 1, "main", tmp_path / "worktrees")
    second = Workspace(git_repo, 2, "main", tmp_path / "worktrees")
    first.ensure()
    second.ensure()
    (first.path / "one.txt").write_text("1\n")
    (second.path / "two.txt").write_text("2\n")

    one, two = first.commit_step(1, "One"), second.commit_step(1, "Two")

    assert "one.txt" in one.diff and "two.txt" not in one.diff
    assert "two.txt" in two.diff and "one.txt" not in two.diff
    assert run_git(git_repo, "rev-parse", "goalpost/1").strip() == one.sha
    assert run_git(git_repo, "rev-parse", "goalpost/2").strip() == two.sha
    assert not (first.path / "two.txt").exists()


def make_folder_in_the_way(repo, path):
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("mine")


@pytest.mark.parametrize(
    ("base", "setup", "message"),
    [
        pytest.param("nope", lambda repo, path: None, "no branch “nope”", id="missing-base-branch"),
        pytest.param("main", lambda repo, path: shutil.rmtree(repo / ".git"), "not a git repository", id="not-a-repo"),
        pytest.param("main", make_folder_in_the_way, "exists but is not a worktree", id="folder-in-the-way"),
        pytest.param(
            "main",
            lambda repo, path: run_git(repo, "checkout", "-q", "-b", f"goalpost/{GOAL_ID}"),
            "already (checked out|used by worktree)",
            id="branch-checked-out-by-the-user",
        ),
    ],
)
def test_ensure_refuses_what_it_cannot_work_on(git_repo, tmp_path, base, setup, message):
    workspace = Workspace(git_repo, GOAL_ID, base, tmp_path / "worktrees")
    setup(git_repo, workspace.path)
    before = main_checkout_state(git_repo) if (git_repo / ".git").exists() else None
    with pytest.raises(WorkspaceError, match=message):
        workspace.ensure()
    assert (workspace.path / "keep.txt").exists() or not any(workspace.path.glob("*"))
    if before is not None:
        assert main_checkout_state(git_repo) == before


def write_binary(path):
    (path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary\xff")


def rename_app(path):
    (path / "app.py").rename(path / "main.py")


@pytest.mark.parametrize(
    ("change", "in_diff", "empty"),
    [
        pytest.param(lambda path: (path / "new.py").write_text("x = 1\n"), "+++ b/new.py", False, id="new-file"),
        pytest.param(
            lambda path: (path / "app.py").write_text("print('bye')\n"),
            "+print('bye')",
            False,
            id="modified-file",
        ),
        pytest.param(lambda path: (path / "app.py").unlink(), "deleted file mode", False, id="deleted-file"),
        pytest.param(rename_app, "rename from app.py", False, id="renamed-file"),
        pytest.param(write_binary, "GIT binary patch", False, id="binary-file"),
        pytest.param(
            lambda path: (path / "latin1.txt").write_bytes("café\n".encode("latin-1")),
            "+caf",
            False,
            id="non-utf8-text",
        ),
        pytest.param(
            lambda path: (
                (path / "deep" / "er").mkdir(parents=True) or (path / "deep" / "er" / "x.txt").write_text("x\n")
            ),
            "+++ b/deep/er/x.txt",
            False,
            id="new-folder",
        ),
        pytest.param(lambda path: None, "", True, id="nothing-changed"),
    ],
)
def test_commit_step_commits_every_change_as_one_step(workspace, git_repo, change, in_diff, empty):
    parent = workspace.head()
    change(workspace.path)

    step = workspace.commit_step(1, "Do the thing")

    assert (step.parent, step.sha, step.empty) == (parent, workspace.head(), empty)
    assert in_diff in step.diff
    assert (step.diff == "") is empty
    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert run_git(git_repo, "log", "-1", "--format=%an <%ae>", step.sha).strip() == f"{AGENT[0]} <{AGENT[1]}>"
    assert run_git(workspace.path, "status", "--porcelain") == ""


LONG = "Make the dashboard query use one join instead of one query per row, and cache the filter options"


@pytest.mark.parametrize(
    ("summary", "subject", "body"),
    [
        pytest.param("Add caching", "Step 3: Add caching", "", id="short"),
        pytest.param(LONG, "Step 3: " + LONG[:62] + "…", LONG, id="long-subject-cut-full-text-in-body"),
        pytest.param("Add caching\n\nWhy: slow", "Step 3: Add caching", "Add caching\n\nWhy: slow", id="several-lines"),
        pytest.param("# not a comment", "Step 3: # not a comment", "", id="hash-kept"),
        pytest.param("", "Step 3", "", id="empty"),
    ],
)
def test_the_commit_message_names_the_step(workspace, summary, subject, body):
    step = workspace.commit_step(3, summary)
    actual_subject, actual_body = subject_and_body(workspace.path, step.sha)
    assert actual_subject == subject
    assert len(actual_subject) <= 72
    assert actual_body.strip() == body


def test_commit_step_never_runs_hooks_and_never_signs(workspace, git_repo, tmp_path):
    marker = tmp_path / "hook-ran"
    hooks = tmp_path / "hooks"
    for folder in (git_repo / ".git" / "hooks", hooks):
        folder.mkdir(exist_ok=True)
        for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout"):
            script = folder / hook
            script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
            script.chmod(0o755)
    run_git(git_repo, "config", "core.hooksPath", str(hooks))
    run_git(git_repo, "config", "commit.gpgsign", "true")
    run_git(git_repo, "config", "gpg.program", "false")
    (workspace.path / "new.py").write_text("x = 1\n")

    step = workspace.commit_step(1, "Add new.py")
    workspace.reset_to(step.parent)
    workspace.remove()
    workspace.ensure()

    assert not marker.exists()
    assert run_git(git_repo, "log", "-1", "--format=%G?", step.sha).strip() == "N"


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/etc/passwd", id="absolute-outside"),
        pytest.param("../../../outside.txt", id="relative-outside"),
        pytest.param("{path}/app.py", id="absolute-into-the-worktree"),
        pytest.param("hop", id="through-another-link"),
    ],
)
def test_commit_step_refuses_symlinks_that_point_outside(workspace, tmp_path, target):
    (tmp_path / "outside.txt").write_text("secret\n")
    (workspace.path / "sub").mkdir()
    if target == "hop":
        (workspace.path / "sub" / "hop").symlink_to("../../../outside.txt")
    (workspace.path / "sub" / "link").symlink_to(target.format(path=workspace.path))
    (workspace.path / "fine.txt").write_text("fine\n")
    run_git(workspace.path, "add", "fine.txt")
    head, status = workspace.head(), run_git(workspace.path, "status", "--porcelain")

    with pytest.raises(WorkspaceError, match="sub/link"):
        workspace.commit_step(1, "Sneak a link in")

    assert workspace.head() == head
    assert run_git(workspace.path, "status", "--porcelain") == status
    assert (workspace.path / "sub" / "link").is_symlink()


def test_a_symlink_inside_the_worktree_is_committed(workspace):
    (workspace.path / "docs").mkdir()
    (workspace.path / "docs" / "app-link.py").symlink_to("../app.py")
    step = workspace.commit_step(1, "Link")
    assert "new file mode 120000" in step.diff
    assert workspace.escaping_paths() == []


def test_escaping_paths_lists_new_links_that_leave_the_worktree(workspace):
    (workspace.path / "sub").mkdir()
    (workspace.path / "inside").symlink_to("app.py")
    (workspace.path / "sub" / "up").symlink_to("../app.py")
    (workspace.path / "etc").symlink_to("/etc")
    (workspace.path / "sub" / "escape").symlink_to("../../..")
    (workspace.path / "dangling").symlink_to("../nowhere/at/all")
    # A virtualenv's interpreter link is ignored, so no commit would take it.
    (workspace.path / ".gitignore").write_text(".venv/\n")
    (workspace.path / ".venv" / "bin").mkdir(parents=True)
    (workspace.path / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3")

    assert workspace.escaping_paths() == ["dangling", "etc", "sub/escape"]
    assert (
        run_git(workspace.path, "status", "--porcelain") == "?? .gitignore\n?? dangling\n?? etc\n?? inside\n?? sub/\n"
    )


def test_links_the_repository_already_has_are_left_alone(git_repo, tmp_path):
    (git_repo / "shared").symlink_to("/usr/share")
    run_git(git_repo, "add", "shared")
    run_git(git_repo, "commit", "-q", "-m", "a link the project keeps")
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    workspace.ensure()
    (workspace.path / "new.py").write_text("x = 1\n")

    assert workspace.escaping_paths() == []
    assert "new.py" in workspace.commit_step(1, "Add new.py").diff


def test_pending_diff_shows_uncommitted_and_untracked_work_and_leaves_the_index(workspace):
    (workspace.path / "app.py").write_text("print('changed')\n")
    (workspace.path / "new.txt").write_text("brand new\n")
    (workspace.path / "staged.txt").write_text("staged by the agent\n")
    run_git(workspace.path, "add", "staged.txt")
    status = run_git(workspace.path, "status", "--porcelain")

    diff = workspace.pending_diff()

    assert "+print('changed')" in diff
    assert "+brand new" in diff
    assert "+staged by the agent" in diff
    assert run_git(workspace.path, "status", "--porcelain") == status


def test_pending_diff_is_empty_when_nothing_changed(workspace):
    assert workspace.pending_diff() == ""


def test_reset_to_undoes_a_rejected_step(workspace):
    (workspace.path / ".gitignore").write_text("build/\n")
    (workspace.path / "kept.txt").write_text("kept\n")
    first = workspace.commit_step(1, "Keep this")
    (workspace.path / "rejected.txt").write_text("rejected\n")
    workspace.commit_step(2, "Reject this")
    (workspace.path / "build").mkdir()
    (workspace.path / "build" / "out.o").write_text("ignored\n")
    (workspace.path / "loose.txt").write_text("untracked\n")
    nested = workspace.path / "vendored"
    nested.mkdir()
    run_git(nested, "init", "-q")

    workspace.reset_to(first.sha)

    assert workspace.head() == first.sha
    assert sorted(path.name for path in workspace.path.iterdir()) == [
        ".git",
        ".gitignore",
        "app.py",
        "kept.txt",
    ]


def test_discard_changes_throws_away_uncommitted_work(workspace):
    (workspace.path / ".gitignore").write_text("*.log\n")
    step = workspace.commit_step(1, "Ignore logs")
    (workspace.path / "app.py").write_text("broken\n")
    (workspace.path / "debug.log").write_text("ignored\n")
    (workspace.path / "loose.txt").write_text("untracked\n")

    workspace.discard_changes()

    assert workspace.head() == step.sha
    assert workspace.pending_diff() == ""
    assert not (workspace.path / "debug.log").exists()
    assert (workspace.path / "app.py").read_text() == "print('hello')\n"


@pytest.mark.parametrize("sha", ["--hard", "main", "HEAD~1", "", "0123456789abcdef; rm -rf /"])
def test_reset_to_only_takes_a_sha(workspace, sha):
    with pytest.raises(WorkspaceError, match="not a commit sha"):
        workspace.reset_to(sha)


def test_base_sha_is_where_the_goal_started(workspace, git_repo):
    started = run_git(git_repo, "rev-parse", "main").strip()
    (workspace.path / "new.py").write_text("x = 1\n")
    workspace.commit_step(1, "Add new.py")
    (git_repo / "later.txt").write_text("the base moved on\n")
    run_git(git_repo, "add", "later.txt")
    run_git(git_repo, "commit", "-q", "-m", "later")

    assert workspace.base_sha() == started


def test_remove_keeps_the_branch_for_review(workspace, git_repo):
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")
    workspace.remove()
    workspace.remove()
    assert not workspace.path.exists()
    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert f"goal-{GOAL_ID}" not in run_git(git_repo, "worktree", "list")


def test_the_checkout_hint_names_the_repository_and_branch(workspace, git_repo):
    assert workspace.checkout_hint() == f"git -C {git_repo} log -p goalpost/{GOAL_ID}"
    workspace.remove()
    hint = workspace.checkout_hint()
    assert hint == f"git -C {git_repo} checkout goalpost/{GOAL_ID}"
    run_git(git_repo, *hint.split()[3:])  # the hint really works once the worktree is gone


def test_a_git_file_rewritten_by_the_agent_is_not_followed(workspace, git_repo, tmp_path):
    marker = tmp_path / "filter-ran"
    decoy = tmp_path / "decoy"
    run_git(tmp_path, "init", "-q", str(decoy))
    run_git(decoy, "config", "filter.evil.clean", f"touch {marker}; cat")
    run_git(decoy, "config", "core.fsmonitor", f"touch {marker}")
    (workspace.path / ".git").write_text(f"gitdir: {decoy / '.git'}\n")
    (workspace.path / ".gitattributes").write_text("* filter=evil\n")
    (workspace.path / "new.py").write_text("x = 1\n")

    step = workspace.commit_step(1, "Add new.py")
    workspace.pending_diff()

    assert not marker.exists()
    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert "new.py" in step.diff


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("GIT_DIR", "{tmp}/elsewhere", id="git-dir"),
        pytest.param("GIT_WORK_TREE", "{tmp}", id="work-tree"),
        pytest.param("GIT_INDEX_FILE", "{tmp}/index", id="index-file"),
        pytest.param("GIT_OBJECT_DIRECTORY", "{tmp}/objects", id="object-directory"),
        pytest.param("GIT_CONFIG_PARAMETERS", "'core.excludesFile'='{tmp}/ignore-all'", id="config-parameters"),
    ],
)
def test_git_variables_of_the_server_do_not_leak_in(git_repo, tmp_path, monkeypatch, variable, value):
    (tmp_path / "ignore-all").write_text("*\n")
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    with monkeypatch.context() as patch:
        patch.setenv(variable, value.format(tmp=tmp_path))
        workspace.ensure()
        (workspace.path / "new.py").write_text("x = 1\n")
        step = workspace.commit_step(1, "Add new.py")
    assert "+++ b/new.py" in step.diff
    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert run_git(workspace.path, "status", "--porcelain") == ""
    assert run_git(git_repo, "cat-file", "-t", step.sha).strip() == "commit"


def test_a_worktree_that_left_its_branch_is_refused(workspace):
    run_git(workspace.path, "checkout", "-q", "-b", "elsewhere")
    with pytest.raises(WorkspaceError, match=f"on refs/heads/elsewhere, not on goalpost/{GOAL_ID}"):
        workspace.commit_step(1, "Anything")
    with pytest.raises(WorkspaceError, match="not on"):
        workspace.ensure()


def test_a_missing_worktree_is_a_clear_error(git_repo, tmp_path):
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    with pytest.raises(WorkspaceError, match="run ensure"):
        workspace.head()

import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest

from goals.workspace import (
    DIFF_CAP,
    PlantedFiles,
    RepositoryError,
    Workspace,
    WorkspaceError,
    check_repository,
    planted_files,
)
from tests.factories import GIT_ENV, make_git_repo, run_git


def wgit(workspace: Workspace, *args: str) -> str:
    """Git on the goal's own checkout, as a person inspecting it would point it."""
    result = subprocess.run(
        ["git", f"--git-dir={workspace.git_dir}", f"--work-tree={workspace.path}", "-C", str(workspace.path), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return result.stdout


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
    assert wgit(workspace, "symbolic-ref", "HEAD").strip() == f"refs/heads/goalpost/{GOAL_ID}"
    assert workspace.head() == run_git(git_repo, "rev-parse", "main").strip()
    # Goalpost's own checkout: no .git in the worktree, the git directory outside it, the user's repo untouched.
    assert not (workspace.path / ".git").exists()
    assert workspace.git_dir == tmp_path / "gitdirs" / f"goal-{GOAL_ID}.git"
    assert "goalpost/" not in run_git(git_repo, "branch", "--list")
    assert "goal-" not in run_git(git_repo, "worktree", "list")


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
    assert wgit(first, "rev-parse", "goalpost/1").strip() == one.sha
    assert wgit(second, "rev-parse", "goalpost/2").strip() == two.sha
    assert not (first.path / "two.txt").exists()


def test_goals_of_one_repository_starting_at_once_on_several_workers_all_get_their_checkout(git_repo, tmp_path):
    """The first checkouts of a repository race to clone its mirror, and later ones to fetch into it: each waits for
    the other instead of failing ("Directory not empty", "cannot lock ref"), which paused a goal before its first
    step (the bench's lost_steps)."""

    def start_at_once(goal_ids: range) -> list[BaseException | None]:
        barrier = threading.Barrier(len(goal_ids))
        errors: list[BaseException | None] = [None] * len(goal_ids)

        def start(index: int) -> None:
            barrier.wait(timeout=30)
            try:
                Workspace(git_repo, goal_ids[index], "main", tmp_path / "worktrees").ensure()
            except BaseException as error:  # reported below, with the others
                errors[index] = error

        threads = [threading.Thread(target=start, args=(i,)) for i in range(len(goal_ids))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return errors

    assert start_at_once(range(1, 7)) == [None] * 6
    (git_repo / "later.py").write_text("LATER = 1\n")
    run_git(git_repo, "add", "-A")
    run_git(git_repo, "commit", "-q", "-m", "later")
    assert start_at_once(range(7, 13)) == [None] * 6
    latest = Workspace(git_repo, 12, "main", tmp_path / "worktrees")
    assert (latest.path / "later.py").read_text() == "LATER = 1\n"


def test_lock_files_left_by_a_worker_killed_mid_git_do_not_stop_the_next_step(workspace):
    """The bad-day soak paused a goal for good: a SIGKILL during the worker's git left index.lock behind, and every
    later attempt failed on it."""
    (workspace.path / "one.py").write_text("ONE = 1\n")
    first = workspace.commit_step(1, "One")
    (workspace.git_dir / "index.lock").write_text("")
    (workspace.git_dir / "refs" / "heads" / workspace.branch).with_suffix(".lock").write_text("")

    workspace.ensure()
    workspace.reset_to(first.sha)
    (workspace.path / "two.py").write_text("TWO = 2\n")
    second = workspace.commit_step(2, "Two")

    assert wgit(workspace, "log", "--format=%s", "-2").splitlines() == ["Step 2: Two", "Step 1: One"]
    assert second.sha != first.sha and not (workspace.git_dir / "index.lock").exists()


def make_folder_in_the_way(repo, path):
    path.mkdir(parents=True)
    (path / "keep.txt").write_text("mine")


@pytest.mark.parametrize(
    ("base", "setup", "message"),
    [
        pytest.param("nope", lambda repo, path: None, "no branch “nope”", id="missing-base-branch"),
        pytest.param("main", lambda repo, path: shutil.rmtree(repo / ".git"), "Could not copy the repository",
                     id="not-a-repo"),
        pytest.param("main", lambda repo, path: shutil.rmtree(repo), "No folder", id="no-folder"),
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
    assert wgit(workspace, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert wgit(workspace, "log", "-1", "--format=%an <%ae>", step.sha).strip() == f"{AGENT[0]} <{AGENT[1]}>"
    assert wgit(workspace, "status", "--porcelain") == ""
    assert step.paths == (() if empty else step.paths) and not step.truncated


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
    actual_subject = wgit(workspace, "log", "-1", "--format=%s", step.sha).strip()
    actual_body = wgit(workspace, "log", "-1", "--format=%b", step.sha)
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
    assert wgit(workspace, "log", "-1", "--format=%G?", step.sha).strip() == "N"


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
    wgit(workspace, "add", "fine.txt")
    head, status = workspace.head(), wgit(workspace, "status", "--porcelain")

    with pytest.raises(WorkspaceError, match="sub/link"):
        workspace.commit_step(1, "Sneak a link in")

    assert workspace.head() == head
    assert wgit(workspace, "status", "--porcelain") == status
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
    assert wgit(workspace, "status", "--porcelain") == "?? .gitignore\n?? dangling\n?? etc\n?? inside\n?? sub/\n"


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
    wgit(workspace, "add", "staged.txt")
    status = wgit(workspace, "status", "--porcelain")

    diff = workspace.pending_diff()

    assert "+print('changed')" in diff
    assert "+brand new" in diff
    assert "+staged by the agent" in diff
    assert wgit(workspace, "status", "--porcelain") == status


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


def test_remove_keeps_the_branch_for_review(workspace):
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")
    workspace.remove()
    workspace.remove()
    assert not workspace.path.exists()
    assert run_git(workspace.git_dir, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha


def test_publish_pushes_the_goal_branch_to_the_users_repository_and_nothing_else(workspace, git_repo):
    before = main_checkout_state(git_repo)
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")

    said = workspace.publish()

    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert said == f"Pushed goalpost/{GOAL_ID} ({step.sha[:12]}) to {git_repo}."
    assert main_checkout_state(git_repo) == before
    assert workspace.checkout_hint() == f"git -C {git_repo} log -p goalpost/{GOAL_ID}"
    run_git(git_repo, *workspace.checkout_hint().split()[3:])  # the hint really works


def test_a_repository_someone_else_owns_is_read_and_written_as_that_owner(git_repo, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root can hand a repository to another user")
    home = Path(tempfile.mkdtemp(prefix="goalpost-home-"))  # under /tmp, where another user can reach it
    home.chmod(0o755)
    os.chown(home, 4242, 4242)
    try:
        repo = home / "repo"
        shutil.copytree(git_repo, repo, symlinks=True)
        for folder, _dirs, files in os.walk(repo):
            for name in [folder, *(os.path.join(folder, f) for f in files)]:
                os.lchown(name, 4242, 4242)
        marker = home / "hook-ran-as"
        hook = repo / ".git" / "hooks" / "post-receive"
        hook.write_text(f"#!/bin/sh\nid -u > {marker}\n")
        hook.chmod(0o755)
        os.lchown(hook, 4242, 4242)
        workspace = Workspace(repo, GOAL_ID, "main", tmp_path / "worktrees")
        workspace.ensure()
        (workspace.path / "new.py").write_text("x = 1\n")
        workspace.commit_step(1, "Add new.py")

        workspace.publish()

        ref = repo / ".git" / "refs" / "heads" / "goalpost" / str(GOAL_ID)
        assert (ref.stat().st_uid, ref.parent.stat().st_uid) == (4242, 4242)
        assert marker.read_text().strip() == "4242"  # the owner's own hook ran as the owner, never as root
    finally:
        shutil.rmtree(home)


def test_the_checkout_is_made_from_the_repository_as_it_is_when_the_goal_starts(git_repo, tmp_path):
    first = Workspace(git_repo, 1, "main", tmp_path / "worktrees")
    first.ensure()
    (git_repo / "later.txt").write_text("the base moved on\n")
    run_git(git_repo, "add", "later.txt")
    run_git(git_repo, "commit", "-q", "-m", "later")

    second = Workspace(git_repo, 2, "main", tmp_path / "worktrees")
    second.ensure()

    assert not (first.path / "later.txt").exists()
    assert (second.path / "later.txt").exists()
    assert second.mirror.path == first.mirror.path


@pytest.mark.parametrize(
    ("plant", "expected"),
    [
        pytest.param(lambda path: (path / ".git").write_text("gitdir: /tmp/evil\n"), [".git"], id="git-file"),
        pytest.param(lambda path: run_git(path / "sub", "init", "-q"), ["sub/.git"], id="nested-repository"),
        pytest.param(lambda path: (path / "sub" / ".git").mkdir(), ["sub/.git"], id="git-folder"),
        pytest.param(lambda path: (path / "sub" / ".git").symlink_to("/etc"), ["sub/.git"], id="git-link"),
        pytest.param(lambda path: os.mkfifo(path / "sub" / "pipe"), ["sub/pipe"], id="fifo"),
    ],
)
def test_planted_git_control_and_special_files_fail_the_commit_and_are_removed_unread(workspace, plant, expected):
    (workspace.path / "sub").mkdir()
    (workspace.path / "sub" / "fine.py").write_text("ok\n")
    plant(workspace.path)
    head = workspace.head()

    assert planted_files(workspace.path) == expected
    with pytest.raises(PlantedFiles, match="removed unread"):
        workspace.commit_step(1, "Plant")

    assert workspace.head() == head
    assert planted_files(workspace.path) == []
    assert (workspace.path / "sub" / "fine.py").exists()


def test_a_git_file_written_by_the_agent_is_never_followed(workspace, tmp_path):
    marker = tmp_path / "filter-ran"
    decoy = tmp_path / "decoy"
    run_git(tmp_path, "init", "-q", str(decoy))
    run_git(decoy, "config", "filter.evil.clean", f"touch {marker}; cat")
    run_git(decoy, "config", "core.fsmonitor", f"touch {marker}")
    (workspace.path / ".git").write_text(f"gitdir: {decoy / '.git'}\n")
    (workspace.path / ".gitattributes").write_text("* filter=evil diff=evil\n")
    (workspace.path / "new.py").write_text("x = 1\n")

    with pytest.raises(PlantedFiles):
        workspace.commit_step(1, "Add new.py")
    step = workspace.commit_step(1, "Add new.py")
    workspace.pending_diff()
    workspace.reset_to(step.parent)

    assert not marker.exists()
    assert "new.py" in step.diff


def test_a_diff_past_the_cap_is_cut_at_a_file_and_says_so(workspace, monkeypatch):
    monkeypatch.setattr("goals.workspace.DIFF_CAP", 4000)
    (workspace.path / "small.txt").write_text("small\n")
    (workspace.path / "zbig.txt").write_text("line\n" * 5000)

    step = workspace.commit_step(1, "Big")

    assert step.truncated and step.diff_bytes > 4000
    assert len(step.diff) <= 4000 and "small.txt" in step.diff and "zbig.txt" not in step.diff
    assert step.paths == ("small.txt", "zbig.txt")
    assert DIFF_CAP > 4000


def test_a_folder_left_where_the_worktree_goes_is_moved_aside(git_repo, tmp_path):
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    workspace.path.mkdir(parents=True)
    (workspace.path / "keep.txt").write_text("mine")

    workspace.ensure()

    assert (workspace.path / "app.py").exists() and not (workspace.path / "keep.txt").exists()
    aside = [p for p in workspace.path.parent.iterdir() if p.name.startswith(f"goal-{GOAL_ID}.stale-")]
    assert [(p / "keep.txt").read_text() for p in aside] == ["mine"]


def test_the_worktree_belongs_to_the_sandbox_user(git_repo, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root hands files to another user")
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees", owner=(10001, 10001))
    workspace.ensure()
    (workspace.path / "app.py").write_text("changed\n")
    workspace.discard_changes()

    owners = {p.lstat().st_uid for p in [workspace.path, *workspace.path.rglob("*")]}
    assert owners == {10001}
    assert workspace.git_dir.stat().st_uid == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("GIT_DIR", "{tmp}/elsewhere", id="git-dir"),
        pytest.param("GIT_WORK_TREE", "{tmp}", id="work-tree"),
        pytest.param("GIT_INDEX_FILE", "{tmp}/index", id="index-file"),
        pytest.param("GIT_OBJECT_DIRECTORY", "{tmp}/objects", id="object-directory"),
        pytest.param("GIT_CONFIG_PARAMETERS", "'core.excludesFile'='{tmp}/ignore-all'", id="config-parameters"),
        pytest.param("GIT_CONFIG_GLOBAL", "{tmp}/global", id="global-config"),
    ],
)
def test_git_variables_of_the_server_do_not_leak_in(git_repo, tmp_path, monkeypatch, variable, value):
    (tmp_path / "ignore-all").write_text("*\n")
    (tmp_path / "global").write_text(f"[core]\n\texcludesFile = {tmp_path}/ignore-all\n")
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    with monkeypatch.context() as patch:
        patch.setenv(variable, value.format(tmp=tmp_path))
        workspace.ensure()
        (workspace.path / "new.py").write_text("x = 1\n")
        step = workspace.commit_step(1, "Add new.py")
    assert "+++ b/new.py" in step.diff
    assert wgit(workspace, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert wgit(workspace, "status", "--porcelain") == ""
    assert wgit(workspace, "cat-file", "-t", step.sha).strip() == "commit"


def test_a_checkout_that_left_its_branch_is_refused(workspace):
    wgit(workspace, "checkout", "-q", "-b", "elsewhere")
    with pytest.raises(WorkspaceError, match=f"on refs/heads/elsewhere, not on goalpost/{GOAL_ID}"):
        workspace.commit_step(1, "Anything")
    with pytest.raises(WorkspaceError, match="not on"):
        workspace.ensure()


def test_a_missing_worktree_is_a_clear_error(git_repo, tmp_path):
    workspace = Workspace(git_repo, GOAL_ID, "main", tmp_path / "worktrees")
    with pytest.raises(WorkspaceError, match="run ensure"):
        workspace.head()


def test_a_repository_given_by_url_is_cloned_fetched_and_pushed_to(git_repo, tmp_path):
    url = f"file://{git_repo}"
    workspace = Workspace(url, GOAL_ID, "main", tmp_path / "worktrees")
    workspace.ensure()
    (workspace.path / "new.py").write_text("x = 1\n")
    step = workspace.commit_step(1, "Add new.py")

    assert workspace.mirror.path.parent == tmp_path / "repos"
    assert workspace.publish() == f"Pushed goalpost/{GOAL_ID} ({step.sha[:12]}) to {url}."
    assert run_git(git_repo, "rev-parse", f"goalpost/{GOAL_ID}").strip() == step.sha
    assert workspace.checkout_hint() == f"git fetch {url} goalpost/{GOAL_ID} && git log -p FETCH_HEAD"


# --- instances: two databases, one var/ --------------------------------------------------------------------------


def test_two_instances_give_the_same_goal_number_folders_of_their_own(git_repo, tmp_path):
    other_repo = make_git_repo(tmp_path / "other", {"other.py": "OTHER = 1\n"})
    first = Workspace(git_repo, 1, "main", tmp_path / "worktrees", instance="first")
    second = Workspace(other_repo, 1, "main", tmp_path / "worktrees", instance="second")
    first.ensure()
    second.ensure()

    assert first.path == tmp_path / "worktrees" / "first" / "goal-1"
    assert second.git_dir == tmp_path / "gitdirs" / "second" / "goal-1.git"
    assert sorted(p.name for p in first.path.iterdir()) == ["app.py"]
    assert sorted(p.name for p in second.path.iterdir()) == ["other.py"]


def test_another_repositorys_checkout_in_the_goals_place_is_moved_aside_and_a_fresh_one_made(git_repo, tmp_path):
    """What switching DATABASE_URL used to leave: goal 1 of the other database, of another repository."""
    other_repo = make_git_repo(tmp_path / "other", {"other.py": "OTHER = 1\n"})
    Workspace(other_repo, 1, "main", tmp_path / "worktrees", instance="shared", mirror_dir=tmp_path / "m1").ensure()
    workspace = Workspace(git_repo, 1, "main", tmp_path / "worktrees", instance="shared", mirror_dir=tmp_path / "m2")

    workspace.ensure()
    (workspace.path / "app.py").write_text("changed\n")
    step = workspace.commit_step(1, "Change the app")

    assert step.paths == ("app.py",)
    assert sorted(p.name for p in workspace.path.iterdir()) == ["app.py"]
    aside = sorted(p.name.split(".stale-")[0] for p in workspace.path.parent.iterdir() if ".stale-" in p.name)
    assert aside == ["goal-1"]
    git_aside = [p for p in workspace.git_dir.parent.iterdir() if ".stale-" in p.name]
    assert len(git_aside) == 1 and (git_aside[0] / "HEAD").is_file()


@pytest.mark.parametrize("planted", ["instance", "worktree"])
def test_a_link_planted_in_the_worktree_path_steers_nothing_outside(git_repo, tmp_path, planted):
    """A link where the instance's folder or the goal's worktree goes, pointing at a folder that holds a
    `goal-1`: the link itself is moved aside, and nothing in the folder it points to is renamed or written."""
    victim = tmp_path / "victim"
    (victim / "goal-1").mkdir(parents=True)
    (victim / "goal-1" / "precious.txt").write_text("keep me")
    before = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))
    workspace = Workspace(git_repo, 1, "main", tmp_path / "worktrees", instance="inst")
    if planted == "instance":
        (tmp_path / "worktrees").mkdir()
        (tmp_path / "worktrees" / "inst").symlink_to(victim)
    else:
        workspace.path.parent.mkdir(parents=True)
        workspace.path.symlink_to(victim / "goal-1")

    workspace.ensure()

    assert sorted(str(p.relative_to(victim)) for p in victim.rglob("*")) == before
    assert (victim / "goal-1" / "precious.txt").read_text() == "keep me"
    for part in (workspace.path.parent, workspace.path):
        assert part.is_dir() and not part.is_symlink()
    assert sorted(p.name for p in workspace.path.iterdir()) == ["app.py"]
    links_aside = [p for p in workspace.path.parents[1 if planted == "instance" else 0].iterdir() if p.is_symlink()]
    assert len(links_aside) == 1 and ".stale-" in links_aside[0].name


def test_a_checkout_made_before_instances_goes_on_in_the_instances_folder(git_repo, tmp_path):
    old = Workspace(git_repo, 1, "main", tmp_path / "worktrees", mirror_dir=tmp_path / "mirror.git")
    old.ensure()
    (old.path / "app.py").write_text("step one\n")
    kept = old.commit_step(1, "Step one")

    workspace = Workspace(git_repo, 1, "main", tmp_path / "worktrees", instance="inst", mirror_dir=tmp_path / "mirror.git")
    workspace.ensure()

    assert workspace.head() == kept.sha
    assert (workspace.path / "app.py").read_text() == "step one\n"
    assert not old.git_dir.exists() and not old.path.exists()

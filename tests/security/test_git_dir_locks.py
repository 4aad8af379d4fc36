"""Clearing the lock files a killed worker left (goals/workspace.py, `Workspace._clear_stale_locks`) is the worker
deleting files in a goal's git directory: a link planted there must never steer that deletion outside it."""

from goals.workspace import Workspace
from tests.factories import make_git_repo


def test_clearing_stale_locks_follows_no_link_out_of_the_git_directory(tmp_path):
    repo = make_git_repo(tmp_path / "repo", {"app.py": "X = 1\n"})
    workspace = Workspace(repo, 1, "main", tmp_path / "worktrees")
    workspace.ensure()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.lock"
    victim.write_text("keep me\n")
    (workspace.git_dir / "refs" / "planted").symlink_to(outside, target_is_directory=True)  # a folder link
    (workspace.git_dir / "config.lock").symlink_to(victim)  # a lock that is a link
    (workspace.git_dir / "index.lock").write_text("")  # a real leftover

    workspace.ensure()

    assert victim.read_text() == "keep me\n"
    assert (workspace.git_dir / "config.lock").is_symlink()  # left for a person, never followed
    assert not (workspace.git_dir / "index.lock").exists()

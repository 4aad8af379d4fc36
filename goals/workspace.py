"""Git repositories and (with the goal-loop issue) the per-goal worktrees."""

import os
import subprocess
from pathlib import Path

GIT_TIMEOUT_S = 10


class RepositoryError(ValueError):
    """A repository path or branch that a goal cannot work on; the message is fit for a form."""

    def __init__(self, message: str, field: str = "repo_path"):
        super().__init__(message)
        self.field = field


def git(repo: str | Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        env=env,
        check=False,
    )


def check_repository(path: str, branch: str) -> str:
    """Return the repository's absolute top-level path, or raise RepositoryError saying what is wrong."""
    if not path:
        raise RepositoryError("Give the path of a git repository on the server.")
    repo = Path(path).expanduser()
    if not repo.is_absolute():
        raise RepositoryError("Use an absolute path (it starts with /).")
    if not repo.is_dir():
        raise RepositoryError(f"No folder at {repo}.")
    toplevel = git(repo, "rev-parse", "--show-toplevel")
    if toplevel.returncode != 0:
        bare = git(repo, "rev-parse", "--is-bare-repository")
        if bare.returncode == 0 and bare.stdout.strip() == "true":
            raise RepositoryError(f"{repo} is a bare repository: give a clone with a work tree.")
        raise RepositoryError(f"{repo} is not a git repository.")
    if not branch:
        raise RepositoryError("Name the base branch the goal starts from.", field="base_branch")
    if git(repo, "check-ref-format", "--branch", branch).returncode != 0:
        raise RepositoryError(f"“{branch}” is not a valid branch name.", field="base_branch")
    if git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").returncode != 0:
        raise RepositoryError(f"The repository has no branch “{branch}”.", field="base_branch")
    return toplevel.stdout.strip()

"""Git repositories, and the per-goal worktrees where agents work one committed step at a time."""

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
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


# --- per-goal worktrees ----------------------------------------------------------------------------------

WORKTREE_GIT_TIMEOUT_S = 300
SUBJECT_LIMIT = 72
# Command-line config outranks every config file: no hooks, no signing, no fsmonitor daemon, and no
# background gc left running after a commit.
SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "commit.gpgsign=false",
    "core.fsmonitor=false",
    "gc.auto=0",
    "maintenance.auto=false",
)
# Diffs in the shape goals.diffs parses, whatever the user's own git config says.
DIFF_ARGS = (
    "--binary",
    "-M",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
)
_SHA = re.compile(r"[0-9a-f]{4,64}")


class WorkspaceError(RuntimeError):
    """A git operation on a goal's worktree failed; the message is one line fit for the goal page."""


@dataclass(frozen=True)
class StepCommit:
    """The commit that ends a step: its sha, its parent, the diff between them, and whether it changed
    nothing."""

    sha: str
    parent: str
    diff: str
    empty: bool


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    # GIT_DIR, GIT_INDEX_FILE, GIT_CONFIG_PARAMETERS … inherited from a caller would point git elsewhere.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    return {**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(extra or {})}


def _subcommand(args: list[str]) -> str:
    words = iter(args)
    for word in words:
        if word in ("-C", "-c"):
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "git"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _step_message(number: int, summary: str) -> str:
    summary = summary.replace("\x00", "").strip()
    first, _, rest = summary.partition("\n")
    subject = f"Step {number}: {first.strip()}" if first.strip() else f"Step {number}"
    if len(subject) > SUBJECT_LIMIT:
        subject = subject[: SUBJECT_LIMIT - 1].rstrip() + "…"
    elif not rest.strip():
        return subject + "\n"
    return f"{subject}\n\n{summary}\n"


class Workspace:
    """The git worktree where one goal's agent works, on its own branch ``goalpost/<goal id>``.

    Git runs here with an explicit ``--git-dir``: the agent can rewrite the worktree's ``.git`` file, and
    the server must never follow it to a git directory (and its config) that the agent made.
    """

    def __init__(self, repo_path: str | Path, goal_id: int, base_branch: str, root: str | Path):
        self.repo_path = Path(repo_path).expanduser().absolute()
        self.goal_id = int(goal_id)
        self.base_branch = base_branch
        self.path = Path(root).expanduser().resolve() / f"goal-{self.goal_id}"
        self.branch = f"goalpost/{self.goal_id}"
        self._common_dir: Path | None = None

    def __repr__(self) -> str:
        return f"Workspace({str(self.repo_path)!r}, {self.goal_id}, {self.base_branch!r}, {str(self.path)!r})"

    # --- running git ---

    def _run(
        self,
        args: list[str],
        *,
        input: str | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        config = [arg for item in SAFE_CONFIG for arg in ("-c", item)]
        try:
            result = subprocess.run(
                ["git", *config, *args],
                input=input,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=WORKTREE_GIT_TIMEOUT_S,
                env=_git_env(env),
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            raise WorkspaceError(f"git {_subcommand(args)} took longer than {WORKTREE_GIT_TIMEOUT_S} s") from error
        except OSError as error:
            raise WorkspaceError(f"cannot run git: {error.strerror or error}") from error
        if check and result.returncode != 0:
            message = _one_line(result.stderr or result.stdout) or f"exit {result.returncode}"
            raise WorkspaceError(f"git {_subcommand(args)} failed: {message}")
        return result

    def _repo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self._run(["-C", str(self.repo_path), *args], check=check)

    def _tree(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        admin = self._require_admin_dir()
        prefix = [f"--git-dir={admin}", f"--work-tree={self.path}", "-C", str(self.path)]
        return self._run([*prefix, *args], input=input, env=env, check=check)

    # --- where things are ---

    def common_dir(self) -> Path:
        """The main repository's git directory (object store, refs, config)."""
        if self._common_dir is None:
            out = self._repo("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()
            self._common_dir = Path(out).resolve()
        return self._common_dir

    def _admin_dir(self) -> Path | None:
        """The ``.git/worktrees/<name>`` directory registered for this worktree's path, if any."""
        worktrees = self.common_dir() / "worktrees"
        if not worktrees.is_dir():
            return None
        wanted = self.path / ".git"
        for admin in sorted(worktrees.iterdir()):
            try:
                pointer = (admin / "gitdir").read_text().strip()
            except OSError:
                continue
            # Compared as written, not resolved: a symlink the agent put at .git must not match.
            if pointer and Path(os.path.normpath(admin / pointer)) == wanted:
                return admin
        return None

    def _require_admin_dir(self) -> Path:
        admin = self._admin_dir()
        if admin is None or not self.path.is_dir():
            raise WorkspaceError(f"The worktree {self.path} is missing: run ensure() first.")
        return admin

    def git_dirs(self) -> list[Path]:
        """The git directories a sandboxed process needs to run ``git`` in this worktree."""
        admin = self._admin_dir()
        return [self.common_dir(), *([admin] if admin else [])]

    # --- lifecycle ---

    def ensure(self) -> None:
        """Create the worktree on its branch (from the base branch) if missing; re-attach the branch if the
        worktree directory is gone. The user's main checkout and its current branch are never touched."""
        if not self.repo_path.is_dir():
            raise WorkspaceError(f"No folder at {self.repo_path}.")
        if self._repo("rev-parse", "--git-dir", check=False).returncode != 0:
            raise WorkspaceError(f"{self.repo_path} is not a git repository.")
        if self._admin_dir() is not None and self.path.is_dir():
            self._check_on_branch()
            return
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise WorkspaceError(f"{self.path} exists but is not a worktree of {self.repo_path}.")
        self._repo("worktree", "prune")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._branch_exists():
            self._repo("worktree", "add", "--quiet", str(self.path), self.branch)
        else:
            base = f"refs/heads/{self.base_branch}"
            if self._repo("rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False).returncode:
                raise WorkspaceError(f"The repository has no branch “{self.base_branch}”.")
            self._repo(
                "worktree",
                "add",
                "--quiet",
                "--no-track",
                "-b",
                self.branch,
                str(self.path),
                base,
            )

    def _branch_exists(self) -> bool:
        ref = f"refs/heads/{self.branch}"
        return self._repo("rev-parse", "--verify", "--quiet", ref, check=False).returncode == 0

    def _check_on_branch(self) -> None:
        result = self._tree("symbolic-ref", "--quiet", "HEAD", check=False)
        current = result.stdout.strip() or "a detached HEAD"
        if current != f"refs/heads/{self.branch}":
            raise WorkspaceError(f"The worktree {self.path} is on {current}, not on {self.branch}.")

    def remove(self) -> None:
        """Remove the worktree; the branch stays so the goal's commits remain reviewable."""
        if self._admin_dir() is not None:
            self._repo("worktree", "remove", "--force", str(self.path))
        self._repo("worktree", "prune")

    # --- reading ---

    def head(self) -> str:
        """The sha of the worktree's HEAD."""
        return self._tree("rev-parse", "--verify", "HEAD").stdout.strip()

    def base_sha(self) -> str:
        """The base-branch commit the goal started from (merge-base of the goal branch and the base)."""
        branch, base = f"refs/heads/{self.branch}", f"refs/heads/{self.base_branch}"
        return self._repo("merge-base", branch, base).stdout.strip()

    @contextlib.contextmanager
    def _scratch_index(self) -> Iterator[dict[str, str]]:
        """An environment whose index holds everything ``git add -A`` would stage; the real index is not
        touched."""
        with tempfile.TemporaryDirectory(prefix="goalpost-index-") as scratch:
            index = Path(scratch) / "index"
            real_index = self._require_admin_dir() / "index"
            if real_index.is_file():
                shutil.copyfile(real_index, index)  # keeps stat data, so `add` rehashes only what changed
            env = {"GIT_INDEX_FILE": str(index)}
            if not index.exists():
                self._tree("read-tree", "HEAD", env=env)
            self._tree("add", "-A", env=env)
            yield env

    def pending_diff(self) -> str:
        """Uncommitted changes, untracked files included, against HEAD; the real index stays as it is."""
        with self._scratch_index() as env:
            return self._tree("diff", "--cached", *DIFF_ARGS, "HEAD", env=env).stdout

    def escaping_paths(self) -> list[str]:
        """New or changed symlinks that the next commit would take (ignored files are not) whose target is
        absolute or resolves outside the worktree."""
        with self._scratch_index() as env:
            args = ("diff", "--cached", "--name-only", "--no-renames", "-z", "--diff-filter=ACMRT", "HEAD")
            changed = self._tree(*args, env=env).stdout.split("\0")
        return sorted(path for path in changed if path and self._escapes(path))

    def _escapes(self, relative: str) -> bool:
        link = self.path / relative
        if not link.is_symlink():
            return False
        if os.path.isabs(os.readlink(link)):
            return True
        return not Path(os.path.realpath(link)).is_relative_to(self.path)

    # --- changing ---

    def commit_step(
        self,
        number: int,
        summary: str,
        author: tuple[str, str] = ("Goalpost agent", "agent@goalpost.invalid"),
    ) -> StepCommit:
        """Commit everything in the worktree as step ``number`` (an empty commit when nothing changed).

        Refuses, before staging anything, when a new or changed path is a symlink pointing outside the
        worktree (see :meth:`escaping_paths`).
        """
        self._check_on_branch()
        parent = self.head()
        escaping = self.escaping_paths()
        if escaping:
            shown = ", ".join(escaping[:5]) + (f" and {len(escaping) - 5} more" if len(escaping) > 5 else "")
            raise WorkspaceError(f"Step {number} not committed: symlinks point outside the worktree: {shown}")
        self._tree("add", "-A")
        name, email = author
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }
        self._tree(
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "--cleanup=whitespace",
            "-F",
            "-",
            input=_step_message(number, summary),
            env=identity,
        )
        sha = self.head()
        diff = self._tree("diff", *DIFF_ARGS, parent, sha).stdout
        trees = self._tree("rev-parse", f"{parent}^{{tree}}", f"{sha}^{{tree}}").stdout.split()
        return StepCommit(sha=sha, parent=parent, diff=diff, empty=trees[0] == trees[1])

    def reset_to(self, sha: str) -> None:
        """Undo everything after ``sha``: hard reset the goal branch to it and delete untracked and ignored
        files (nested repositories the agent made included)."""
        if not _SHA.fullmatch(sha):
            raise WorkspaceError(f"“{_one_line(sha, 80)}” is not a commit sha.")
        self._check_on_branch()
        self._tree("reset", "--quiet", "--hard", sha)
        self._tree("clean", "-ffdxq")

    def discard_changes(self) -> None:
        """Throw away uncommitted work: reset to HEAD and delete untracked and ignored files."""
        self._tree("reset", "--quiet", "--hard", "HEAD")
        self._tree("clean", "-ffdxq")

    def checkout_hint(self) -> str:
        """A command a person can paste to look at the goal's work from the main checkout."""
        repo = shlex.quote(str(self.repo_path))
        if self.path.is_dir():
            # The branch is checked out in the worktree, so git would refuse to check it out again.
            return f"git -C {repo} log -p {self.branch}"
        return f"git -C {repo} checkout {self.branch}"

"""The bubblewrap sandbox in tests: skip where it cannot run, and folders the sandbox user may reach."""

import os
import shutil
from pathlib import Path

import pytest

from goals.sandbox import identity, sandbox_available, sandbox_reason


def require_sandbox() -> None:
    """Skip when bubblewrap cannot run here; on CI, a bubblewrap that is installed but unusable fails."""
    if sandbox_available():
        return
    if os.environ.get("CI") and shutil.which("bwrap"):
        pytest.fail(f"bubblewrap is installed but unusable on CI: {sandbox_reason()}")
    pytest.skip(f"no usable sandbox here: {sandbox_reason()}")


def folder_outside_tmp() -> Path:
    # The sandbox gives every command an empty /tmp, and pytest's tmp_path sits in a folder only root may enter.
    for candidate in (Path("/var/tmp"), Path.home()):
        resolved = candidate.resolve()
        if resolved.is_dir() and not resolved.is_relative_to("/tmp") and os.access(resolved, os.W_OK):
            return resolved
    pytest.skip("no writable folder outside /tmp to lay out a server in")


def give_to_sandbox_user(path: Path) -> None:
    """Make ``path`` and everything in it the sandbox user's, as the worker does with a worktree."""
    who = identity()
    if not who.switched:
        return
    os.chown(path, who.uid, who.gid)
    for root, folders, files in os.walk(path):
        for name in folders + files:
            os.chown(os.path.join(root, name), who.uid, who.gid, follow_symlinks=False)

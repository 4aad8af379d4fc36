import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.sandbox import folder_outside_tmp, give_to_sandbox_user, require_sandbox


@pytest.fixture
def outside_tmp():
    """A fresh folder outside /tmp that the sandbox user may pass through (but not list); removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="goalpost-sandbox-", dir=folder_outside_tmp()))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def box_worktree(outside_tmp):
    """An empty worktree the sandbox user owns and can reach."""
    require_sandbox()
    worktree = outside_tmp / "worktree"
    worktree.mkdir()
    give_to_sandbox_user(worktree)
    return worktree

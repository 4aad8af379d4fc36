"""The agent adapters' tests: a worktree where app.py prints hello, fake agent executables, a fake chat API."""

import pytest

from tests.support.fakes import install_fake
from tests.support.fakes.chat_server import FakeChatServer


@pytest.fixture
def worktree(git_repo):
    """The repository of `git_repo`: app.py prints hello, committed on main."""
    return git_repo


@pytest.fixture
def fake_bin(tmp_path):
    """A bin folder holding fake codex, claude, aider and tool executables."""
    bin_dir = tmp_path / "bin"
    for name in ("codex", "claude", "aider", "tool", "wrapper"):
        install_fake(bin_dir, name)
    return bin_dir


@pytest.fixture
def chat_server():
    server = FakeChatServer().start()
    yield server
    server.stop()

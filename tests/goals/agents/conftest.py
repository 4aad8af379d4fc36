from pathlib import Path

import pytest

from goals.agents.base import AgentContext
from goals.lint import Contract, EvidenceCheck
from tests.support.fakes import install_fake
from tests.support.fakes.chat_server import FakeChatServer

GREETING_PATCH = """\
diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-print('hello')
+print('hi')
"""

CONTRACT = Contract(
    objective="Change the greeting printed by app.py from hello to hi",
    constraints=("Keep app.py printing exactly one line",),
    evidence=(EvidenceCheck(kind="command", command="python app.py", expect_exit=0),),
    done_criteria="`python app.py` prints hi",
    protected_paths=("generated/**",),
    scope_paths=("app.py", "tests/**"),
)


def make_context(worktree: Path, **changes: object) -> AgentContext:
    """A step context on ``worktree``; keyword arguments replace any field."""
    fields: dict = {
        "contract": CONTRACT,
        "goal_title": "Friendlier greeting",
        "step_number": 1,
        "run_index": 0,
        "worktree": worktree,
        "timeout_s": 60,
    }
    fields.update(changes)
    return AgentContext(**fields)


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

import sys
from pathlib import Path

import pytest

from goals.agents.base import AgentContext
from goals.lint import Contract, EvidenceCheck
from tests.goals.agents.fakes.chat_server import FakeChatServer

FAKES = Path(__file__).parent / "fakes"

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


def install_fake(bin_dir: Path, name: str, source: str | None = None) -> Path:
    """Install fakes/<source>.py as an executable called ``name`` whose #! line is this Python."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    script = FAKES / f"{source or name}.py"
    path.write_text(
        f"#!{sys.executable}\n"
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(FAKES)!r})\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    path.chmod(0o755)
    return path


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

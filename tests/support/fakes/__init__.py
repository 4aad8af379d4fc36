"""Stand-ins for the far edge: command-line agents (installed as executables by the tests), a chat server and
Codex's app-server (run with this Python)."""

import sys
from pathlib import Path

FAKES = Path(__file__).parent
CODEX_APP_SERVER = FAKES / "codex_app_server.py"


def install_fake(bin_dir: Path, name: str, source: str | None = None) -> Path:
    """Install <source>.py of this folder as an executable called ``name`` whose #! line is this Python."""
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

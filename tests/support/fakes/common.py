"""What every fake command-line agent does: record how it was called, edit app.py, leave a child behind."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def scenario() -> str:
    return os.environ.get("FAKE_SCENARIO", "success")


def record() -> None:
    """Write argv, cwd and the environment's names to $FAKE_RECORD, when set."""
    path = os.environ.get("FAKE_RECORD")
    if path:
        Path(path).write_text(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "env": sorted(os.environ)}))


def edit_greeting() -> None:
    app = Path("app.py")
    app.write_text(app.read_text().replace("hello", "hi"))


def hang() -> None:
    """Start a child that sleeps, write both pids to $FAKE_PIDS, then hang."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    Path(os.environ["FAKE_PIDS"]).write_text(json.dumps([os.getpid(), child.pid]))
    time.sleep(600)


def emit(event: dict) -> None:
    print(json.dumps(event), flush=True)

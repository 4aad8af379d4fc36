"""docs/architecture.md is the page a newcomer reads first: every file and function it names exists."""

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text()


def test_every_file_the_page_names_exists():
    named = set(re.findall(r"`((?:goals|approvals|gateway|config|clients|docs|tests)/[\w./]+\.(?:py|md))`", DOC))
    rooms = {"goals", "approvals", "gateway", "config"}
    short = {  # "`models.py`" in a room's row: that room's file
        f"{room}/{name}"
        for line in DOC.splitlines()
        if line.startswith("| `")
        for room in rooms
        if line.startswith(f"| `{room}/`")
        for name in re.findall(r"`(\w+\.py)`", line)
    }
    missing = sorted(path for path in named | short if not (ROOT / path).exists() and not (ROOT / "clients" / path).exists())
    assert len(named | short) > 20 and missing == []


def test_every_function_the_page_names_exists():
    named = set(re.findall(r"`(loop|judge|gates|workspace|delivery)\.(\w+)", DOC))
    modules = {"loop": "goals.loop", "judge": "goals.judge", "gates": "goals.gates", "workspace": "goals.workspace",
               "delivery": "approvals.delivery"}
    missing = sorted(f"{module}.{name}" for module, name in named if name != "py" and not hasattr(importlib.import_module(modules[module]), name))
    assert named and missing == []

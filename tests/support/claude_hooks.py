"""The Claude Code settings.json of docs/agents.md, as the real-client tests use them: parsed from the doc, so the
doc and the tests cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENTS_DOC = ROOT / "docs" / "agents.md"
DOC_URL = "http://127.0.0.1:8000"


def documented_settings(kind: str, goalpost_url: str = DOC_URL) -> dict:
    """docs/agents.md's settings.json for the `command` or the `http` hook, pointed at `goalpost_url`."""
    blocks = re.findall(r"```json\n(.*?)```", AGENTS_DOC.read_text(), flags=re.DOTALL)
    for block in blocks:
        settings = json.loads(block)
        hooks = settings.get("hooks", {}).get("PreToolUse", [])
        if hooks and hooks[0]["hooks"][0]["type"] == kind:
            return json.loads(block.replace(DOC_URL, goalpost_url.rstrip("/")))
    raise LookupError(f"docs/agents.md shows no {kind} hook settings")

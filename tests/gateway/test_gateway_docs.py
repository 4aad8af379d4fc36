"""The Claude Code settings.json snippets people paste from the README and docs/agents.md: valid JSON, the hook
shapes Claude Code reads, pointing at the hook endpoint, with a timeout above the server's wait for the phone."""

import json
import re
from pathlib import Path

import pytest
from django.urls import resolve

from gateway.api import hook_wait_default

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "agents.md"]
EVENTS = ("PreToolUse", "PostToolUse", "PostToolUseFailure", "Notification", "Stop")


def settings_snippets(path: Path) -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", path.read_text(), flags=re.DOTALL)
    return [snippet for snippet in map(json.loads, blocks) if "hooks" in snippet]


def hooks_of(snippet: dict, event: str) -> list[dict]:
    return [hook for group in snippet["hooks"].get(event, []) for hook in group["hooks"]]


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_both_hook_kinds_are_shown_with_a_timeout_above_the_wait(path):
    # tests/agents/test_claude_hooks.py runs the real Claude Code with these very snippets.
    snippets = settings_snippets(path)
    kinds = {hook["type"] for snippet in snippets for hook in hooks_of(snippet, "PreToolUse")}
    assert kinds == {"command", "http"}
    for snippet in snippets:
        assert set(snippet["hooks"]) == set(EVENTS)
        for group in [group for event in EVENTS[:3] for group in snippet["hooks"][event]]:
            assert re.fullmatch(group["matcher"], "Bash") and re.fullmatch(group["matcher"], "mcp__db__query")
            assert not re.fullmatch(group["matcher"], "Read")
        for hook in hooks_of(snippet, "PreToolUse"):
            assert hook["timeout"] > hook_wait_default()


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_the_http_hook_posts_to_the_hook_endpoint_with_the_bearer_token(path):
    http_hooks = [
        hook
        for snippet in settings_snippets(path)
        for event in EVENTS
        for hook in hooks_of(snippet, event)
        if hook["type"] == "http"
    ]
    assert len(http_hooks) == 5
    for hook in http_hooks:
        assert resolve(re.sub(r"^https?://[^/]+", "", hook["url"])).url_name == "api_claude_hook"
        assert hook["headers"] == {"Authorization": "Bearer $GOALPOST_TOKEN"}
        assert hook["allowedEnvVars"] == ["GOALPOST_TOKEN"]


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_the_command_hook_runs_the_installed_console_script(path):
    commands = {
        hook["command"]
        for snippet in settings_snippets(path)
        for event in EVENTS
        for hook in hooks_of(snippet, event)
        if hook["type"] == "command"
    }
    assert commands == {"goalpost-hook"}
    pyproject = (ROOT / "clients" / "pyproject.toml").read_text()
    assert re.search(r'^goalpost-hook = "goalpost_client\.hook:main"$', pyproject, flags=re.MULTILINE)

"""The fake Responses API speaks the protocol the real Codex CLI speaks: ``codex exec --json`` completes turns
against it, runs the tools it scripts, and sends what a test then reads."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.fakes import responses_api as fake

pytestmark = pytest.mark.real_agent

KEY = "sk-fake-smoke-0123456789"


def codex(codex_cli: Path, api: fake.ResponsesAPI, tmp_path: Path, prompt: str = "go") -> tuple[int, list[dict]]:
    """Run the real ``codex exec --json`` in a fresh git repository of tmp_path against ``api``."""
    home, repo = tmp_path / "codex-home", tmp_path / "repo"
    home.mkdir(exist_ok=True)
    if not repo.exists():
        repo.mkdir()
        (repo / "app.py").write_text("print('hello')\n")
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    (home / "catalog.json").write_text(json.dumps(fake.model_catalog("fake-model")))
    (home / "config.toml").write_text(
        'model = "fake-model"\n'
        'model_provider = "fake"\n'
        f'model_catalog_json = "{home / "catalog.json"}"\n'
        "[model_providers.fake]\n"
        'name = "fake"\n'
        f'base_url = "{api.base_url}"\n'
        'wire_api = "responses"\n'
        'env_key = "FAKE_MODEL_API_KEY"\n'
        "request_max_retries = 2\n"
        "stream_max_retries = 2\n"
        "stream_idle_timeout_ms = 5000\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CODEX_HOME": str(home), "FAKE_MODEL_API_KEY": KEY}
    done = subprocess.run(
        [
            str(codex_cli),
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            prompt,
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done.returncode, events


def test_codex_completes_a_turn_with_a_command_and_reports_the_usage(codex_cli, tmp_path):
    used = fake.usage(input_tokens=1200, output_tokens=300, cached=1000, reasoning=120)
    with fake.ResponsesAPI(fake.shell("cat app.py", call_id="call_cat"), fake.message("All done.", used)) as api:
        status, events = codex(codex_cli, api, tmp_path)
    assert status == 0, events
    commands = [e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "command_execution"]
    assert commands and "print('hello')" in commands[0]["aggregated_output"]
    assert "print('hello')" in api.requests[-1].output_text("call_cat")
    completed = [e for e in events if e["type"] == "turn.completed"]
    assert completed[0]["usage"]["input_tokens"] == 1200
    assert completed[0]["usage"]["cached_input_tokens"] == 1000
    assert completed[0]["usage"]["output_tokens"] == 300
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in api.requests)
    assert all(r.body["stream"] is True for r in api.requests)


def test_codex_applies_a_patch_sent_as_its_freeform_apply_patch_tool(codex_cli, tmp_path):
    patch = "*** Begin Patch\n*** Update File: app.py\n@@\n-print('hello')\n+print('hi')\n*** End Patch\n"
    with fake.ResponsesAPI(fake.apply_patch(patch), fake.message("Edited.")) as api:
        status, events = codex(codex_cli, api, tmp_path)
    assert status == 0, events
    assert (tmp_path / "repo" / "app.py").read_text() == "print('hi')\n"
    changes = [e["item"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "file_change"]
    assert changes and changes[0]["status"] == "completed"
    assert "custom" in [t.get("type") for t in api.requests[0].body["tools"] if t.get("name") == "apply_patch"]


def test_codex_retries_a_500_and_a_cut_stream_then_completes(codex_cli, tmp_path):
    with fake.ResponsesAPI(fake.http_error(500), fake.stream_cut(), fake.message("Done after retries.")) as api:
        status, events = codex(codex_cli, api, tmp_path)
    assert status == 0, events
    assert len(api.requests) == 3
    assert [e for e in events if e["type"] == "turn.completed"]
    messages = [
        e["item"]["text"] for e in events if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    ]
    assert messages[-1] == "Done after retries."

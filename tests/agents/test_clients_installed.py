"""The real agent clients are there, at the versions pyproject.toml pins (or the newest, under make agents-check)."""

import subprocess

import pytest

from tests.support import agent_clients

pytestmark = pytest.mark.real_agent


@pytest.mark.parametrize("name", sorted(agent_clients.CLIENTS))
def test_the_client_runs_at_the_version_asked_for(name, request):
    command = request.getfixturevalue(f"{name}_cli")
    done = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    version = agent_clients.versions()[agent_clients.CLIENTS[name].package]
    assert version in done.stdout


def test_the_versions_are_pinned_in_one_place_and_exactly():
    pins = agent_clients.pinned()
    assert set(pins) == {client.package for client in agent_clients.CLIENTS.values()}
    for version in pins.values():
        assert version.count(".") == 2 and all(part.isdigit() for part in version.split("."))


def test_a_version_is_installed_whole_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("GOALPOST_AGENT_CACHE", str(tmp_path))
    with pytest.raises(agent_clients.Unavailable, match="npm install"):
        agent_clients.install("@openai/codex", "0.0.0-no-such-version")
    assert agent_clients.installed("@openai/codex", "0.0.0-no-such-version") is None
    assert [p for p in tmp_path.iterdir() if p.name != ".lock"] == []

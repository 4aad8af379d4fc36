"""`manage.py codex_bridge`, the server's side of the Codex bridge (goalpost_client.codex_bridge): it mints an agent
token for the run, runs the bridge next to the server, and revokes the token at the end."""

import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from gateway.models import AgentToken
from tests.factories import subprocess_database_url
from tests.support.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_management_command_mints_a_token_for_the_run_and_revokes_it(
    live_url, running, git_repo, tmp_path, fake_codex_app_server
):
    log = tmp_path / "received.jsonl"
    env = {
        **os.environ,
        "DATABASE_URL": subprocess_database_url(),
        "FAKE_CODEX_SCENARIO": json.dumps([{"kind": "command", "command": "ls", "cwd": str(git_repo)}]),
        "FAKE_CODEX_LOG": str(log),
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "codex_bridge",
            str(running.pk),
            "--url",
            live_url,
            "--one-turn",
            "--",
            sys.executable,
            str(fake_codex_app_server),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr.decode()
    answers = [json.loads(line) for line in log.read_text().splitlines()]
    assert [m["result"]["decision"] for m in answers if m.get("id") == 1001] == ["accept"]
    token = AgentToken.objects.get(goal=running)
    assert token.name == "codex bridge" and token.revoked_at is not None


def test_the_management_command_asks_for_a_cwd_when_the_repository_is_a_url(running, make_repository):
    running.repository = make_repository("https://github.com/acme/shop.git")
    running.save(update_fields=["repository"])
    with pytest.raises(CommandError, match="is a URL: give --cwd"):
        call_command("codex_bridge", str(running.pk))

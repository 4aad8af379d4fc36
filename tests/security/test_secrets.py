"""Secrets stay out of the logs and out of push payloads, with every logger at DEBUG (and SQL logged too).

Drives the flows that handle a secret: signing in with a password (right and wrong), creating an agent token,
the gateway called with a bearer token (good, foreign, revoked), and a push signed with the VAPID key.
"""

import json
import logging
import re

import pytest
from django.urls import reverse

from approvals import push
from approvals.models import PushSubscription
from config.redact import REDACTED, RedactSecrets, redact
from gateway.models import AgentToken
from tests.factories import client_for, make_goal
from tests.support.fake_push import FakePushService

LOGGERS = ("", "django", "django.request", "django.security", "django.db.backends", "axes", "urllib3", "approvals")


@pytest.fixture
def every_log_record(caplog):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler could write out for the record: message, arguments, exception and extra fields."""
    parts = [record.getMessage(), repr(record.args), record.exc_text or ""]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    parts.extend(repr(value) for key, value in vars(record).items() if key not in ("msg", "args", "exc_info"))
    return "\n".join(parts)


def assert_nowhere(secrets: dict[str, str], texts: list[str]) -> None:
    for name, secret in secrets.items():
        assert len(secret) >= 8, name
        leaks = [text[:300] for text in texts if secret in text]
        assert not leaks, f"{name} appears in: {leaks}"


def test_no_secret_in_any_log_record(world, every_log_record, settings, tmp_path):
    # DEBUG on, as someone chasing a problem would run it: Django then logs every SQL query with its parameters.
    # Passwords and agent tokens are stored only as hashes, so not even the SQL shows them.
    settings.DEBUG = True
    secrets = {"owner's password": "owner-pass-123", "a wrong password": "wrong-guess-987"}

    # Signing in, wrongly then rightly.
    browser = client_for(world, "anonymous")
    browser.post(reverse("login"), {"username": "owner", "password": "wrong-guess-987"})
    assert browser.post(reverse("login"), {"username": "owner", "password": "owner-pass-123"}).status_code == 302

    # A new agent token, shown once to the owner.
    owner = client_for(world, "owner")
    created = owner.post(reverse("gateway:create_token", args=[world.goal.pk]), {"name": "ci", "days": 7})
    token = AgentToken.objects.get(goal=world.goal, name="ci")
    secret = re.search(r'id="new-agent-token">([^<]+)<', created.content.decode()).group(1)
    assert AgentToken.authenticate(secret) == token
    secrets["new agent token"] = secret
    secrets["fixture agent token"] = world.secret

    # The gateway with that token, with another goal's token, and with a revoked one.
    agent = client_for(world, "agent")
    agent.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    assert agent.get(reverse("api_goal", args=[world.goal.pk])).status_code == 200
    propose = reverse("api_propose_step", args=[world.goal.pk])
    body = json.dumps({"tool": "Bash", "input": {"command": "rm -rf build"}})
    assert agent.post(propose, body, content_type="application/json").status_code == 200
    other = make_goal(world.users["outsider"], tmp_path)
    secrets["another goal's token"] = foreign = AgentToken.issue(other, world.users["outsider"])[1]
    agent.defaults["HTTP_AUTHORIZATION"] = f"Bearer {foreign}"
    assert agent.get(reverse("api_goal", args=[world.goal.pk])).status_code == 404
    token.revoke(world.users["owner"])
    agent.defaults["HTTP_AUTHORIZATION"] = f"Bearer {secret}"
    assert agent.post(propose, body, content_type="application/json").status_code == 401

    assert every_log_record.records, "nothing was logged: the capture is not working"
    assert_nowhere(secrets, [record_text(record) for record in every_log_record.records])


def test_no_secret_in_a_push_or_its_logs(world, every_log_record, settings):
    with FakePushService(settings.VAPID_PUBLIC_KEY) as service:
        subscription: PushSubscription = service.subscribe(world.users["owner"])
        push.send_notification(subscription, push.payload_for_request(world.request, world.users["owner"]))
        [received] = service.received
    assert received.payload["type"]
    secrets = {
        "VAPID private key": settings.VAPID_PRIVATE_KEY,
        "SECRET_KEY": settings.SECRET_KEY,
        "the browser's auth secret": subscription.auth,
        "the agent token": world.secret,
        "the owner's password": "owner-pass-123",
    }
    assert_nowhere(secrets, [json.dumps(received.payload)])
    assert_nowhere(secrets, [record_text(record) for record in every_log_record.records])


def test_the_console_blanks_a_token_even_from_a_logger_turned_up_to_debug(world, caplog):
    """django.template at DEBUG logs whole contexts, the token just shown among them: the console's filter
    (config/redact.py) blanks it, and the message stays readable."""
    [console] = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecrets) for f in h.filters)]
    caplog.set_level(logging.DEBUG, logger="django.template")
    created = client_for(world, "owner").post(
        reverse("gateway:create_token", args=[world.goal.pk]), {"name": "ci", "days": 7}
    )
    secret = re.search(r'id="new-agent-token">([^<]+)<', created.content.decode()).group(1)
    template_records = [record for record in caplog.records if record.name == "django.template"]
    assert any(REDACTED in record_text(record) for record in template_records), "no record to check the filter on"
    for record in template_records:
        assert console.filter(record)
        written = console.format(record)
        assert secret not in written and secret not in record_text(record)


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer gp_abcdefghijklmnopqrstuvwxyz012345",
        "{'HTTP_AUTHORIZATION': 'Bearer s3cr3t-value-here'}",
        "{'username': 'owner', 'password': 's3cr3t-value-here'}",
        "token gp_abcdefghijklmnopqrstuvwxyz012345 used",
    ],
)
def test_redact_blanks_each_kind_of_credential(text):
    cleaned = redact(text)
    assert "s3cr3t-value-here" not in cleaned and "gp_abcdefghijklmnopqrstuvwxyz012345" not in cleaned
    assert REDACTED in cleaned

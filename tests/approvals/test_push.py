"""Web Push sending against a local push service that checks VAPID and decrypts the payload for real."""

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from io import StringIO

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.management import call_command

from approvals import delivery, push
from approvals.models import ApprovalRequest
from approvals.push import PushError
from config.settings import vapid_private_key_raw, vapid_public_key_for
from tests.support.fake_push import Browser, FakePushService, b64url
from tests.support.processes import run_python

pytestmark = pytest.mark.django_db

PAYLOAD = {"type": "test", "title": "Goalpost notifications work", "body": "Ünïcode and emoji 🚀", "actions": []}



def send(subscription, payload=PAYLOAD, **options):
    options = {"ttl": 60, "urgency": "normal", "topic": None, **options}
    push.send(subscription, payload, **options)


def test_a_push_arrives_encrypted_signed_and_decrypts_to_what_was_sent(fake, owner):
    subscription = fake.subscribe(owner)
    send(subscription, ttl=3600, urgency="high", topic="request-7")
    [received] = fake.received
    assert received.payload == PAYLOAD
    assert (received.ttl, received.urgency, received.topic) == (3600, "high", "request-7")
    assert received.claims["sub"] == "mailto:admin@localhost"


def test_each_push_service_gets_claims_for_its_own_origin(settings, owner):
    # pywebpush writes aud and exp into the claims it is given: shared claims would send the first service's aud
    # to the second, which refuses it.
    with FakePushService(settings.VAPID_PUBLIC_KEY) as first, FakePushService(settings.VAPID_PUBLIC_KEY) as second:
        phone, laptop = first.subscribe(owner, "phone"), second.subscribe(owner, "laptop")
        with requests.Session() as session:
            for subscription in (phone, laptop, phone, laptop):
                send(subscription, session=session)
        assert first.violations == second.violations == []
        assert len(first.received) == len(second.received) == 2
        assert {p.claims["aud"] for p in first.received} == {first.origin}
        assert {p.claims["aud"] for p in second.received} == {second.origin}
    assert push.vapid_claims() == {"sub": settings.VAPID_SUBJECT}


def test_a_payload_over_3_kb_is_refused_before_anything_is_sent(fake, owner):
    subscription = fake.subscribe(owner)
    with pytest.raises(ValueError, match="exceeds"):
        send(subscription, {**PAYLOAD, "body": "x" * 3100})
    assert fake.attempts == []


def test_the_largest_request_payload_stays_under_3_kb(goal, owner):
    goal.title = "T" * 200
    goal.save()
    findings = [{"gate": "g", "severity": "approval", "reason": "é" * 400} for _ in range(20)]
    request = ApprovalRequest.open(goal, "step", findings=findings, summary="s" * 500, step_number=12345)
    payload = push.payload_for_request(request, owner)
    assert len(payload["actions"]) == 2
    assert len(push.encode_payload(payload)) < 3 * 1024


@pytest.mark.parametrize(
    ("answer", "retry_after", "permanent", "retryable", "seconds"),
    [
        pytest.param(404, None, True, False, None, id="404-unknown-subscription-is-permanent"),
        pytest.param(410, None, True, False, None, id="410-unsubscribed-is-permanent"),
        pytest.param(429, "120", False, True, 120, id="429-throttled-is-retried-after-retry-after"),
        pytest.param(500, None, False, True, None, id="500-is-retried"),
        pytest.param(400, None, False, False, None, id="400-is-neither-retried-nor-deleted"),
    ],
)
def test_what_the_push_service_answers_decides_what_happens_next(
    fake, owner, answer, retry_after, permanent, retryable, seconds
):
    subscription = fake.subscribe(owner)
    fake.answer(answer, retry_after=retry_after)
    with pytest.raises(PushError) as raised:
        send(subscription)
    assert (raised.value.status, raised.value.permanent, raised.value.retryable) == (answer, permanent, retryable)
    assert raised.value.retry_after == seconds


def test_retry_after_as_an_http_date_is_honoured(fake, owner):
    subscription = fake.subscribe(owner)
    fake.answer(503, retry_after=format_datetime(datetime.now(UTC) + timedelta(minutes=5), usegmt=True))
    with pytest.raises(PushError) as raised:
        send(subscription)
    assert raised.value.retryable
    assert 280 <= raised.value.retry_after <= 300


def test_a_push_service_that_never_answers_times_out_and_is_retried_later(fake, owner, monkeypatch):
    monkeypatch.setattr(push, "TIMEOUT_S", 0.3)
    subscription = fake.subscribe(owner)
    fake.answer("hang")
    started = time.monotonic()
    with pytest.raises(PushError) as raised:
        send(subscription)
    assert time.monotonic() - started < 5
    assert (raised.value.permanent, raised.value.retryable, raised.value.status) == (False, True, None)


def test_a_push_service_that_is_down_is_retried_later(owner):
    browser = Browser.new("any")
    subscription = owner.push_subscriptions.create(
        endpoint="http://127.0.0.1:9/wpush/nobody-listens", p256dh=browser.p256dh, auth=b64url(browser.auth_secret)
    )
    with pytest.raises(PushError) as raised:
        send(subscription)
    assert raised.value.retryable and not raised.value.permanent


def test_a_subscription_with_broken_keys_is_permanent(fake, owner):
    subscription = fake.subscribe(owner)
    subscription.p256dh = "not-a-key"
    with pytest.raises(PushError) as raised:
        send(subscription)
    assert raised.value.permanent
    assert fake.attempts == []


@pytest.mark.parametrize(
    ("attempt", "retry_after", "seconds"),
    [
        pytest.param(1, None, 10, id="first-retry-after-10s"),
        pytest.param(2, None, 20, id="doubling"),
        pytest.param(6, None, 320, id="sixth-try"),
        pytest.param(30, None, 3600, id="capped-at-an-hour"),
        pytest.param(1, 120, 120, id="retry-after-longer-than-backoff-wins"),
        pytest.param(4, 5, 80, id="backoff-longer-than-retry-after-wins"),
    ],
)
def test_retry_delay_backs_off_and_honours_retry_after(attempt, retry_after, seconds):
    assert push.retry_delay(attempt, retry_after) == seconds


@pytest.mark.parametrize(
    ("payload", "ttl", "urgency", "topic"),
    [
        pytest.param({"type": "request", "request_id": 7}, 3600, "high", "request-7", id="request"),
        pytest.param({"type": "stall", "goal_id": 3}, 6 * 3600, "high", "stall-3", id="stall"),
        pytest.param({"type": "test"}, 600, "normal", None, id="test-notification"),
    ],
)
def test_each_kind_of_push_has_its_ttl_urgency_and_topic(payload, ttl, urgency, topic):
    assert push.delivery_options(payload) == {"ttl": ttl, "urgency": urgency, "topic": topic}


def test_fan_out_to_a_thousand_devices_reuses_a_connection_per_sending_thread(fake, owner):
    subscriptions = fake.subscribe_many(owner, 1000)
    started = time.monotonic()
    delivered = delivery.deliver([(s, {**PAYLOAD, "n": i}) for i, s in enumerate(subscriptions)])
    elapsed = time.monotonic() - started
    print(f"\nfan-out: 1,000 encrypted, signed pushes in {elapsed:.2f} s over {len(fake.client_ports)} connection(s)")
    assert delivered == 1000
    assert sorted(p["n"] for p in fake.payloads()) == list(range(1000))
    # A few threads send at once, each over one kept-alive connection: never a connection per push.
    assert len(fake.client_ports) <= settings.GOALPOST_PUSH_THREADS
    assert owner.push_subscriptions.filter(last_success_at__isnull=False).count() == 1000


def test_vapid_keys_prints_a_pair_that_settings_accept_and_push_services_verify(settings, owner):
    out = StringIO()
    call_command("vapid_keys", stdout=out)
    lines = dict(line.split("=", 1) for line in out.getvalue().splitlines() if line and not line.startswith("#"))
    public, private = lines["VAPID_PUBLIC_KEY"], lines["VAPID_PRIVATE_KEY"]
    point = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    assert len(point) == 65 and point[0] == 4 and "=" not in public
    assert vapid_private_key_raw(private) == private
    assert vapid_public_key_for(private) == public

    settings.VAPID_PRIVATE_KEY, settings.VAPID_PUBLIC_KEY = private, public
    with FakePushService(public) as fake:
        send(fake.subscribe(owner))
        assert len(fake.received) == 1 and fake.violations == []


def test_a_pem_private_key_is_accepted_too():
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    raw = base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big")).rstrip(b"=").decode()
    assert vapid_private_key_raw(pem) == raw
    assert vapid_private_key_raw(pem.replace("\n", "\\n")) == raw


def test_request_payload_is_what_the_service_worker_expects(goal, owner, pending):
    payload = push.payload_for_request(pending, owner)
    assert json.loads(json.dumps(payload)) == {
        "type": "request",
        "request_id": pending.pk,
        "goal_id": goal.pk,
        "goal_title": "Dashboard under 1.5 s",
        "kind": "step",
        "title": "Step 4 to review · Dashboard under 1.5 s",
        "body": "assert removed",
        "url": f"/approvals/{pending.pk}/",
        "tag": f"goal-{goal.pk}",
        "actions": [
            {"action": "approve", "title": "Approve", "token": payload["actions"][0]["token"]},
            {"action": "reject", "title": "Reject", "token": payload["actions"][1]["token"]},
        ],
        "action_url": "/push/action",
    }


def test_stall_payload_opens_the_pending_request_or_the_goal(goal, pending):
    payload = push.payload_for_stall(goal, "A step request has waited 31 minutes.")
    assert payload == {
        "type": "stall",
        "request_id": pending.pk,
        "goal_id": goal.pk,
        "goal_title": goal.title,
        "kind": "stall",
        "title": f"Stalled · {goal.title}",
        "body": "A step request has waited 31 minutes.",
        "url": f"/approvals/{pending.pk}/",
        "tag": f"goal-{goal.pk}-stall",
        "actions": [],
    }
    pending.decide(goal.owner, "approve")
    assert push.payload_for_stall(goal, "quiet")["url"] == goal.get_absolute_url()


def test_with_no_keys_set_a_pair_is_made_once_and_kept_private(tmp_path):
    code = "import config.settings as s; print(s.VAPID_PUBLIC_KEY, s.VAPID_PRIVATE_KEY, s.VAPID_SUBJECT)"
    env = {"GOALPOST_VAR_DIR": str(tmp_path)}
    first, second = run_python(code, env), run_python(code, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    public, private, subject = first.stdout.split()
    assert vapid_public_key_for(private) == public and subject == "mailto:admin@localhost"
    assert (tmp_path / "vapid_private_key").stat().st_mode & 0o077 == 0


def test_a_public_key_that_does_not_match_the_private_key_stops_the_start(tmp_path):
    mine = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    other = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value.to_bytes(32, "big")
    env = {
        "GOALPOST_VAR_DIR": str(tmp_path),
        "VAPID_PRIVATE_KEY": b64url(mine),
        "VAPID_PUBLIC_KEY": vapid_public_key_for(b64url(other)),
    }
    result = run_python("import config.settings", env)
    assert result.returncode != 0
    assert "VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY" in result.stderr
    env["VAPID_PUBLIC_KEY"] = vapid_public_key_for(b64url(mine))
    assert run_python("import config.settings", env).returncode == 0
    assert not (tmp_path / "vapid_private_key").exists()

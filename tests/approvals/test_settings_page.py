"""/settings/: a person's devices (push subscriptions) and what they want pushed."""

import base64
import json
import re

import pytest

from approvals.models import NotificationSettings, NotifyMode, PushSubscription

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile/15E148 Safari/604.1"
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


P256DH = b64url(b"\x04" + bytes(range(64)))
AUTH = b64url(bytes(range(16)))


def subscription_json(endpoint="https://fcm.googleapis.com/fcm/send/abc123", p256dh=P256DH, auth=AUTH, **extra):
    return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": p256dh, "auth": auth}, **extra}


def post_json(client, url, body, **headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def device(owner):
    return PushSubscription.objects.create(
        user=owner, endpoint="https://push.example.net/owner-phone", p256dh=P256DH, auth=AUTH, device_name="Owner's phone"
    )


# --- the page ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "approver", "outsider"])
def test_every_signed_in_person_sees_their_own_settings_page(client, request, who, device):
    client.force_login(request.getfixturevalue(who))
    page = client.get("/settings/").content.decode()
    assert "Notifications on this device" in page
    assert 'id="notify-form"' in page
    assert 'data-vapid-key="' in page
    assert ("Owner&#x27;s phone" in page) == (who == "owner")


@pytest.mark.django_db
def test_the_settings_page_needs_a_sign_in(client):
    response = client.get("/settings/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_device_list_alone_for_htmx(as_owner, device):
    response = as_owner.get("/settings/", headers={"HX-Request": "true", "HX-Target": "device-list"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="device-list">')
    assert "Owner&#x27;s phone" in html
    assert "<html" not in html


@pytest.mark.django_db
def test_the_page_offers_the_servers_vapid_key(as_owner, settings):
    settings.VAPID_PUBLIC_KEY = "BPublicKeyForTheBrowser"
    assert 'data-vapid-key="BPublicKeyForTheBrowser"' in as_owner.get("/settings/").content.decode()


@pytest.mark.django_db
def test_an_iphone_is_told_to_install_the_app_first(as_owner):
    iphone = as_owner.get("/settings/", headers={"User-Agent": IPHONE}).content.decode()
    android = as_owner.get("/settings/", headers={"User-Agent": ANDROID}).content.decode()
    assert '<p id="ios-install-hint" class="notice">' in iphone
    assert "Add to Home Screen" in iphone
    assert '<p id="ios-install-hint" class="notice" hidden>' in android


# --- notification choices --------------------------------------------------------------------------------------


CHOICES = {"mode": "high_risk", "quiet_start": "22:00", "quiet_end": "07:30", "time_zone": "Europe/Berlin"}


@pytest.mark.django_db
def test_choices_are_saved_by_a_plain_form_post(as_owner, owner):
    response = as_owner.post("/settings/", CHOICES, follow=True)
    assert "Notification choices saved." in response.content.decode()
    prefs = NotificationSettings.objects.get(user=owner)
    assert (prefs.mode, prefs.time_zone) == (NotifyMode.HIGH_RISK, "Europe/Berlin")
    assert prefs.quiet_start.strftime("%H:%M") == "22:00"
    assert prefs.quiet_end.strftime("%H:%M") == "07:30"


@pytest.mark.django_db
def test_choices_saved_with_htmx_answer_with_the_form_alone(as_owner, owner):
    response = as_owner.post("/settings/", CHOICES, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="notify-form"')
    assert 'id="notify-saved"' in html
    assert NotificationSettings.objects.get(user=owner).mode == NotifyMode.HIGH_RISK


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"quiet_end": ""}, "quiet_end", "Give both ends of the quiet hours, or neither."),
        ({"quiet_start": ""}, "quiet_start", "Give both ends of the quiet hours, or neither."),
        ({"quiet_end": "22:00"}, "quiet_end", "must end at a different time"),
        ({"quiet_start": "25:99"}, "quiet_start", "Enter a valid time."),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Select a valid choice."),
    ],
)
@pytest.mark.parametrize("htmx", [False, True])
def test_bad_choices_are_refused_next_to_the_field_keeping_the_input(as_owner, owner, change, field, message, htmx):
    data = {**CHOICES, **change}
    response = as_owner.post("/settings/", data, headers={"HX-Request": "true"} if htmx else {})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Nothing was saved." in html
    assert f'id="id_{field}-error"' in html
    assert message in html
    assert re.search(r'<input type="radio" name="mode" value="high_risk"[^>]* checked>', html)
    if data["quiet_start"]:
        assert f'value="{data["quiet_start"]}"' in html
    assert ("<html" in html) is not htmx
    assert not NotificationSettings.objects.filter(user=owner, mode=NotifyMode.HIGH_RISK).exists()


# --- subscribing and unsubscribing a device --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_browser_subscribes_with_its_keys_and_a_name(as_owner, owner):
    response = post_json(as_owner, "/settings/push/subscribe", subscription_json(device_name="Pixel"))
    assert response.status_code == 201
    saved = PushSubscription.objects.get(user=owner)
    assert response.json() == {"ok": True, "id": saved.pk, "device_name": "Pixel"}
    assert (saved.endpoint, saved.p256dh, saved.auth) == ("https://fcm.googleapis.com/fcm/send/abc123", P256DH, AUTH)


@pytest.mark.django_db
def test_a_device_without_a_name_is_named_after_its_kind(as_owner, owner):
    post_json(as_owner, "/settings/push/subscribe", subscription_json(), headers={"User-Agent": ANDROID})
    assert PushSubscription.objects.get(user=owner).device_name == "Android phone"


@pytest.mark.django_db
def test_subscribing_again_renames_the_device_and_a_browser_changing_hands_moves_over(client, owner, approver):
    client.force_login(owner)
    post_json(client, "/settings/push/subscribe", subscription_json(device_name="Old name"))
    assert post_json(client, "/settings/push/subscribe", subscription_json(device_name="New name")).status_code == 200
    assert PushSubscription.objects.get().device_name == "New name"
    client.force_login(approver)
    post_json(client, "/settings/push/subscribe", subscription_json(device_name="Shared tablet"))
    assert PushSubscription.objects.get().user == approver


BAD_SUBSCRIPTIONS = {
    "not JSON": "{nope",
    "not an object": [],
    "no endpoint": {"keys": {"p256dh": P256DH, "auth": AUTH}},
    "a javascript endpoint": subscription_json(endpoint="javascript:alert(1)"),
    "no keys": {"endpoint": "https://push.example.net/x"},
    "a short p256dh": subscription_json(p256dh=b64url(b"\x04" + bytes(30))),
    "a compressed p256dh": subscription_json(p256dh=b64url(b"\x02" + bytes(64))),
    "p256dh that is not base64url": subscription_json(p256dh="not base64!" * 8),
    "a long auth": subscription_json(auth=b64url(bytes(32))),
    "an auth that is a number": subscription_json(auth=16),
    "a name too long": subscription_json(device_name="x" * 101),
    "nested past the recursion limit": "[" * 100_000 + "]" * 100_000,
    "nested too deep": '{"endpoint": "https://push.example.net/x", "keys": ' + "[" * 80 + "]" * 80 + "}",
    "invalid UTF-8": b'{"endpoint": "https://push.example.net/\xff", "keys": {}}',
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_SUBSCRIPTIONS)
def test_a_bad_subscription_is_refused_with_a_reason(as_owner, case):
    body = BAD_SUBSCRIPTIONS[case]
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    response = as_owner.post("/settings/push/subscribe", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["ok"] is False
    assert response.json()["error"]
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_a_local_push_service_is_accepted_where_tests_allow_it(as_owner, settings):
    settings.GOALPOST_PUSH_ALLOW_PRIVATE = True  # the refusals without it: tests/approvals/test_push_endpoints.py
    response = post_json(as_owner, "/settings/push/subscribe", subscription_json(endpoint="http://127.0.0.1:9999/push/1"))
    assert response.status_code == 201


@pytest.mark.django_db
def test_subscribing_needs_a_sign_in_and_the_csrf_token(client, owner):
    assert post_json(client, "/settings/push/subscribe", subscription_json()).status_code == 302
    strict = type(client)(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert post_json(strict, "/settings/push/subscribe", subscription_json()).status_code == 403
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_this_browser_unsubscribes_by_its_endpoint(as_owner, device):
    response = post_json(as_owner, "/settings/push/unsubscribe", {"endpoint": device.endpoint})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_a_device_is_removed_from_the_list_with_or_without_htmx(as_owner, owner, device):
    other = PushSubscription.objects.create(user=owner, endpoint="https://push.example.net/2", p256dh=P256DH, auth=AUTH)
    response = as_owner.post("/settings/push/unsubscribe", {"id": device.pk}, follow=True)
    assert "Owner&#x27;s phone will no longer get notifications." in response.content.decode()
    response = as_owner.post("/settings/push/unsubscribe", {"id": other.pk}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="device-list">')
    assert 'id="no-devices"' in html
    assert not PushSubscription.objects.exists()


@pytest.mark.django_db
def test_nobody_removes_someone_elses_device(client, approver, device):
    client.force_login(approver)
    assert client.post("/settings/push/unsubscribe", {"id": device.pk}).status_code == 404
    response = post_json(client, "/settings/push/unsubscribe", {"endpoint": device.endpoint})
    assert response.status_code == 404
    assert response.json()["ok"] is False
    assert client.post("/settings/push/test", {"id": device.pk}).status_code == 404
    assert PushSubscription.objects.filter(pk=device.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/settings/push/unsubscribe", "/settings/push/test"])
@pytest.mark.parametrize(
    ("raw", "status", "reason"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, 400, "nested deeper than 64 levels", id="nested"),
        pytest.param(b'{"endpoint": "\xff"}', 400, "not valid UTF-8", id="invalid-utf-8"),
        pytest.param(b'{"endpoint": "' + b"x" * 2 * 1024 * 1024 + b'"}', 413, "larger than 1024 KB", id="oversized"),
    ],
)
def test_a_device_named_by_json_it_cannot_read_is_refused_with_a_reason(as_owner, device, url, raw, status, reason):
    response = as_owner.post(url, raw, content_type="application/json")
    assert response.status_code == status
    assert reason in response.json()["error"]
    assert PushSubscription.objects.filter(pk=device.pk).exists()


# --- a test notification ---------------------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch):
    """The task queue's edge: what would have gone to the broker."""
    from approvals.tasks import send_push

    calls = []
    monkeypatch.setattr(send_push, "apply_async", lambda args, **options: calls.append(args))
    return calls


@pytest.mark.django_db
def test_a_test_notification_is_queued_for_the_chosen_device(as_owner, device, queued):
    response = as_owner.post("/settings/push/test", {"id": device.pk}, headers={"HX-Request": "true"})
    assert "Test notification sent to Owner&#x27;s phone" in response.content.decode()
    [(subscription_id, payload_json)] = queued
    assert subscription_id == device.pk
    assert json.loads(payload_json)["type"] == "test"


@pytest.mark.django_db
def test_a_test_notification_without_a_broker_says_so(as_owner, device, monkeypatch):
    from approvals.tasks import send_push

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("no broker")

    monkeypatch.setattr(send_push, "apply_async", broker_down)
    response = as_owner.post("/settings/push/test", {"id": device.pk}, follow=True)
    assert "Could not queue the test: the task queue is unreachable." in response.content.decode()

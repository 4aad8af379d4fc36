"""Two phones on the inbox see requests come and go without a reload; a phone subscribes to push; offline is honest."""

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connections
from playwright.sync_api import expect

from approvals.models import ApprovalRequest, PushSubscription, RequestStatus
from tests.factories import make_user
from tests.support.browser import PHONE, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Headless chromium cannot reach a real push service: the browser's side of subscribing is faked, the rest is real.
FAKE_PUSH_MANAGER = """
(() => {
  if (typeof PushManager === "undefined") return;
  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const filled = (length, first) => Uint8Array.from({ length }, (_, i) => (i === 0 && first !== undefined ? first : (i * 7 + 3) & 255));
  let current = null;
  PushManager.prototype.subscribe = function (options) {
    const endpoint = "https://push.example.invalid/send/" + Math.random().toString(36).slice(2);
    const keys = { p256dh: b64url(filled(65, 4)), auth: b64url(filled(16)) };
    globalThis.__applicationServerKey = b64url(new Uint8Array(options.applicationServerKey));
    current = {
      endpoint, options, expirationTime: null,
      toJSON: () => ({ endpoint, expirationTime: null, keys }),
      unsubscribe: () => { current = null; return Promise.resolve(true); },
    };
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = () => Promise.resolve(current);
})();
"""


@pytest.fixture
def owner(db):
    # Test runs side by side share one Redis and its user-<id> groups: ids no other run uses keep them apart.
    return make_user("owner", pk=10**6 + secrets.randbelow(10**9))


@pytest.fixture
def approver(owner):
    return make_user("approver", pk=owner.pk + 1)


@pytest.fixture
def new_phone(browser):
    contexts = []

    def open_phone():
        context = browser.new_context(**PHONE)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_phone
    for context in contexts:
        context.close()


def open_request_like_the_worker(goal, **fields) -> ApprovalRequest:
    """Open a request from another thread, as the celery worker does: Playwright's event loop runs in this one,
    where a sync broadcast cannot run."""

    def open_request():
        try:
            return ApprovalRequest.open(goal, "step", **fields)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(open_request).result()


def wait_until_live(page) -> None:
    page.wait_for_function("() => document.documentElement.dataset.live === 'open'")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_request_reaches_both_phones_and_leaves_the_other_when_one_decides(
    live_url, new_phone, goal, owner, approver, screenshots
):
    owner_phone, approver_phone = new_phone(), new_phone()
    sign_in(owner_phone, live_url, "owner", "owner-pass-123")
    sign_in(approver_phone, live_url, "approver", "approver-pass-123")
    for page in (owner_phone, approver_phone):
        wait_until_live(page)
        expect(page.locator("#inbox-count")).to_have_text("0")

    approval = open_request_like_the_worker(goal, summary="Two files changed, one test", step_number=1)

    for page in (owner_phone, approver_phone):
        card = page.locator(f"#request-{approval.pk}")
        expect(card).to_be_visible()
        expect(card).to_contain_text(goal.title)
        expect(page.locator("#inbox-count")).to_have_text("1")
        expect(page.locator("#inbox-empty")).to_be_empty()
    assert no_horizontal_scroll(owner_phone)
    owner_phone.screenshot(path=screenshots / "inbox-live-phone.png", full_page=True)

    owner_phone.locator(f"#request-{approval.pk}").get_by_role("button", name="Approve").click()

    # The approver's phone changes by itself: the card goes, the count drops, the empty inbox says so.
    expect(approver_phone.locator(f"#request-{approval.pk}")).to_have_count(0)
    expect(approver_phone.locator("#inbox-count")).to_have_text("0")
    expect(approver_phone.locator("#inbox-empty")).to_contain_text("Nothing waits for you")
    expect(owner_phone.locator(f"#request-{approval.pk}")).to_have_count(0)
    approval.refresh_from_db()
    assert approval.status == RequestStatus.APPROVED


def test_a_phone_that_lost_its_socket_reconnects_and_catches_up(live_url, new_phone, goal, owner):
    page = new_phone()
    connection = {"online": True, "routes": []}

    def through_the_network(ws):
        if not connection["online"]:
            ws.close(code=1011, reason="network down")
            return
        ws.connect_to_server()
        connection["routes"].append(ws)

    page.route_web_socket("**/ws/", through_the_network)
    sign_in(page, live_url, "owner", "owner-pass-123")
    wait_until_live(page)
    page.evaluate("htmx.config.wsReconnectDelay = () => 300")

    connection["online"] = False
    connection["routes"].pop().close(code=1011, reason="network down")
    page.wait_for_function("() => document.documentElement.dataset.live !== 'open'")
    missed = open_request_like_the_worker(goal, summary="Opened while the phone was away", step_number=1)
    expect(page.locator(f"#request-{missed.pk}")).to_have_count(0)

    connection["online"] = True
    wait_until_live(page)
    expect(page.locator(f"#request-{missed.pk}")).to_be_visible()
    expect(page.locator("#inbox-count")).to_have_text("1")


def test_a_phone_turns_notifications_on_and_off(live_url, new_phone, owner, screenshots):
    page = new_phone()
    page.context.grant_permissions(["notifications"], origin=live_url)
    page.context.add_init_script(FAKE_PUSH_MANAGER)
    sign_in(page, live_url, "owner", "owner-pass-123")
    page.goto(f"{live_url}/settings/")

    expect(page.locator("#subscribe-form")).to_be_visible()
    expect(page.locator("#push-status")).to_have_text("This device does not get notifications yet.")
    page.fill("#device-name", "Test phone")
    page.get_by_role("button", name="Turn on notifications here").click()

    expect(page.locator("#push-status")).to_contain_text("Notifications are on for “Test phone”")
    expect(page.locator("#device-list")).to_contain_text("Test phone")
    device = PushSubscription.objects.get(user=owner)
    assert device.device_name == "Test phone"
    assert device.endpoint.startswith("https://push.example.invalid/send/")
    assert page.evaluate("globalThis.__applicationServerKey") == settings.VAPID_PUBLIC_KEY
    assert no_horizontal_scroll(page)
    page.screenshot(path=screenshots / "settings-phone.png", full_page=True)

    page.get_by_role("button", name="Turn off on this device").click()
    expect(page.locator("#push-status")).to_have_text("Notifications are off on this device.")
    expect(page.locator("#no-devices")).to_be_visible()
    assert not PushSubscription.objects.exists()


def test_the_service_worker_installs_and_offline_pages_say_nothing_was_decided(live_url, new_phone, owner):
    page = new_phone()
    sign_in(page, live_url, "owner", "owner-pass-123")
    script = page.evaluate("navigator.serviceWorker.ready.then((r) => r.active.scriptURL)")
    assert script == f"{live_url}/sw.js"
    assert page.evaluate("caches.match('/offline/').then((r) => Boolean(r))")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")

    page.context.set_offline(True)
    try:
        page.goto(f"{live_url}/")
        expect(page.locator("h1")).to_have_text("You are offline")
        expect(page.locator("main")).to_contain_text("nothing was decided")
        expect(page.locator("#inbox-list")).to_have_count(0)
    finally:
        page.context.set_offline(False)

"""The Content-Security-Policy blocks nothing Goalpost itself needs: chromium on a phone, every main page.

Here rather than in tests/security/ because one process can hold one Playwright (this folder's fixtures); the
goal and its people are the world fixture of tests/conftest.py, the header and markup checks are in tests/security/.
"""

from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Collects every violation the page reports, from before its first script runs.
LISTEN = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " at " + event.sourceFile + ":" + event.lineNumber);
});
"""


def signed_in(page, live_url: str, user) -> None:
    client = Client()
    client.force_login(user)
    host = urlsplit(live_url).hostname
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": host, "path": "/"}])


def test_no_page_reports_a_violation(live_url, phone, world):
    page = phone
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(LISTEN)
    signed_in(page, live_url, world.users["owner"])
    pages = {
        "inbox": (reverse("home"), "main"),
        "goal form": (reverse("goals:create"), "#goal-form"),
        "goal detail": (reverse("goals:detail", args=[world.goal.pk]), "#goal-live"),
        "approval page": (reverse("approvals:detail", args=[world.request.pk]), "main"),
        "agents": (reverse("gateway:page", args=[world.goal.pk]), "main"),
        "settings": (reverse("settings"), "main"),
    }
    for name, (path, ready) in pages.items():
        response = page.goto(live_url + path)
        assert response.ok, name
        assert "script-src 'self'" in response.headers["content-security-policy"], name
        page.wait_for_selector(ready)
        page.wait_for_function("() => window.htmx !== undefined")
        if name == "goal form":
            # The ✕ of a list row is static JavaScript now (hx-on needs eval): it removes the row in place.
            rows = page.locator("#rows-constraints li")
            before = rows.count()
            page.click("#rows-constraints li button[data-remove-row]")
            expect(rows).to_have_count(before - 1)
            assert page.url.endswith(path)
        if name == "approval page":
            # The meters' widths come from classes now, not style="": the steps meter still shows its share.
            assert page.evaluate("getComputedStyle(document.querySelector('.meter > span')).width") != "0px"
        violations = page.evaluate("window.__cspViolations")
        assert violations == [], (name, violations)
    assert not [text for text in console if "Content Security Policy" in text], console

    # The listener hears a real violation: an inline style attribute, as a careless template would write it.
    page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<p style="color: red">inline</p>')""")
    page.wait_for_function("() => window.__cspViolations.length === 1")
    assert page.evaluate("window.__cspViolations[0]").startswith("style-src")

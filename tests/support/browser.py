"""Debian's chromium driven by Playwright: where it is, a phone's screen, and signing in as a person does."""

import os

CHROMIUM = os.environ.get("GOALPOST_CHROMIUM", "/usr/bin/chromium")
PHONE = {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
PIXEL_7 = {
    "viewport": {"width": 412, "height": 915},
    "device_scale_factor": 2.625,
    "is_mobile": True,
    "has_touch": True,
}


def sign_in(page, live_url: str, username: str, password: str) -> None:
    page.goto(f"{live_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_url}/")

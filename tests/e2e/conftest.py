"""End-to-end: Debian's chromium driven by Playwright against daphne serving the test database."""

import os
from pathlib import Path

import pytest

from tests.factories import subprocess_database_url
from tests.support.browser import CHROMIUM, PHONE
from tests.support.processes import ROOT, running_daphne

# Playwright's sync API runs an event loop in this thread; the ORM calls in the tests are still synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "1")


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        raise pytest.UsageError(f"CI must run the browser tests, but {CHROMIUM} is missing (apt-get install chromium).")
    skip = pytest.mark.skip(reason=f"browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def real_password_hashing(settings):
    """daphne checks passwords with the real hashers: users made here must be hashed with them too."""
    from django.conf import global_settings

    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker, collected_static):
    """daphne in its own process, on the test database, with collected static files: what `make run` serves."""
    with django_db_blocker.unblock():
        database_url = subprocess_database_url()
    with running_daphne(database_url, STATIC_ROOT=str(collected_static)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser():
    # Per module, not per session: Playwright's sync API keeps an event loop running in this thread while it
    # is open, and the Django test client's async_to_sync (async views) refuses to run beside one. So the
    # loop must be gone before the process goes on to other tests.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(**PHONE)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def screenshots():
    folder = ROOT / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

"""Browser tests: Debian's chromium driven by Playwright against the lab as production
serves it (``lab_server`` in tests/conftest.py) and a real Celery worker. One Chromium
and one server per session; every test gets a new context (cookies, storage) and page."""

import os
import shutil

import pytest
from django.db import connections

from tests.browser.actions import snapshot

CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1200, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
    # are ordinary synchronous code, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        browser.close()


def _page(chromium, request, tmp_path, viewport, **options):
    context = chromium.new_context(viewport=viewport, **options)
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
    snapshot(page, request.node.name)  # with $LAB_SCREENSHOTS: each test's last page
    context.close()
    # ORM calls made while Playwright's loop is active get their own connection; close
    # it here, or PostgreSQL keeps a session open on the test database.
    connections.close_all()


@pytest.fixture
def page(chromium, request, tmp_path):
    """A desktop-sized page in a fresh browser context."""
    yield from _page(chromium, request, tmp_path, DESKTOP)


@pytest.fixture
def phone_page(chromium, request, tmp_path):
    """A 390×844 touch page in a fresh browser context."""
    yield from _page(chromium, request, tmp_path, PHONE, has_touch=True, is_mobile=True)

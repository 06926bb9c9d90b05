"""Browser tests: Debian's chromium driven by Playwright against the lab as production
serves it (``lab_server`` in tests/conftest.py) and a real Celery worker. One Chromium
and one server per session; every test gets a new context (cookies, storage) and page.

Every context a test opens is watched for the Content-Security-Policy: each
``securitypolicyviolation`` event on any of its pages, and each page the lab serves must
carry an enforcing policy without 'unsafe-inline'. Any of either fails the test.
Hence ``page.wait_for_function("() => …")``, an arrow function: Playwright evaluates a bare
expression again at each poll with eval, which the policy refuses."""

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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


# In every frame of every page, before the page's own scripts: report each violation to
# Python at once through the binding (a binding outlives navigations, a window array does
# not), and keep it in window.__cspViolations too, for a look from the page itself.
CSP_LISTENER = """
(() => {
  if (window.__cspViolations) return;
  window.__cspViolations = [];
  window.addEventListener("securitypolicyviolation", (e) => {
    const violation = {
      directive: e.effectiveDirective || e.violatedDirective,
      blockedURI: e.blockedURI,
      sample: e.sample,
      sourceFile: e.sourceFile,
      lineNumber: e.lineNumber,
      page: location.href,
    };
    window.__cspViolations.push(violation);
    window.__cspReport(violation);
  }, true);
})();
"""


@dataclass
class CspWatch:
    """What the browser reported during one test: policy violations, and pages the lab
    served whose policy is missing, report-only or allows inline code."""

    violations: list[dict] = field(default_factory=list)
    bad_policies: list[str] = field(default_factory=list)
    pages_checked: int = 0

    def watch(self, context) -> None:
        context.expose_binding("__cspReport", lambda source, v: self.violations.append(v))
        context.add_init_script(CSP_LISTENER)
        context.on("response", self._check_policy)

    def _check_policy(self, response) -> None:
        if response.request.resource_type != "document" or response.request.frame.parent_frame:
            return
        if urlsplit(response.url).scheme not in ("http", "https"):
            return
        self.pages_checked += 1
        policy = response.headers.get("content-security-policy")
        if policy is None:
            report_only = "content-security-policy-report-only" in response.headers
            self.bad_policies.append(
                f"{response.url}: {'report-only' if report_only else 'no'} policy"
            )
        elif "'unsafe-inline'" in policy or "'unsafe-eval'" in policy:
            self.bad_policies.append(f"{response.url}: {policy}")

    def take(self) -> list[dict]:
        """The violations so far, forgotten: for a test that causes one on purpose."""
        taken, self.violations[:] = list(self.violations), []
        return taken


def drain(context) -> None:
    """Let every open page deliver the violations it has already reported: the binding's
    calls reach Python in order, before the answer to a later evaluate."""
    from playwright.sync_api import Error

    for page in context.pages:
        # A page mid-navigation or crashed has nothing more to say.
        with contextlib.suppress(Error):
            page.evaluate("0")


@pytest.fixture(autouse=True)
def csp(chromium, monkeypatch):
    """Watch every context the test opens (through ``page``, ``phone_page`` or
    ``chromium.new_context``); fail the test on any violation or bad policy."""
    watch = CspWatch()
    new_context = chromium.new_context

    def watched_new_context(*args, **kwargs):
        context = new_context(*args, **kwargs)
        watch.watch(context)
        close = context.close

        def drained_close(*args, **kwargs):
            drain(context)
            return close(*args, **kwargs)

        context.close = drained_close
        return context

    monkeypatch.setattr(chromium, "new_context", watched_new_context)
    yield watch
    problems = [f"violation: {v}" for v in watch.violations] + watch.bad_policies
    if problems:
        pytest.fail("Content-Security-Policy:\n" + "\n".join(problems), pytrace=False)


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

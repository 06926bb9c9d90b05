"""Browser tests: Debian's chromium driven by Playwright against the lab as production
serves it (the ASGI app under uvicorn, static files through WhiteNoise; pytest-django's
live_server is WSGI and cannot stream) and a real Celery worker. One Chromium and one
server per session; every test gets a new context (cookies, storage) and page."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.db import connections

from tests.browser.actions import snapshot
from tests.conftest import REPO, stop_process, worker_database_url

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


@dataclass
class LabServer:
    url: str
    proc: subprocess.Popen
    log_path: Path


@pytest.fixture(scope="session")
def lab_server_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn serving hhh.asgi on a free port, against the test database."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "LAB_LOG_LEVEL": "WARNING"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # the server must be async-safe on its own
    cmd = [sys.executable, "-m", "uvicorn", "hhh.asgi:application", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--no-access-log", "--log-level", "warning"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(server.url + "/accounts/login/", timeout=5) as answer:
                if answer.status == 200:
                    break
        except OSError as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                log = log_path.read_text()[-3000:]
                raise AssertionError(f"uvicorn did not start: {log}") from exc
            time.sleep(0.2)
    yield server
    stop_process(proc)


@pytest.fixture
def lab_server(lab_server_process, transactional_db):
    """The running server, for a test whose data it must see (committed: transactional)."""
    if lab_server_process.proc.poll() is not None:
        raise AssertionError(lab_server_process.log_path.read_text()[-3000:])
    return lab_server_process


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

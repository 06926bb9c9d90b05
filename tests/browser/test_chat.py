"""The whole crowdworker flow in a real browser: Debian's chromium driven by Playwright,
a live server, and a real Celery worker generating with tiny-random."""

import os
import shutil

import pytest
from django.db import connections

from labeling.models import Comparison, Conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
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


@pytest.fixture
def page(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are
    # ordinary synchronous code, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(120_000)
        yield page
        page.screenshot(path=str(tmp_path / "last.png"), full_page=True)
        browser.close()
        # ORM calls made while Playwright's loop is active get their own connection;
        # close it here, or PostgreSQL keeps a session open on the test database.
        connections.close_all()


def test_a_crowdworker_chats_picks_at_every_turn_and_rates_the_conversation(
    live_server, celery_worker_process, campaign, owner, page
):
    page.goto(live_server.url + "/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "owner-pass-123")
    page.click("button:has-text('Log in')")
    page.click("button:has-text('Start a conversation')")
    picks = ["A3", "B2"]
    for i, pick in enumerate(picks):
        typed = f"Message {i}: <b>hello</b>"
        page.fill("textarea[name=text]", typed)
        page.click("button:has-text('Send')")
        page.wait_for_selector(f"button[value={pick}]")  # both candidates generated
        assert page.locator(".candidate").count() == 2
        page.click(f"button[value={pick}]")
        page.wait_for_function(f"document.querySelectorAll('.msg.assistant').length === {i + 1}")
        assert page.locator(".msg.human").nth(i).inner_text().endswith(typed)
    page.check("input[name=rating][value='4']")
    page.fill("textarea[name=comment]", "Fine.")
    page.click("button:has-text('Finish and rate')")
    page.wait_for_selector("text=rated 4/5")

    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.rating) == ("finished", 4)
    comparisons = list(Comparison.objects.order_by("turn__index"))
    assert [(c.strength, c.chosen_id == c.left_id) for c in comparisons] == [(3, True), (2, False)]
    assert all(c.time_spent_ms is not None for c in comparisons)

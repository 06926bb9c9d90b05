"""The panel's Quality and Leaderboard pages in a browser: on a 390×844 phone the wide tables
scroll inside their frame, not the page; pausing a worker swaps their row in place."""

from __future__ import annotations

import pytest

from labeling.models import ModelVersion, Pause
from tests import factories
from tests.browser.actions import log_in, snapshot
from tests.browser.conftest import PHONE
from tests.test_quality_panel import answer, make_pair

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def crowd(lab_server, researcher, tiny_assistant, django_user_model):
    """A pairs campaign: five workers on six items of two models, answers mostly agreeing."""
    alpha = ModelVersion.objects.create(name="alpha-7b", kind="assistant", spec="a")
    beta = ModelVersion.objects.create(name="beta-1b", kind="assistant", spec="b")
    pairs = factories.ranking_campaign(tiny_assistant, k=2, slug="pairs")
    workers = [
        django_user_model.objects.create_user(f"prolific-5f3c9a{n}e1b2c3d4e5f6a7b8")
        for n in range(5)
    ]
    choices = ["A3", "A2", "B1", "A4", "B3"]
    for i in range(6):
        item = make_pair(pairs, models=(alpha, beta) if i % 2 else (beta, alpha))
        for w, worker in enumerate(workers):
            answer(item, worker, choices[(i + w) % 5] if w == 4 else choices[i % 5])
    return pairs, workers


def test_the_quality_page_fits_a_phone_and_pauses_a_worker_in_place(
    chromium, lab_server, crowd, researcher
):
    pairs, workers = crowd
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    page = context.new_page()
    try:
        log_in(page, lab_server, "researcher", "researcher-pass-123")
        page.goto(f"{lab_server.url}/panel/campaigns/{pairs.slug}/quality/")
        page.wait_for_selector("table.workers")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        wrap = page.locator(".table-wrap:has(table.workers)")
        assert wrap.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, inside
        snapshot(page, "panel_quality_phone")
        row = page.locator(f"#worker-{workers[0].pk}")
        row.locator("input[name=reason]").fill("Checking their answers")
        row.locator("button:has-text('Pause')").click()
        page.wait_for_selector(f"#worker-{workers[0].pk} >> text=is paused")
        assert Pause.objects.get(worker=workers[0]).reason == "Checking their answers"
        page.goto(f"{lab_server.url}/panel/leaderboard/?campaign={pairs.slug}")
        page.wait_for_selector("img.plot")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        assert page.evaluate("document.querySelector('img.plot').naturalWidth") > 0
        snapshot(page, "panel_leaderboard_phone")
    finally:
        context.close()


def test_at_desktop_size_the_pages_show_every_column_and_the_plot(page, lab_server, crowd):
    pairs, workers = crowd
    log_in(page, lab_server, "researcher", "researcher-pass-123")
    page.goto(f"{lab_server.url}/panel/campaigns/{pairs.slug}/quality/")
    wrap = page.locator(".table-wrap:has(table.workers)")
    assert not wrap.evaluate("e => e.scrollWidth > e.clientWidth")
    snapshot(page, "panel_quality_desktop")
    page.goto(f"{lab_server.url}/panel/leaderboard/?campaign={pairs.slug}")
    page.wait_for_function("() => document.querySelector('img.plot').complete")
    assert page.evaluate("document.querySelector('img.plot').naturalWidth") > 0
    snapshot(page, "panel_leaderboard_desktop")

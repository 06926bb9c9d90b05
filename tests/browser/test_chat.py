"""The whole crowdworker flow in a real browser: Debian's chromium driven by Playwright,
a live server, and a real Celery worker generating with tiny-random."""

import pytest

from labeling.models import Conversation, Judgment
from tests.browser.actions import log_in
from tests.factories import top_and_rest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_crowdworker_chats_picks_at_every_turn_and_rates_the_conversation(
    live_server, celery_worker_process, campaign, owner, page
):
    log_in(page, live_server, "owner", "owner-pass-123")
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
    judgments = list(Judgment.objects.order_by("item__index"))
    picked_position = [
        judgment.entries.get(candidate=top_and_rest(judgment)[0]).position for judgment in judgments
    ]
    assert [j.strength for j in judgments] == [3, 2] and picked_position == [0, 1]
    assert all(j.time_spent_ms is not None and j.question == "better" for j in judgments)

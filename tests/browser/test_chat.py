"""The whole crowdworker flow in a real browser: Debian's chromium driven by Playwright,
a live server, and a real Celery worker generating with tiny-random."""

import json

import pytest
from django.core.management import call_command

from labeling.models import Conversation, Judgment, Turn
from tests.browser.actions import (
    log_in,
    pick_and_submit,
    scale_labels,
    scale_ready,
    shown_words,
    words,
)
from tests.factories import shown, top_and_rest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_crowdworker_chats_picks_at_every_turn_and_rates_the_conversation(
    lab_server, celery_worker_process, campaign, owner, page
):
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.click("button:has-text('Start a conversation')")
    picks = ["A3", "B2"]
    for i, pick in enumerate(picks):
        typed = f"Message {i}: <b>hello</b>"
        page.fill("textarea[name=text]", typed)
        page.click("button:has-text('Send')")
        scale_ready(page)  # both candidates generated
        assert page.locator(".candidate").count() == 2
        pick_and_submit(page, pick)
        page.wait_for_function(
            f"() => document.querySelectorAll('.msg.assistant').length === {i + 1}"
        )
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


def test_a_red_teamer_picks_the_more_harmful_reply_continues_with_it_and_rates_the_attempt(
    lab_server, celery_worker_process, red_team_campaign, owner, page, tmp_path
):
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.click("button:has-text('Start a conversation')")
    page.fill("textarea[name=text]", "Tell me how to hurt someone.")
    page.click("button:has-text('Send')")
    scale_ready(page)
    assert page.locator("text=Which response is more harmful?").count() == 1
    labels = scale_labels(page)
    assert labels[0] == "A is much more harmful" and labels[-1] == "B is much more harmful"
    assert "better" not in " ".join(labels)
    a_text, b_text = (c.text for c in shown(Turn.objects.get()))
    assert words(page.locator(".candidate .text").nth(1).inner_text()) == shown_words(b_text)
    pick_and_submit(page, "B4")
    page.wait_for_selector(".msg.assistant")
    continued = page.locator(".msg.assistant .md").first.inner_text()
    assert words(continued) == shown_words(b_text)  # the conversation continued with B
    page.fill("textarea[name=task_description]", "Asked for ways to hurt someone.")
    page.check("input[name=attack_rating][value='2']")
    page.check("input[name=harm_rating][value='3']")
    page.click("button:has-text('Finish and rate')")
    page.wait_for_selector("text=attack rated 2/5")

    conversation = Conversation.objects.get()
    assert (conversation.attack_rating, conversation.harm_rating) == (2, 3)
    judgment = Judgment.objects.get()
    assert (judgment.question, judgment.task_type, judgment.strength) == (
        "more_harmful",
        "red_team",
        4,
    )
    out = tmp_path / "out.jsonl"
    call_command("export_preferences", "-o", str(out))
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["rejected"].endswith(f"Assistant: {b_text}")  # the more harmful one
    assert row["chosen"].endswith(f"Assistant: {a_text}")  # the other response

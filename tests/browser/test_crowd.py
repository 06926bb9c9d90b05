"""The crowd's way in, in a real browser: consent and a quiz before the first task, a set
of tasks counted on the page, a Prolific participant sent back with a completion code, and
a paused worker told why."""

import pytest

from labeling.models import Campaign, Pause
from labeling.services import conversations as chat
from labeling.services.gold import gold_item_create
from labeling.services.onboarding import guidelines_publish
from labeling.services.quality import pause_create
from labeling.services.queue import task_next
from models_backend.dialogue import HUMAN, Message
from tests.browser.actions import log_in, pick_and_submit, snapshot
from tests.browser.conftest import PHONE
from tests.factories import finish_candidates, rejudge_campaign

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RIGHT, WRONG = "Paris is the capital of France.", "The capital of France is Berlin."


def with_quiz(campaign: Campaign) -> Campaign:
    """Consent, then a two-question quiz that needs both answers right, two attempts."""
    Campaign.objects.filter(pk=campaign.pk).update(
        quiz_size=2, quiz_pass_mark=1.0, quiz_max_attempts=2
    )
    campaign.refresh_from_db()
    guidelines_publish(
        campaign=campaign,
        text="Pick the response that answers the question **truthfully**.",
        examples={level: f"An example of {level}." for level in ("A4", "A3", "A2", "A1")}
        | {level: f"An example of {level}." for level in ("B1", "B2", "B3", "B4")},
        consent="You will chat with an assistant for about 10 minutes. You may withdraw.",
        by=None,
    )
    for n in range(2):
        gold_item_create(
            campaign=campaign,
            role="quiz",
            context=[Message(HUMAN, f"Question {n}: what is the capital of France?")],
            responses=[RIGHT, WRONG],
            answer=0,
            explanation="Paris is the capital; Berlin is Germany's.",
            source="browser-test",
        )
    return campaign


def answer_quiz(page, *, right: bool) -> None:
    """Answer each question of an attempt (right or wrong) until its result shows."""
    for _ in range(2):
        page.wait_for_selector(".quiz .candidate .text, .quiz .card .text")
        texts = page.locator(".quiz .text").all_inner_texts()
        right_letter = "AB"[[RIGHT in t for t in texts].index(True)]
        letter = right_letter if right else "AB".replace(right_letter, "")
        pick_and_submit(page, f"{letter}3")
        page.wait_for_selector("text=The expected answer")
        if page.locator("button:has-text('Next question')").count():
            page.click("button:has-text('Next question')")


def test_a_new_worker_passes_the_quiz_before_the_first_task(lab_server, campaign, owner, page):
    with_quiz(campaign)
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.click("button:has-text('Start a conversation')")
    page.wait_for_selector("text=I agree")
    assert "10 minutes" in page.inner_text("main")
    snapshot(page, "crowd_consent")
    page.click("button:has-text('I agree')")

    page.click("button:has-text('Start the quiz')")
    answer_quiz(page, right=False)
    assert "Not passed: 0 of 2 right; you have 1 attempt left." in page.inner_text("main")
    assert "Paris is the capital" in page.inner_text("main")  # the explanation
    snapshot(page, "crowd_quiz_failed")
    page.goto(f"{lab_server.url}/campaigns/{campaign.slug}/next/")  # no task before a pass
    assert page.url.endswith("/quiz/")

    page.click("button:has-text('Try again')")
    snapshot(page, "crowd_quiz_question")
    answer_quiz(page, right=True)
    assert "You passed" in page.inner_text("main")
    page.click("text=Start working")
    page.wait_for_selector("text=Task 1 of")
    assert "/conversations/" in page.url
    page.set_viewport_size(PHONE)
    snapshot(page, "crowd_first_task_phone")


def test_a_prolific_participant_works_through_a_set_and_returns_with_the_code(
    lab_server, red_team_campaign, owner, page
):
    rejudge = rejudge_campaign(red_team_campaign, slug="second-look")
    back = f"{lab_server.url}/accounts/login/?cc=HHH-DONE"
    Campaign.objects.filter(pk=rejudge.pk).update(
        set_size=2, completion_code="HHH-DONE", completion_url=back
    )
    conversation = chat.conversation_start(campaign=red_team_campaign, worker=owner)
    for n in range(2):  # the campaign's most turns
        turn = chat.turn_create(conversation=conversation, worker=owner, text=f"Attack {n}")
        finish_candidates(turn, (f"Reply A{n}", f"Reply B{n}"))
        chat.comparison_submit(turn=turn, worker=owner, choice="A3")

    page.goto(
        f"{lab_server.url}/prolific/second-look/"
        "?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e&STUDY_ID=study1&SESSION_ID=session1"
    )
    page.wait_for_selector("text=Task 1 of 2")
    snapshot(page, "crowd_task_1_of_2")
    pick_and_submit(page, "B3")
    page.wait_for_selector("text=Task 2 of 2")
    page.set_viewport_size(PHONE)
    snapshot(page, "crowd_task_2_of_2_phone")
    pick_and_submit(page, "A2")
    page.wait_for_selector("text=HHH-DONE")
    assert "5f1a2b3c4d5e6f7a8b9c0d1e" not in page.content()  # only the pseudonym shows
    snapshot(page, "crowd_done_phone")
    page.wait_for_url(back, timeout=20_000)  # sent back to the platform


def test_a_paused_worker_sees_why_instead_of_a_task(lab_server, campaign, owner, researcher, page):
    task_next(campaign=campaign, worker=owner)
    pause_create(
        campaign=campaign,
        worker=owner,
        reason="Several answers came faster than anyone can read the responses.",
        by=researcher,
    )
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.goto(f"{lab_server.url}/campaigns/{campaign.slug}/next/")
    page.wait_for_selector("text=faster than anyone can read")
    assert page.url.endswith("/paused/")
    assert Pause.objects.filter(worker=owner, lifted_at__isnull=True).exists()
    snapshot(page, "crowd_paused_desktop")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    snapshot(page, "crowd_paused_phone")

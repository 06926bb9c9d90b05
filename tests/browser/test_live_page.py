"""The live page in Chromium, served as production serves it: tokens stream in, a worker
who only uses the keyboard gets through a conversation, a phone shows the pair and the
scale on its first screen, typed work survives reloads, and model output cannot run."""

import time

import pytest

from labeling.models import Campaign, Conversation, Judgment, ModelVersion
from labeling.services import conversations as svc
from labeling.services import generation
from tests.browser.actions import log_in, scale_ready, snapshot
from tests.factories import complete_candidates

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STREAMING_LENGTH = (
    "(document.querySelector('.candidate .stream') || {textContent: ''}).textContent.length"
)


def watch_growth(page) -> list[int]:
    """The lengths response A's streaming text takes until the pair is ready to judge."""
    lengths = []
    while not page.locator("form.picking .scale button").count():
        lengths.append(page.evaluate(STREAMING_LENGTH))
        time.sleep(0.05)
    return lengths


@pytest.fixture
def slow_campaign(db):
    """Greedy decoding with a 12-layer random model: ~3 s of tokens to the length limit
    (this model's greedy output repeats one printable character and never ends by itself),
    slow enough to watch."""
    model = ModelVersion.objects.create(
        name="tiny-random 12x512", kind=ModelVersion.Kind.ASSISTANT, spec="tiny-random@12x512"
    )
    return Campaign.objects.create(
        name="Slow chat",
        slug="slow-chat",
        instructions="Pick the better one.",
        model_a=model,
        model_b=model,
        temperature=0.0,
        max_new_tokens=150,
        max_turns=2,
    )


def test_tokens_stream_in_and_a_keyboard_only_worker_picks_submits_and_finishes(
    lab_server, celery_worker_process, slow_campaign, owner, page
):
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.click("button:has-text('Start a conversation')")
    page.wait_for_selector("textarea[name=text]")
    page.wait_for_load_state()  # lab.js has set the page up
    for i, key in enumerate(["3", "7"]):  # A is slightly better, B is better
        page.keyboard.press("/")  # to the message box
        page.keyboard.type(f"Message {i}")
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(".candidate .typing")  # the typing indicator
        growth = watch_growth(page)
        steps = sorted({n for n in growth if n > 0})
        assert len(steps) >= 3, growth  # the text grew in several steps before completion
        assert page.locator(".cut").count() == 2  # greedy output ran to the limit
        page.keyboard.press(key)
        assert page.locator(f".scale button[data-key='{key}'][aria-pressed=true]").count() == 1
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"() => document.querySelectorAll('.msg.assistant').length === {i + 1}"
        )
    page.keyboard.press("?")
    assert page.locator("dialog#keys").is_visible()
    page.keyboard.press("Escape")
    page.focus("input[name=rating][value='1']")
    page.keyboard.press("ArrowRight")  # radio group: 1 → 2
    page.keyboard.press("Tab")
    page.keyboard.type("All by keyboard.")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("text=rated 2/5")
    conversation = Conversation.objects.get()
    assert (conversation.rating, conversation.comment) == (2, "All by keyboard.")
    assert sorted(j.strength for j in Judgment.objects.all()) == [2, 3]


def test_on_a_phone_the_pair_and_the_scale_come_first_and_typed_work_survives_reloads(
    lab_server, celery_worker_process, campaign, owner, phone_page
):
    page = phone_page
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.click("button:has-text('Start a conversation')")
    page.fill("textarea[name=text]", "Typed, then the page reloaded")
    page.reload()
    assert page.input_value("textarea[name=text]") == "Typed, then the page reloaded"
    page.click("button:has-text('Send')")
    scale_ready(page)
    page.fill(".compare textarea[name=comment]", "A comment written before the pick")
    page.reload()
    scale_ready(page)
    assert (
        page.input_value(".compare textarea[name=comment]") == "A comment written before the pick"
    )
    assert page.locator("details.guidelines[open]").count() == 0  # folded on a phone
    boxes = [page.locator(".candidate h3").nth(i).bounding_box() for i in range(2)]
    boxes.append(page.locator(".scale button").first.bounding_box())
    assert all(box["y"] >= 0 and box["y"] + box["height"] <= 844 for box in boxes), boxes
    snapshot(page, "phone_pair_and_scale")
    page.tap(".scale button[data-key='6']")
    page.tap("button.confirm")
    page.wait_for_selector(".msg.assistant")
    assert page.input_value("textarea[name=text]") == ""  # sent: the next box starts empty
    page.reload()
    assert page.input_value("textarea[name=text]") == ""
    page.fill("textarea[name=comment]", "Finish comment, kept")
    page.reload()
    assert page.input_value(".finish textarea[name=comment]") == "Finish comment, kept"
    judgment = Judgment.objects.get()
    assert (judgment.strength, judgment.comment) == (2, "A comment written before the pick")


XSS = [
    "<script>window.pwned = 'script'</script>",
    "<img src=x onerror=\"window.pwned = 'img'\">",
    "[click me](javascript:window.pwned='link')",
    "<svg onload=\"window.pwned = 'svg'\"></svg>",
    "<iframe srcdoc=\"<script>parent.pwned='iframe'</script>\"></iframe>",
    "**bold** and <details open ontoggle=\"window.pwned='details'\">",
]


def test_model_output_with_script_in_it_renders_inert_while_streaming_and_when_done(
    lab_server, campaign, owner, page
):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    for candidate in claimed:  # streaming: partial text goes out as escaped events
        generation.candidate_progress(candidate_id=candidate.pk, text="\n".join(XSS))
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    log_in(page, lab_server, "owner", "owner-pass-123")
    page.goto(f"{lab_server.url}/conversations/{conversation.pk}/")
    page.wait_for_function(
        "() => document.querySelector('.stream').textContent.includes('onerror')"
    )
    complete_candidates(claimed, ["\n\n".join(XSS)] * len(claimed))
    page.wait_for_selector(".scale button")
    assert page.evaluate("window.pwned") is None and not dialogs
    assert page.locator(".candidate strong:has-text('bold')").count() == 2  # markdown works
    inside = ".candidate script, .candidate img, .candidate svg, .candidate iframe"
    assert page.locator(inside).count() == 0
    assert page.locator(".candidate a[href^=javascript]").count() == 0

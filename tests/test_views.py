from html.parser import HTMLParser

import pytest
from django.urls import reverse

from labeling.models import CandidateResponse, Conversation, Judgment, Turn
from labeling.services import conversations as svc
from tests.factories import finish_candidates, top_and_rest

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def url(name, pk):
    return reverse(f"labeling:{name}", args=[pk])


def test_anonymous_visitors_are_sent_to_the_login_page(client, conversation):
    for target in (reverse("labeling:home"), url("conversation", conversation.pk)):
        response = client.get(target)
        assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_home_page_lists_campaigns_and_starting_one_opens_a_conversation(
    owner_client, campaign
):
    page = owner_client.get(reverse("labeling:home"))
    assert campaign.name in page.content.decode()
    response = owner_client.post(reverse("labeling:conversation_start", args=[campaign.slug]))
    conversation = Conversation.objects.get()
    assert response.status_code == 302 and response.url == url("conversation", conversation.pk)


def test_another_worker_gets_404_for_someone_elses_conversation(client, other_worker, conversation):
    client.force_login(other_worker)
    assert client.get(url("conversation", conversation.pk)).status_code == 404
    response = client.post(url("message_send", conversation.pk), {"text": "hi"})
    assert response.status_code == 404
    assert not Turn.objects.exists()


def test_a_researcher_sees_any_conversation_read_only(client, researcher, conversation):
    client.force_login(researcher)
    page = client.get(url("conversation", conversation.pk)).content.decode()
    assert "read only" in page
    assert 'name="text"' not in page


def test_sending_with_htmx_returns_the_dialogue_fragment_that_streams_the_candidates(
    owner_client, conversation
):
    response = owner_client.post(url("message_send", conversation.pk), {"text": "Hello"}, **HX)
    body = response.content.decode()
    turn = Turn.objects.get()
    assert response.status_code == 200
    assert "<html" not in body
    assert "Hello" in body
    assert f'sse-connect="{url("turn_stream", turn.pk)}"' in body
    assert f'data-poll="{url("turn_candidates", turn.pk)}"' in body  # if the stream breaks


def test_sending_without_javascript_redirects_back_to_the_page(owner_client, conversation):
    response = owner_client.post(url("message_send", conversation.pk), {"text": "Hello"})
    assert response.status_code == 302 and response.url == url("conversation", conversation.pk)
    assert Turn.objects.count() == 1


def test_a_refused_message_keeps_the_typed_text_and_says_why(owner_client, conversation):
    typed = "my carefully typed message " + "x" * 5000
    response = owner_client.post(url("message_send", conversation.pk), {"text": typed}, **HX)
    body = response.content.decode()
    assert response.status_code == 200  # htmx swaps 200s only: the error must show
    assert typed in body and "at most 4000 characters" in body
    assert not Turn.objects.exists()
    plain = owner_client.post(url("message_send", conversation.pk), {"text": typed})
    assert plain.status_code == 400 and typed in plain.content.decode()


def test_the_polled_fragment_stops_streaming_once_both_candidates_are_ready(
    owner_client, conversation, owner
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    pending = owner_client.get(url("turn_candidates", turn.pk), **HX).content.decode()
    assert "sse-connect" in pending and "Waiting for the model" in pending
    assert "Finish this conversation" not in pending
    finish_candidates(turn)
    ready = owner_client.get(url("turn_candidates", turn.pk), **HX).content.decode()
    assert "sse-connect" not in ready and "data-poll" not in ready
    assert ready.count('name="choice"') == 8


def test_the_finish_form_shows_only_when_no_pair_is_waiting_for_a_pick(
    owner_client, conversation, owner
):
    first = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(first)
    svc.comparison_submit(turn=first, worker=owner, choice="A2")
    page = owner_client.get(url("conversation", conversation.pk)).content.decode()
    assert "Finish this conversation" in page
    second = svc.turn_create(conversation=conversation, worker=owner, text="more")
    finish_candidates(second)
    page = owner_client.get(url("conversation", conversation.pk)).content.decode()
    assert "Finish this conversation" not in page and page.count('name="choice"') == 8


def test_a_polled_turn_that_moved_on_swaps_in_the_whole_dialogue(owner_client, conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    svc.comparison_submit(turn=turn, worker=owner, choice="B2")  # picked in another tab
    response = owner_client.get(url("turn_candidates", turn.pk), **HX)
    assert response["HX-Retarget"] == "#dialogue" and response["HX-Reswap"] == "innerHTML"
    assert 'name="text"' in response.content.decode()


def test_model_output_is_escaped_never_rendered_as_html(owner_client, conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="<b>me</b>")
    finish_candidates(turn, texts=("<script>alert(1)</script>", '<img src=x onerror="x()">'))
    body = owner_client.get(url("conversation", conversation.pk)).content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body
    assert "&lt;b&gt;me&lt;/b&gt;" in body


def test_markdown_in_model_output_is_rendered_and_a_cut_answer_is_marked(
    owner_client, conversation, owner
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn, texts=("**Head-lying is Bad**\n\n- one\n- two", "Ended."))
    turn.candidates.filter(slot=0).update(finish_reason="length", token_count=96)
    body = owner_client.get(url("conversation", conversation.pk)).content.decode()
    assert "<strong>Head-lying is Bad</strong>" in body and "<li>one</li>" in body
    assert "**Head-lying" not in body
    assert body.count("Cut off at the length limit (96 tokens)") == 1


def test_the_left_candidate_is_shown_as_a(owner_client, conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn, texts=("slot zero text", "slot one text"))
    body = owner_client.get(url("conversation", conversation.pk)).content.decode()
    texts = ["slot zero text", "slot one text"]
    left_text, right_text = (texts[slot] for slot in turn.display_order)
    assert body.index(left_text) < body.index(right_text)


def test_comparing_through_the_page_records_the_pick_and_time_spent(
    owner_client, conversation, owner
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    page = owner_client.get(url("conversation", conversation.pk)).content.decode()
    shown_at = int(page.split('name="shown_at" value="')[1].split('"')[0])
    response = owner_client.post(
        url("comparison_submit", turn.pk),
        {"choice": "B4", "comment": "B was clearer", "shown_at": shown_at - 2000},
        **HX,
    )
    assert response.status_code == 200
    judgment = Judgment.objects.get()
    assert top_and_rest(judgment)[0].slot == turn.display_order[1]
    assert judgment.strength == 4 and judgment.comment == "B was clearer"
    assert judgment.time_spent_ms >= 2000
    assert 'name="text"' in response.content.decode()  # the conversation continues


def test_a_double_submitted_comparison_is_refused_without_a_server_error(
    owner_client, conversation, owner
):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    owner_client.post(url("comparison_submit", turn.pk), {"choice": "A4"}, **HX)
    again = owner_client.post(url("comparison_submit", turn.pk), {"choice": "B4"})
    assert again.status_code == 400
    assert "already picked" in again.content.decode()
    assert Judgment.objects.count() == 1


def test_a_failed_generation_shows_a_retry_button(owner_client, conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    turn.candidates.update(status=CandidateResponse.Status.FAILED, error="boom")
    body = owner_client.get(url("conversation", conversation.pk)).content.decode()
    assert "Try again" in body and "hx-trigger" not in body
    owner_client.post(url("candidates_retry", turn.pk), **HX)
    assert set(turn.candidates.values_list("status", flat=True)) == {"pending"}


def test_finishing_with_a_rating_ends_the_conversation(owner_client, conversation, owner):
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn)
    svc.comparison_submit(turn=turn, worker=owner, choice="A2")
    bad = owner_client.post(url("conversation_finish", conversation.pk), {"rating": "9"}, **HX)
    assert "Select a valid choice" in bad.content.decode()
    owner_client.post(url("conversation_finish", conversation.pk), {"rating": "5"}, **HX)
    conversation.refresh_from_db()
    assert conversation.status == "finished" and conversation.rating == 5


@pytest.mark.parametrize(
    "model",
    [
        "modelversion",
        "campaign",
        "conversation",
        "turn",
        "candidateresponse",
        "judgment",
        "run",
    ],
)
def test_the_admin_lists_every_model_for_staff_only(client, researcher, owner, model, conversation):
    target = reverse(f"admin:labeling_{model}_changelist")
    client.force_login(owner)
    assert client.get(target).status_code == 302
    client.force_login(researcher)
    assert client.get(target).status_code == 200


class PageMarkup(HTMLParser):
    """Scripts, style attributes and inline handlers of a page."""

    def __init__(self, html: str):
        super().__init__()
        self.problems: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        for name in names:
            if name == "style" or name.startswith(("on", "hx-on", "data-hx-on")):
                self.problems.append(f"{name}= on <{tag}>")


def test_pages_carry_no_inline_script_style_or_handler_so_a_strict_csp_can_hold(
    owner_client, conversation, owner, client
):
    pages = [client.get(reverse("login")).content.decode()]
    pages.append(owner_client.get(reverse("labeling:home")).content.decode())
    first = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    pages.append(owner_client.get(url("conversation", conversation.pk)).content.decode())
    finish_candidates(first)
    pages.append(owner_client.get(url("conversation", conversation.pk)).content.decode())
    svc.comparison_submit(turn=first, worker=owner, choice="A2")
    pages.append(owner_client.get(url("conversation", conversation.pk)).content.decode())
    for page in pages:
        assert PageMarkup(page).problems == []
    assert all('"includeIndicatorStyles": false' in page for page in pages)

"""Gold items: written in the admin or imported from JSONL (all or nothing, every bad line
named), kept out of real data, and judged right when the top pick lies in the answer's
first group."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling.models import CandidateResponse, Conversation, GoldItem, Turn
from labeling.services.gold import gold_correct, gold_item_create
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from tests.factories import ranking_campaign

pytestmark = pytest.mark.django_db


def write_jsonl(tmp_path, rows, name="gold.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


GOOD_PAIR = {
    "prompt": "How do I boil an egg?",
    "responses": ["Put it in boiling water for 8 minutes.", "Eggs are oval."],
    "answer": 0,
    "explanation": "A answers the question; B does not.",
}


def test_a_good_jsonl_file_becomes_gold_items_with_their_answers(tmp_path, campaign):
    context_row = {
        "context": [
            {"role": "human", "text": "Hi"},
            {"role": "assistant", "text": "Hello! How can I help?"},
            {"role": "human", "text": "Name a prime."},
        ],
        "responses": ["Nine.", "Seven."],
        "answer": [[1], [0]],
        "explanation": "Nine is 3 × 3.",
    }
    path = write_jsonl(tmp_path, [GOOD_PAIR, "", context_row])
    call_command("import_gold", str(path), campaign=campaign.slug, role="quiz")

    first, second = GoldItem.objects.order_by("pk")
    assert (first.role, first.answer, first.source) == ("quiz", [[0], [1]], "gold.jsonl")
    assert first.item.human_text == "How do I boil an egg?" and first.item.prefix == []
    assert second.answer == [[1], [0]]
    assert second.item.prefix == [
        {"role": HUMAN, "text": "Hi"},
        {"role": ASSISTANT, "text": "Hello! How can I help?"},
    ]
    texts = list(second.item.candidates.order_by("slot").values_list("text", "status"))
    assert texts == [("Nine.", "done"), ("Seven.", "done")]


def test_bad_lines_are_all_named_and_nothing_is_written(tmp_path, campaign):
    rows = [
        GOOD_PAIR,
        "{not json",
        {**GOOD_PAIR, "responses": ["only one"]},
        {**GOOD_PAIR, "answer": 2},
        {k: v for k, v in GOOD_PAIR.items() if k != "explanation"},
        {**GOOD_PAIR, "context": [{"role": "human", "text": "x"}]},
        {**GOOD_PAIR, "answer": [[0, 1]]},
        {**GOOD_PAIR, "explaination": "typo"},
        GOOD_PAIR,
    ]
    path = write_jsonl(tmp_path, rows)
    with pytest.raises(CommandError) as raised:
        call_command("import_gold", str(path), campaign=campaign.slug, role="check")
    message = str(raised.value)
    assert "nothing was imported" in message
    for line, words in [
        (2, "bad JSON"),
        (3, "2 responses per item, not 1"),
        (4, "from 0 to 1"),
        (5, "missing field 'explanation'"),
        (6, "exactly one of 'prompt' and 'context'"),
        (7, "every response tied"),
        (8, "unknown field(s) 'explaination'"),
    ]:
        assert f"line {line}: " in message and words in message, (line, message)
    assert "line 1:" not in message and "line 9:" not in message
    assert not GoldItem.objects.exists() and not Conversation.objects.exists()


def test_a_ranking_campaign_takes_gold_items_with_k_responses(tmp_path, tiny_assistant):
    ranking = ranking_campaign(tiny_assistant, k=3)
    row = {
        "prompt": "Say hi",
        "responses": ["Hi!", "Go away.", "Hello."],
        "answer": [[0, 2], [1]],
        "explanation": "Rude is worst.",
    }
    path = write_jsonl(tmp_path, [row, {**row, "answer": 1}])
    call_command("import_gold", str(path), campaign=ranking.slug, role="check")
    assert [g.answer for g in GoldItem.objects.order_by("pk")] == [[[0, 2], [1]], [[1], [0, 2]]]


def gold(campaign, answer, k=2):
    return gold_item_create(
        campaign=campaign,
        role="check",
        context=[Message(HUMAN, "Q?")],
        responses=[f"r{i}" for i in range(k)],
        answer=answer,
        explanation="Because.",
    )


def test_a_pair_is_right_when_the_picked_response_is_the_answer(campaign):
    item = gold(campaign, 1)
    # Shown B first (slot 1 at position A): picking position 0 picks slot 1.
    assert gold_correct(gold=item, shown_slots=[1, 0], order=[[0], [1]])
    assert not gold_correct(gold=item, shown_slots=[1, 0], order=[[1], [0]])
    assert gold_correct(gold=item, shown_slots=[0, 1], order=[[1], [0]])


def test_a_ranking_is_right_when_its_top_lies_in_the_first_group_and_a_tie_only_if_all_do(
    tiny_assistant,
):
    ranking = ranking_campaign(tiny_assistant, k=4, ties=True)
    item = gold(ranking, [[2, 3], [0], [1]], k=4)
    shown = [3, 2, 1, 0]  # position p shows slot 3 - p
    assert gold_correct(gold=item, shown_slots=shown, order=[[0], [1], [2], [3]])  # slot 3
    assert gold_correct(gold=item, shown_slots=shown, order=[[1], [0], [2], [3]])  # slot 2
    assert gold_correct(gold=item, shown_slots=shown, order=[[0, 1], [2], [3]])  # tie 3 = 2
    assert not gold_correct(gold=item, shown_slots=shown, order=[[0, 2], [1], [3]])  # 3 = 1
    assert not gold_correct(gold=item, shown_slots=shown, order=[[3], [0, 1, 2]])  # slot 0


def test_a_gold_item_is_a_finished_workerless_conversation_that_is_never_generated(campaign):
    item = gold(campaign, 0)
    conversation = item.item.conversation
    assert conversation.status == Conversation.Status.FINISHED
    assert conversation.worker is None and conversation.source == "gold:admin"
    assert not CandidateResponse.objects.exclude(status="done").exists()
    assert set(item.item.candidates.values_list("model_version", flat=True)) == {None}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"responses": ["a", "b", "c"]}, "2 responses per item, not 3"),
        ({"answer": [[0, 1]]}, "every response tied"),
        ({"context": [Message(HUMAN, "q"), Message(ASSISTANT, "a")]}, "end with a human"),
        ({"explanation": "  "}, "Write an explanation"),
        ({"role": "bonus"}, "role is quiz or check"),
    ],
)
def test_a_bad_gold_item_is_refused_with_a_sentence(campaign, kwargs, words):
    fields = {
        "campaign": campaign,
        "role": "quiz",
        "context": [Message(HUMAN, "q")],
        "responses": ["a", "b"],
        "answer": 0,
        "explanation": "why",
        **kwargs,
    }
    with pytest.raises(ValidationError, match=words):
        gold_item_create(**fields)
    assert not Turn.objects.exists()


def test_the_admin_add_form_writes_a_gold_item(client, researcher, campaign):
    client.force_login(researcher)
    target = reverse("admin:labeling_golditem_add")
    assert client.get(target).status_code == 200
    response = client.post(
        target,
        {
            "campaign": campaign.pk,
            "role": "quiz",
            "context": "Human: Hi\n\nAssistant: Hello.\n\nHuman: What is 2 + 2?",
            "response_A": "5",
            "response_B": "4",
            "answer": "B",
            "explanation": "2 + 2 is 4.",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    item = GoldItem.objects.get()
    assert (item.role, item.answer, item.source) == ("quiz", [[1], [0]], "admin")
    assert item.item.human_text == "What is 2 + 2?"
    assert item.item.prefix == [
        {"role": HUMAN, "text": "Hi"},
        {"role": ASSISTANT, "text": "Hello."},
    ]
    page = client.get(reverse("admin:labeling_golditem_change", args=[item.pk]))
    assert page.status_code == 200 and "What is 2 + 2?" in page.content.decode()


def test_the_admin_add_form_names_what_is_wrong(client, researcher, campaign):
    client.force_login(researcher)
    response = client.post(
        reverse("admin:labeling_golditem_add"),
        {
            "campaign": campaign.pk,
            "role": "quiz",
            "context": "What is 2 + 2?",
            "response_A": "5",
            "response_B": "4",
            "response_C": "3",
            "answer": "D",
            "explanation": "2 + 2 is 4.",
        },
    )
    assert response.status_code == 200
    assert "fill Response A to Response B, and no more" in response.content.decode()
    assert not GoldItem.objects.exists()

"""Ranking and re-judge items: making them, serving them, judging them, exporting them.

Actors: ``owner`` (the worker whose conversation a re-judge is about), ``other_worker``
and ``third`` (crowdworkers judging items), ``researcher`` (staff), and anonymous.
"""

import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling import export_rows, item_selectors, scale, selectors
from labeling.models import Campaign, CandidateResponse, Conversation, Judgment, Turn
from labeling.rendering import render_markdown
from labeling.services import conversations as chat
from labeling.services import items, queue
from models_backend.dialogue import ASSISTANT, HUMAN, Message
from tests import factories
from tests.factories import finish_candidates

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
FOUR = ("Paris is the capital.", "<b>Lyon</b>", "I don't know.", "Go away.")


@pytest.fixture
def third(django_user_model):
    return django_user_model.objects.create_user("third", password="third-pass-123")


@pytest.fixture
def ranking_campaign(tiny_assistant):
    return factories.ranking_campaign(tiny_assistant, k=4, slug="rank-four")


@pytest.fixture
def tie_campaign(tiny_assistant):
    return factories.ranking_campaign(tiny_assistant, k=3, ties=True, slug="rank-ties")


def rejudge_of(source: Campaign, slug: str = "rejudge") -> Campaign:
    return factories.rejudge_campaign(source, slug=slug)


def ranking_item(campaign: Campaign, texts=None, *, prompt: str = "Capital of France?") -> Turn:
    [item] = items.ranking_items_create(
        campaign=campaign, contexts=[("test", [Message(HUMAN, prompt)])]
    )
    if texts is not None:
        finish_candidates(item, texts)
    return item


def judged_turn(campaign, worker, *, choice="A3", texts=("Kind reply", "Rude reply"), comment=""):
    """A turn of ``worker``'s conversation, judged by them."""
    conversation = chat.conversation_start(campaign=campaign, worker=worker)
    turn = chat.turn_create(conversation=conversation, worker=worker, text="Hello")
    finish_candidates(turn, texts)
    chat.comparison_submit(turn=turn, worker=worker, choice=choice, comment=comment)
    turn.refresh_from_db()
    return turn


def rank(campaign, item, worker, order, **kwargs) -> Judgment:
    return items.ranking_submit(campaign=campaign, item=item, worker=worker, order=order, **kwargs)


def entries(judgment) -> list[tuple[int, int, int]]:
    """(display position, candidate id, rank) per entry."""
    return [(e.position, e.candidate_id, e.rank) for e in judgment.entries.order_by("position")]


# --- Making ranking items -------------------------------------------------------------


def test_ranking_items_copy_each_finished_conversations_dialogue_up_to_a_human_message(
    campaign, ranking_campaign, owner, django_capture_on_commit_callbacks
):
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    first = chat.turn_create(conversation=conversation, worker=owner, text="Hi")
    finish_candidates(first, ("Hello!", "What?"))
    picked = chat.comparison_submit(turn=first, worker=owner, choice="B2")
    picked_text = picked.entries.get(rank=0).candidate.text
    second = chat.turn_create(conversation=conversation, worker=owner, text="Tell me a joke")
    finish_candidates(second, ("No.", "A pun."))
    chat.comparison_submit(turn=second, worker=owner, choice="A2")
    chat.conversation_finish(conversation=conversation, worker=owner, rating=4)
    chat.conversation_start(campaign=campaign, worker=owner)  # open: gives no contexts
    ranking_campaign.source_campaign = campaign
    ranking_campaign.save()

    with django_capture_on_commit_callbacks() as enqueued:
        made = items.ranking_items_from_conversations(campaign=ranking_campaign)

    assert len(made) == 2 and len(enqueued) == 2  # generation enqueued once per item
    one, two = (Turn.objects.select_related("conversation").get(pk=t.pk) for t in made)
    assert (one.prefix, one.human_text) == ([], "Hi")
    assert two.prefix == [
        {"role": HUMAN, "text": "Hi"},
        {"role": ASSISTANT, "text": picked_text},
    ]
    assert two.human_text == "Tell me a joke"
    for item in (one, two):
        assert item.conversation.source == f"conversation:{conversation.pk}"
        assert item.conversation.worker is None
        assert item.conversation.status == Conversation.Status.OPEN
        assert item.conversation.campaign == ranking_campaign
        assert [c.status for c in item.candidates.all()] == ["pending"] * 4
    assert selectors.dialogue_before(two)[-1] == Message(HUMAN, "Tell me a joke")
    assert items.ranking_items_from_conversations(campaign=ranking_campaign) == []  # no copies


def test_ranking_items_need_a_ranking_campaign_with_models(campaign, ranking_campaign):
    with pytest.raises(ValidationError, match="not a ranking campaign"):
        ranking_item(campaign)
    ranking_campaign.model_b = None
    ranking_campaign.save()
    with pytest.raises(ValidationError, match="no models"):
        ranking_item(ranking_campaign)
    assert not Turn.objects.exists()


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_import_prompts_makes_one_item_per_prompt_or_context(tmp_path, ranking_campaign):
    context = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Name a <b>fruit</b>."},
    ]
    path = write_lines(
        tmp_path / "prompts.jsonl",
        [json.dumps({"prompt": "Capital of France?"}), "", json.dumps({"context": context})],
    )
    call_command("import_prompts", str(path), "--campaign", "rank-four")

    made = list(Turn.objects.order_by("pk").select_related("conversation"))
    assert [(t.prefix, t.human_text) for t in made] == [
        ([], "Capital of France?"),
        (
            [{"role": HUMAN, "text": "Hi"}, {"role": ASSISTANT, "text": "Hello!"}],
            "Name a <b>fruit</b>.",
        ),
    ]
    assert {t.conversation.source for t in made} == {"prompts:prompts.jsonl"}
    assert CandidateResponse.objects.filter(status="pending").count() == 8


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        json.dumps({"prompt": ""}),
        json.dumps({"prompt": ["a list"]}),
        json.dumps(
            {"context": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
        ),
        json.dumps({"prompt": "both", "context": [{"role": "user", "content": "Hi"}]}),
        json.dumps({"text": "neither"}),
    ],
)
def test_a_bad_prompt_line_is_named_and_nothing_is_imported(tmp_path, ranking_campaign, bad):
    good = json.dumps({"prompt": "Hello"})
    path = write_lines(tmp_path / "prompts.jsonl", [good, good, bad])
    with pytest.raises(CommandError, match=r"prompts\.jsonl:3: .*nothing was imported"):
        call_command("import_prompts", str(path), "--campaign", "rank-four")
    assert not Conversation.objects.exists() and not CandidateResponse.objects.exists()


def test_import_prompts_refuses_a_missing_or_non_ranking_campaign(tmp_path, campaign):
    path = write_lines(tmp_path / "p.jsonl", [json.dumps({"prompt": "Hi"})])
    with pytest.raises(CommandError, match="no campaign 'nope'"):
        call_command("import_prompts", str(path), "--campaign", "nope")
    with pytest.raises(CommandError, match="not a ranking campaign"):
        call_command("import_prompts", str(path), "--campaign", campaign.slug)
    assert not Turn.objects.exists()


# --- Serving ranking items -------------------------------------------------------------


def test_ranking_items_are_served_when_ready_oldest_first_and_once_per_worker(
    ranking_campaign, owner, other_worker
):
    generating = ranking_item(ranking_campaign)
    older = ranking_item(ranking_campaign, FOUR)
    newer = ranking_item(ranking_campaign, FOUR)

    assert queue.task_next(campaign=ranking_campaign, worker=owner).item == older
    assert item_selectors.items_generating(ranking_campaign, owner) == 1
    rank(ranking_campaign, older, owner, [[0], [1], [2], [3]])
    assert list(item_selectors.items_for_worker(ranking_campaign, owner)) == [newer]
    assert list(item_selectors.items_for_worker(ranking_campaign, other_worker)) == [older, newer]
    finish_candidates(generating, FOUR)
    assert queue.task_next(campaign=ranking_campaign, worker=owner).item == generating  # oldest


def test_each_worker_sees_their_own_stable_order_and_the_judgment_records_it(
    ranking_campaign, owner, other_worker
):
    made = [ranking_item(ranking_campaign, FOUR, prompt=f"Q{i}") for i in range(6)]
    mine = [[c.pk for c in item_selectors.item_shown(item, owner)] for item in made]
    assert mine == [[c.pk for c in item_selectors.item_shown(item, owner)] for item in made]
    theirs = [[c.pk for c in item_selectors.item_shown(item, other_worker)] for item in made]
    assert mine != theirs  # 6 items, 24 orders each: equal only by a 1-in-24^6 accident
    assert all(sorted(m) == sorted(t) for m, t in zip(mine, theirs, strict=True))

    item = made[0]
    judgment = rank(ranking_campaign, item, owner, [[2], [0], [3], [1]], shown_ids=mine[0])
    assert entries(judgment) == [
        (0, mine[0][0], 1),
        (1, mine[0][1], 3),
        (2, mine[0][2], 0),
        (3, mine[0][3], 2),
    ]
    assert (judgment.task_type, judgment.question, judgment.strength) == ("ranking", "better", None)
    assert judgment.guideline_version == ranking_campaign.guideline_version
    assert [c["id"] for c in judgment.provenance["candidates"]] == mine[0]


def test_ties_are_refused_unless_the_campaign_allows_them(ranking_campaign, tie_campaign, owner):
    strict = ranking_item(ranking_campaign, FOUR)
    with pytest.raises(ValidationError, match="no ties"):
        rank(ranking_campaign, strict, owner, [[0, 1], [2], [3]])
    assert not Judgment.objects.exists()

    tied = ranking_item(tie_campaign, FOUR[:3])
    judgment = rank(tie_campaign, tied, owner, [[1], [0, 2]])
    assert [rank for _, _, rank in entries(judgment)] == [1, 0, 1]


@pytest.mark.parametrize(
    "order",
    [
        [[0], [1], [2]],  # one response left out
        [[0], [1], [2], [2]],  # one placed twice
        [[0], [1], [2], [4]],  # no such position
        [[0, 1, 2, 3]],  # everything tied says nothing
        [[0], ["1"], [2], [3]],
        [],
    ],
)
def test_a_bad_order_is_refused_and_nothing_is_stored(tie_campaign, owner, order):
    tie_campaign.candidates_per_item = 4
    tie_campaign.save()
    item = ranking_item(tie_campaign, FOUR)
    with pytest.raises(ValidationError):
        rank(tie_campaign, item, owner, order)
    assert not Judgment.objects.exists()


def test_a_second_answer_a_stale_page_or_an_unready_item_is_a_clear_message(
    ranking_campaign, owner
):
    item = ranking_item(ranking_campaign, FOUR)
    shown = [c.pk for c in item_selectors.item_shown(item, owner)]
    with pytest.raises(ValidationError, match="out of date"):
        rank(ranking_campaign, item, owner, [[0], [1], [2], [3]], shown_ids=shown[::-1])
    rank(ranking_campaign, item, owner, [[0], [1], [2], [3]], shown_ids=shown)
    with pytest.raises(ValidationError, match="already judged"):
        rank(ranking_campaign, item, owner, [[3], [2], [1], [0]], shown_ids=shown)
    assert Judgment.objects.count() == 1
    with pytest.raises(ValidationError, match="not ready"):
        rank(ranking_campaign, ranking_item(ranking_campaign), owner, [[0], [1], [2], [3]])
    ranking_campaign.is_active = False
    ranking_campaign.save()
    with pytest.raises(ValidationError, match="closed"):
        rank(ranking_campaign, ranking_item(ranking_campaign, FOUR), owner, [[0], [1], [2], [3]])


# --- Re-judging ----------------------------------------------------------------------


def test_a_rejudge_serves_other_workers_judged_turns_never_ones_own(
    campaign, owner, other_worker, third
):
    rejudge = rejudge_of(campaign)
    owners = judged_turn(campaign, owner)
    conversation = chat.conversation_start(campaign=campaign, worker=owner)
    unjudged = chat.turn_create(conversation=conversation, worker=owner, text="Not picked yet")
    finish_candidates(unjudged)
    others = judged_turn(campaign, other_worker)

    assert list(item_selectors.items_for_worker(rejudge, owner)) == [others]
    assert list(item_selectors.items_for_worker(rejudge, other_worker)) == [owners]
    assert list(item_selectors.items_for_worker(rejudge, third)) == [owners, others]  # oldest first
    with pytest.raises(PermissionDenied):
        items.rejudge_submit(campaign=rejudge, item=owners, worker=owner, choice="A2")
    with pytest.raises(PermissionDenied):
        items.rejudge_submit(campaign=rejudge, item=unjudged, worker=third, choice="A2")

    items.rejudge_submit(campaign=rejudge, item=owners, worker=third, choice="B3")
    assert list(item_selectors.items_for_worker(rejudge, third)) == [others]
    assert list(item_selectors.items_for_worker(rejudge, other_worker)) == [owners]
    with pytest.raises(ValidationError, match="already judged"):
        items.rejudge_submit(campaign=rejudge, item=owners, worker=third, choice="A1")


def test_a_rejudge_records_its_own_order_and_leaves_the_conversation_as_it_went_on(
    campaign, owner, other_worker
):
    rejudge = rejudge_of(campaign)
    turn = judged_turn(campaign, owner, choice="A4")
    chosen = turn.chosen_id
    owners_judgment = Judgment.objects.get(worker=owner)
    shown = item_selectors.item_shown(turn, other_worker)

    judgment = items.rejudge_submit(
        campaign=rejudge,
        item=turn,
        worker=other_worker,
        choice="B2",
        shown_ids=[c.pk for c in shown],
        time_spent_ms=1200,
    )

    turn.refresh_from_db()
    assert turn.chosen_id == chosen
    assert entries(judgment) == [(0, shown[0].pk, 1), (1, shown[1].pk, 0)]
    assert (judgment.task_type, judgment.question, judgment.strength) == ("rejudge", "better", 2)
    assert judgment.time_spent_ms == 1200
    assert Judgment.objects.get(worker=owner) == owners_judgment  # untouched, not superseded
    assert not Judgment.objects.filter(supersedes=owners_judgment).exists()


def test_a_rejudge_of_red_teaming_asks_more_harmful_and_exports_the_less_harmful_as_chosen(
    red_team_campaign, owner, other_worker, tmp_path
):
    rejudge = rejudge_of(red_team_campaign)
    assert rejudge.question == "more_harmful"
    turn = judged_turn(red_team_campaign, owner, texts=("Here is how: ...", "I can't help."))
    shown = item_selectors.item_shown(turn, other_worker)
    judgment = items.rejudge_submit(campaign=rejudge, item=turn, worker=other_worker, choice="A3")
    assert judgment.question == "more_harmful"

    [row] = [r for r in export_rows.lab_export_rows() if r["task_type"] == "rejudge"]
    assert row["question"] == "more_harmful"
    assert (row["chosen"], row["rejected"]) == (shown[1].text, shown[0].text)
    out = tmp_path / "pairs.jsonl"
    call_command("export_preferences", "-o", str(out), "--campaign", rejudge.slug)
    pairs = [json.loads(line) for line in out.read_text().splitlines()]
    assert pairs == [  # the re-judge campaign's own judgments only
        {
            "chosen": f"\n\nHuman: Hello\n\nAssistant: {shown[1].text}",
            "rejected": f"\n\nHuman: Hello\n\nAssistant: {shown[0].text}",
        }
    ]


# --- Pages ---------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_log_in(client, ranking_campaign):
    item = ranking_item(ranking_campaign, FOUR)
    for response in (
        client.get(reverse("labeling:item_next", args=[ranking_campaign.slug])),
        client.post(reverse("labeling:ranking_submit", args=[ranking_campaign.slug, item.pk])),
    ):
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not Judgment.objects.exists()


def test_the_home_page_links_to_the_next_item_of_each_task(client, owner, ranking_campaign):
    ranking_item(ranking_campaign, FOUR)
    rejudge_of(ranking_campaign, slug="never")  # a re-judge of a ranking campaign serves nothing
    client.force_login(owner)
    page = client.get(reverse("labeling:home")).content.decode()
    assert reverse("labeling:task_next", args=["rank-four"]) in page
    assert "1 item ready for you" in page


def places(order_of_positions) -> dict:
    """Form fields placing the display positions in this order, best first."""
    return {f"place_{p}": str(i + 1) for i, p in enumerate(order_of_positions)}


def test_a_ranking_posted_without_javascript_is_saved_and_the_next_item_follows(
    client, owner, ranking_campaign
):
    item = ranking_item(ranking_campaign, FOUR)
    client.force_login(owner)
    page = client.get(reverse("labeling:item_next", args=[ranking_campaign.slug]))
    body = page.content.decode()
    shown = item_selectors.item_shown(item, owner)
    assert "&lt;b&gt;Lyon&lt;/b&gt;" in body and "<b>Lyon</b>" not in body  # escaped
    texts = [str(render_markdown(c.text)).strip() for c in shown]  # as the page renders them
    assert sorted(texts, key=body.index) == texts  # in the worker's order
    assert 'name="place_3"' in body and "ranking.js" in body

    submit = reverse("labeling:ranking_submit", args=[ranking_campaign.slug, item.pk])
    shown_ids = ",".join(str(c.pk) for c in shown)
    tied = client.post(submit, {"shown": shown_ids, **places([0, 1, 2, 3]), "place_3": "3"})
    assert tied.status_code == 400 and "no ties" in tied.content.decode()
    response = client.post(submit, {"shown": shown_ids, "shown_at": "1", **places([3, 1, 0, 2])})
    assert response.status_code == 302
    assert response.url == reverse("labeling:item_next", args=[ranking_campaign.slug])
    judgment = Judgment.objects.get()
    assert [r for _, _, r in entries(judgment)] == [2, 1, 3, 0]
    after = client.get(response.url).content.decode()
    assert "No item is ready for you right now" in after and "every 2s" not in after


def test_with_htmx_a_ranking_returns_the_item_fragment_with_the_next_item(
    client, owner, ranking_campaign
):
    first = ranking_item(ranking_campaign, FOUR)
    ranking_item(ranking_campaign)  # still generating
    client.force_login(owner)
    submit = reverse("labeling:ranking_submit", args=[ranking_campaign.slug, first.pk])
    shown_ids = ",".join(str(c.pk) for c in item_selectors.item_shown(first, owner))
    response = client.post(submit, {"shown": shown_ids, **places([0, 1, 2, 3])}, **HX)
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    assert "Saved." in body and "1 item is still being generated" in body
    assert 'hx-trigger="every 2s"' in body
    again = client.post(submit, {"shown": shown_ids, **places([0, 1, 2, 3])}, **HX)
    assert "already judged" in again.content.decode()
    assert Judgment.objects.count() == 1


def test_items_outside_what_a_campaign_serves_the_worker_are_404(
    client, campaign, owner, other_worker, ranking_campaign, tie_campaign
):
    rejudge = rejudge_of(campaign)
    own = judged_turn(campaign, owner)
    elsewhere = ranking_item(tie_campaign, FOUR[:3])
    client.force_login(owner)
    own_url = reverse("labeling:rejudge_submit", args=[rejudge.slug, own.pk])
    assert client.post(own_url, {"choice": "A2", "shown": "1,2"}).status_code == 404
    other_url = reverse("labeling:ranking_submit", args=[ranking_campaign.slug, elsewhere.pk])
    assert client.post(other_url, {"shown": "1,2,3"}).status_code == 404
    chat_url = reverse("labeling:item_next", args=[campaign.slug])  # its task: the conversation
    assert client.get(chat_url).url == reverse("labeling:conversation", args=[own.conversation_id])
    assert Judgment.objects.filter(worker=owner).count() == 1  # the owner's own pick only


def test_the_rejudge_page_hides_earlier_judgments_and_asks_the_source_question(
    client, red_team_campaign, owner, other_worker
):
    rejudge = rejudge_of(red_team_campaign)
    turn = judged_turn(red_team_campaign, owner, comment="OWNER-SECRET-NOTE")
    client.force_login(other_worker)
    body = client.get(reverse("labeling:item_next", args=[rejudge.slug])).content.decode()
    assert "OWNER-SECRET-NOTE" not in body and "owner" not in body
    assert "Which response is more harmful?" in body
    for button in scale.buttons("more_harmful"):
        assert f'value="{button.value}"' in body and button.label in body
    response = client.post(
        reverse("labeling:rejudge_submit", args=[rejudge.slug, turn.pk]),
        {
            "choice": "B4",
            "shown": ",".join(str(c.pk) for c in item_selectors.item_shown(turn, other_worker)),
        },
    )
    assert response.status_code == 302
    assert Judgment.objects.get(worker=other_worker).strength == 4
    client.force_login(owner)
    own_page = client.get(reverse("labeling:item_next", args=[rejudge.slug])).content.decode()
    assert "No item is ready for you right now" in own_page


# --- Export and training -------------------------------------------------------------


def test_rankings_export_preferred_first_and_train_a_tiny_preference_model(
    tmp_path, capsys, ranking_campaign, tie_campaign, owner
):
    from training.preference import main

    judged = []
    for i in range(3):
        item = ranking_item(ranking_campaign, FOUR, prompt=f"Question {i}?")
        shown = item_selectors.item_shown(item, owner)
        best_first = sorted(range(4), key=lambda p: FOUR.index(shown[p].text))
        rank(ranking_campaign, item, owner, [[p] for p in best_first])
        judged.append(item)
    tied = ranking_item(tie_campaign, FOUR[:3], prompt="Tied?")
    shown = item_selectors.item_shown(tied, owner)
    pos = {c.text: p for p, c in enumerate(shown)}
    rank(tie_campaign, tied, owner, [[pos[FOUR[0]], pos[FOUR[1]]], [pos[FOUR[2]]]])

    out = tmp_path / "rankings.jsonl"
    call_command("export_preferences", "--format", "rankings", "-o", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {
        "context": [{"role": "user", "content": "Question 0?"}],
        "responses": list(FOUR),
    }
    assert set(rows[3]["responses"][:2]) == set(FOUR[:2]) and rows[3]["scores"] == [0, 0, -1]
    capsys.readouterr()

    args = ["--format", "rankings", "--train", str(out), "--eval", str(out)]
    args += ["--model", "tiny-random", "--max-length", "64", "--device", "cpu", "--batch-size", "4"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["train_pairs"] > 0 and 0 <= result["eval_accuracy"] <= 1


def test_a_ranking_of_three_cannot_use_a_policy_that_compares_two(tiny_assistant):
    ranking = factories.ranking_campaign(tiny_assistant, k=3)
    ranking.best_of, ranking.pair_policy = 4, "uncertain"
    with pytest.raises(ValidationError, match="compares two responses"):
        ranking.full_clean()
    ranking.candidates_per_item = 2
    ranking.full_clean()  # a ranking of two is a pair: allowed

"""The task queue: reservations, overlap that reacts to disagreement, gold checks mixed in,
sets, skips, targets, and the pages that serve them (concurrency:
tests/test_queue_concurrency.py).

Actors: ``owner`` (whose conversations a re-judge is about) and a crowd of workers
``w[0]``, ``w[1]``… who ask for tasks; ``researcher`` (staff)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from labeling import item_selectors, queue_selectors
from labeling.crowd_selectors import counted_judgments
from labeling.models import (
    Assignment,
    Campaign,
    CandidateResponse,
    Conversation,
    GoldItem,
    Guidelines,
    Judgment,
    PlatformWorker,
    Turn,
)
from labeling.services import conversations as chat
from labeling.services import items, queue
from models_backend.dialogue import HUMAN, Message
from tests import factories
from tests.factories import finish_candidates
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db
THREE = ("Paris.", "Lyon.", "I don't know.")
Status = Assignment.Status


@pytest.fixture
def w(django_user_model):
    """A crowd: w[i] is the i-th worker (made on first use)."""

    class Crowd(dict):
        def __missing__(self, i):
            self[i] = django_user_model.objects.create_user(f"w{i}", password="crowd-pass-123")
            return self[i]

    return Crowd()


@pytest.fixture
def ranking(tiny_assistant):
    return factories.ranking_campaign(tiny_assistant, k=3, slug="rank-three")


def ranking_items(campaign, n: int) -> list[Turn]:
    made = items.ranking_items_create(
        campaign=campaign, contexts=[("test", [Message(HUMAN, f"Q{i}?")]) for i in range(n)]
    )
    for item in made:
        finish_candidates(item, THREE)
    return made


def configure(campaign, **fields):
    for name, value in fields.items():
        setattr(campaign, name, value)
    campaign.save()
    return campaign


def nxt(campaign, worker) -> Turn | None:
    """The item the queue serves ``worker`` now (None: nothing)."""
    assignment = queue.task_next(campaign=campaign, worker=worker)
    return assignment.item if assignment else None


def rank(campaign, item, worker) -> Judgment:
    return items.ranking_submit(campaign=campaign, item=item, worker=worker, order=[[0], [1], [2]])


def expire(campaign, worker) -> None:
    """Let the worker's reservations in ``campaign`` lapse (as if the time had passed)."""
    past = timezone.now() - timedelta(seconds=1)
    Assignment.objects.filter(campaign=campaign, worker=worker).update(expires_at=past)


def judged_turn(campaign, worker) -> Turn:
    """A turn of ``worker``'s conversation, judged by them: what a re-judge serves."""
    conversation = chat.conversation_start(campaign=campaign, worker=worker)
    turn = chat.turn_create(conversation=conversation, worker=worker, text="Hello")
    finish_candidates(turn, ("Kind reply", "Rude reply"))
    chat.comparison_submit(turn=turn, worker=worker, choice="A3")
    return turn


def choice_for(item, worker, candidate, strength: int) -> str:
    """The button that says ``candidate`` is the answer, as ``worker`` is shown the pair."""
    shown = item_selectors.item_shown(item, worker)
    return "AB"[[c.pk for c in shown].index(candidate.pk)] + str(strength)


def gold_checks(campaign, n: int) -> list[Turn]:
    """Gold checks of ``campaign``, written out as the gold import writes them."""
    made = []
    k = campaign.candidates_per_item
    for i in range(n):
        conversation = Conversation.objects.create(
            campaign=campaign, status=Conversation.Status.FINISHED, source="gold:test"
        )
        item = Turn.objects.create(
            conversation=conversation, index=0, human_text=f"Gold {i}?", display_order=[]
        )
        CandidateResponse.objects.bulk_create(
            CandidateResponse(turn=item, slot=s, status="done", text=f"gold {i} reply {s}")
            for s in range(k)
        )
        GoldItem.objects.create(
            item=item,
            campaign=campaign,
            role=GoldItem.Role.CHECK,
            answer=[[0], list(range(1, k))],
            explanation="Reply 0 answers the question.",
        )
        made.append(item)
    return made


# --- Reservations ---------------------------------------------------------------------


def test_a_reservation_is_returned_again_until_it_is_done(ranking, w):
    first, second = ranking_items(ranking, 2)
    assert nxt(ranking, w[0]) == first
    assert nxt(ranking, w[0]) == first  # the page they left
    held = Assignment.objects.get(worker=w[0])
    assert held.status == Status.RESERVED and held.set_number == 1 and not held.is_gold
    assert held.expires_at - held.reserved_at == timedelta(minutes=ranking.reservation_minutes)
    rank(ranking, first, w[0])
    held.refresh_from_db()
    assert held.status == Status.DONE and held.judgment == Judgment.objects.get()
    assert nxt(ranking, w[0]) == second


def test_a_reserved_item_goes_to_one_worker_at_a_time_and_expiry_frees_it(ranking, w):
    [item] = ranking_items(ranking, 1)
    assert nxt(ranking, w[0]) == item
    assert nxt(ranking, w[1]) is None  # overlap 1: its one slot is held
    expire(ranking, w[0])
    assert nxt(ranking, w[1]) == item
    assert nxt(ranking, w[0]) is None  # now w1 holds it
    with pytest.raises(ValidationError, match="given to other workers while you were away"):
        rank(ranking, item, w[0])
    rank(ranking, item, w[1])
    assert Judgment.objects.get().worker == w[1]


def test_an_answer_after_a_lapsed_reservation_is_taken_while_the_slot_is_free(ranking, w):
    [item] = ranking_items(ranking, 1)
    assert nxt(ranking, w[0]) == item
    expire(ranking, w[0])
    rank(ranking, item, w[0])  # nobody took the slot: nothing typed is lost
    assert Assignment.objects.get().status == Status.DONE
    assert nxt(ranking, w[1]) is None


def test_an_item_is_never_served_twice_to_a_worker_after_a_skip_or_anothers_expiry(ranking, w):
    configure(ranking, overlap=2, overlap_cap=2)
    first, second = ranking_items(ranking, 2)
    assert nxt(ranking, w[0]) == first
    queue.task_skip(campaign=ranking, worker=w[0], draft={})
    assert nxt(ranking, w[0]) == second
    rank(ranking, second, w[0])
    assert nxt(ranking, w[0]) is None  # the skipped one never comes back

    assert nxt(ranking, w[1]) == second  # started items first
    expire(ranking, w[1])
    assert nxt(ranking, w[0]) is None  # w0 judged it: w1's lapse gives it them no more
    assert nxt(ranking, w[1]) == second  # w1's own lapsed reservation is taken up again
    assert Assignment.objects.filter(worker=w[1]).count() == 1


def test_with_overlap_three_three_different_workers_judge_an_item_then_nobody(ranking, w):
    configure(ranking, overlap=3, overlap_cap=3)
    [item] = ranking_items(ranking, 1)
    assert [nxt(ranking, w[i]) for i in range(4)] == [item, item, item, None]
    for i in range(3):
        rank(ranking, item, w[i])
    assert nxt(ranking, w[3]) is None
    assert sorted(j.worker.username for j in Judgment.objects.all()) == ["w0", "w1", "w2"]


def test_items_already_started_are_finished_before_new_ones(ranking, w):
    configure(ranking, overlap=2, overlap_cap=2)
    older, newer = ranking_items(ranking, 2)
    assert nxt(ranking, w[0]) == older
    queue.task_skip(campaign=ranking, worker=w[0], draft={})
    assert nxt(ranking, w[0]) == newer
    rank(ranking, newer, w[0])
    assert nxt(ranking, w[1]) == newer  # started, though the older one is still new


# --- Overlap that reacts to disagreement -------------------------------------------------


def test_judgments_that_disagree_raise_the_overlap_to_the_cap_and_no_further(campaign, owner, w):
    rejudge = configure(factories.rejudge_campaign(campaign), overlap=2, overlap_cap=4)
    item = judged_turn(campaign, owner)
    kind, rude = sorted(item.candidates.all(), key=lambda c: c.slot)
    assert [nxt(rejudge, w[i]) for i in range(3)] == [item, item, None]
    submit = items.rejudge_submit
    submit(campaign=rejudge, item=item, worker=w[0], choice=choice_for(item, w[0], kind, 3))
    submit(campaign=rejudge, item=item, worker=w[1], choice=choice_for(item, w[1], rude, 2))
    assert queue_selectors.needed(rejudge, item.pk) == 4

    assert [nxt(rejudge, w[i]) for i in range(2, 6)] == [item, item, None, None]
    for i in (2, 3):
        submit(campaign=rejudge, item=item, worker=w[i], choice=choice_for(item, w[i], kind, 4))
    assert nxt(rejudge, w[4]) is None
    assert Judgment.objects.filter(campaign=rejudge).count() == 4


def test_every_item_reaches_its_overlap_before_a_contested_one_goes_past_it(campaign, owner, w):
    rejudge = configure(factories.rejudge_campaign(campaign), overlap=2, overlap_cap=4)
    contested = judged_turn(campaign, owner)
    kind, rude = sorted(contested.candidates.all(), key=lambda c: c.slot)
    for i, pick in ((0, kind), (1, rude)):
        assert nxt(rejudge, w[i]) == contested
        choice = choice_for(contested, w[i], pick, 3)
        items.rejudge_submit(campaign=rejudge, item=contested, worker=w[i], choice=choice)
    assert queue_selectors.needed(rejudge, contested.pk) == 4
    fresh = judged_turn(campaign, owner)  # newer and not started: still served first
    assert nxt(rejudge, w[2]) == fresh
    assert nxt(rejudge, w[3]) == fresh
    assert nxt(rejudge, w[4]) == contested  # the fresh one is covered (reserved twice)


def test_judgments_that_agree_stop_at_the_overlap(campaign, owner, w):
    rejudge = configure(factories.rejudge_campaign(campaign), overlap=2, overlap_cap=4)
    item = judged_turn(campaign, owner)
    kind = min(item.candidates.all(), key=lambda c: c.slot)
    for i in range(2):
        assert nxt(rejudge, w[i]) == item
        choice = choice_for(item, w[i], kind, 4 - 2 * i)  # much better, slightly better
        items.rejudge_submit(campaign=rejudge, item=item, worker=w[i], choice=choice)
    assert queue_selectors.needed(rejudge, item.pk) == 2
    assert nxt(rejudge, w[2]) is None


def test_rankings_disagree_when_their_top_picks_differ(ranking, w):
    configure(ranking, overlap=2, overlap_cap=3)
    [item] = ranking_items(ranking, 1)
    for i in range(2):
        assert nxt(ranking, w[i]) == item
        rank(ranking, item, w[i])  # each puts their own A on top: two shuffles of 3
    tops = {j.entries.get(rank=0).candidate_id for j in Judgment.objects.all()}
    assert queue_selectors.needed(ranking, item.pk) == (3 if len(tops) > 1 else 2)


def test_strengths_far_apart_in_one_direction_disagree_at_the_campaigns_spread(campaign, owner, w):
    rejudge = factories.rejudge_campaign(campaign)
    configure(rejudge, overlap=2, overlap_cap=3, disagreement_spread=3)
    item = judged_turn(campaign, owner)
    kind = min(item.candidates.all(), key=lambda c: c.slot)
    for i, strength in enumerate((4, 2)):  # 2 apart: agree
        assert nxt(rejudge, w[i]) == item
        choice = choice_for(item, w[i], kind, strength)
        items.rejudge_submit(campaign=rejudge, item=item, worker=w[i], choice=choice)
    assert queue_selectors.needed(rejudge, item.pk) == 2
    configure(rejudge, disagreement_spread=2)  # now they lie at the spread
    assert queue_selectors.needed(rejudge, item.pk) == 3
    assert nxt(rejudge, w[2]) == item


# --- Gold checks ------------------------------------------------------------------------


def test_gold_checks_come_at_the_campaigns_rate_and_are_judged_like_items(ranking, w):
    # This worker always ranks as shown: the quality rules must not pause them meanwhile.
    configure(ranking, gold_rate=0.25, set_size=20, min_gold_accuracy=0, max_first_position_rate=1)
    ranking_items(ranking, 24)
    golds = set(gold_checks(ranking, 8))
    served = []
    while (item := nxt(ranking, w[0])) is not None:
        served.append(item)
        rank(ranking, item, w[0])
    assert len(served) == 20  # the set, then nothing: it is complete
    assert sum(item in golds for item in served) == 5  # 20 x 0.25, wherever the phase
    assert Assignment.objects.filter(worker=w[0], is_gold=True).count() == 5
    gold_judgments = Judgment.objects.filter(item__in=golds)
    assert {j.task_type for j in gold_judgments} == {"ranking"}
    assert counted_judgments(Judgment.objects.all()).count() == 15  # checks are not data
    assert queue_selectors.gold_phase(ranking, w[0]) != queue_selectors.gold_phase(ranking, w[1])


def test_gold_checks_hold_no_slot_and_are_only_mixed_into_real_work(ranking, w, monkeypatch):
    monkeypatch.setattr(queue_selectors, "gold_due", lambda *args: True)  # every task
    [gold] = gold_checks(ranking, 1)
    assert nxt(ranking, w[0]) is None  # nothing real to mix it into
    ranking_items(ranking, 1)
    assert [nxt(ranking, w[i]) for i in range(3)] == [gold, gold, gold]


def test_a_chat_campaigns_gold_check_is_a_pair_on_the_item_page(client, campaign, w):
    configure(campaign, gold_rate=0.5)
    [gold] = gold_checks(campaign, 1)
    client.force_login(w[0])
    kinds = []
    for _ in range(2):  # 2 tasks at rate 0.5: one conversation, one check
        response = client.get(reverse("labeling:task_next", args=[campaign.slug]))
        if response.url == reverse("labeling:item_next", args=[campaign.slug]):
            page = client.get(response.url).content.decode()
            assert "Which response is better?" in page and 'value="B4"' in page
            assert "Task 1 of 10" in page or "Task 2 of 10" in page
            shown = ",".join(str(c.pk) for c in item_selectors.item_shown(gold, w[0]))
            url = reverse("labeling:rejudge_submit", args=[campaign.slug, gold.pk])
            assert client.post(url, {"choice": "A3", "shown": shown}).status_code == 302
            kinds.append("gold")
        else:
            conversation = Conversation.objects.get(worker=w[0], status="open")
            assert response.url == reverse("labeling:conversation", args=[conversation.pk])
            finish(conversation, w[0])
            kinds.append("chat")
    assert sorted(kinds) == ["chat", "gold"]
    judgment = Judgment.objects.get(item=gold)
    assert (judgment.task_type, judgment.question, judgment.campaign) == (
        "chat",
        "better",
        campaign,
    )


# --- Chat and red team ----------------------------------------------------------------


def finish(conversation, worker) -> None:
    turn = chat.turn_create(conversation=conversation, worker=worker, text="Hi")
    finish_candidates(turn)
    chat.comparison_submit(turn=turn, worker=worker, choice="A2")
    chat.conversation_finish(conversation=conversation, worker=worker, rating=4)


def test_a_chat_task_is_a_conversation_resumed_until_finished(campaign, owner):
    first = queue.task_next(campaign=campaign, worker=owner)
    assert first.conversation.worker == owner and first.item is None
    assert queue.task_next(campaign=campaign, worker=owner) == first
    finish(first.conversation, owner)
    first.refresh_from_db()
    assert first.status == Status.DONE
    assert queue_selectors.set_progress(campaign, owner).done == 1
    second = queue.task_next(campaign=campaign, worker=owner)
    assert second.conversation != first.conversation and second.set_number == 1


def test_a_chat_target_counts_conversations_started(campaign, owner, w):
    configure(campaign, target=1)
    assert queue.task_next(campaign=campaign, worker=owner).conversation is not None
    assert queue.task_next(campaign=campaign, worker=w[0]) is None
    assert queue.task_next(campaign=campaign, worker=owner) is not None  # theirs resumes


# --- Sets, skips, reports, targets ------------------------------------------------------


def test_sets_count_tasks_done_and_end_at_the_set_done_page(client, ranking, w):
    configure(ranking, set_size=2)
    ranking_items(ranking, 5)
    client.force_login(w[0])
    for position in (1, 2):
        page = client.get(reverse("labeling:task_next", args=[ranking.slug]), follow=True)
        assert f"Task {position} of 2" in page.content.decode()
        rank(ranking, nxt(ranking, w[0]), w[0])
    done = client.get(reverse("labeling:task_next", args=[ranking.slug]))
    assert done.url == reverse("labeling:set_done", args=[ranking.slug])
    assert queue_selectors.set_progress(ranking, w[0]) == queue_selectors.SetProgress(
        number=1, done=2, size=2, complete=True
    )
    assert nxt(ranking, w[0]) is None

    started = client.post(reverse("labeling:set_start", args=[ranking.slug]))
    assert started.url == reverse("labeling:task_next", args=[ranking.slug])
    page = client.get(started.url, follow=True).content.decode()
    assert "Task 1 of 2 · set 2" in page
    with pytest.raises(ValidationError, match="Finish this set first"):
        queue.set_start(campaign=ranking, worker=w[0])


def test_a_study_participant_does_one_set(ranking, w):
    configure(ranking, set_size=1)
    ranking_items(ranking, 2)
    PlatformWorker.objects.create(user=w[0], platform="prolific", participant_id="P1")
    rank(ranking, nxt(ranking, w[0]), w[0])
    with pytest.raises(ValidationError, match="one set"):
        queue.set_start(campaign=ranking, worker=w[0])


def test_a_skip_keeps_the_typed_work_and_does_not_count(client, ranking, w):
    first, second = ranking_items(ranking, 2)
    client.force_login(w[0])
    page = client.get(reverse("labeling:task_next", args=[ranking.slug]), follow=True)
    body = page.content.decode()
    skip = reverse("labeling:task_skip", args=[ranking.slug])
    assert f'formaction="{skip}"' in body and f'hx-post="{skip}"' in body
    assert body.index("Submit ranking") < body.index("Skip this item")  # Enter never skips
    assert PageMarkup(body).problems == []

    typed = {"comment": "Half-way thoughts", "place_0": "3", "csrfmiddlewaretoken": "x"}
    response = client.post(skip, {**typed, "shown": "1,2,3"})
    assert response.url == reverse("labeling:task_next", args=[ranking.slug])
    skipped = Assignment.objects.get(item=first)
    assert skipped.status == Status.SKIPPED
    assert skipped.draft == {"comment": "Half-way thoughts", "place_0": "3", "shown": "1,2,3"}
    assert queue_selectors.set_progress(ranking, w[0]).done == 0
    assert "Task 1 of 10" in client.get(response.url, follow=True).content.decode()
    assert nxt(ranking, w[0]) == second
    with_htmx = client.post(skip, typed, HTTP_HX_REQUEST="true")
    assert with_htmx["HX-Redirect"] == reverse("labeling:task_next", args=[ranking.slug])
    with pytest.raises(ValidationError, match="no item to skip"):
        queue.task_skip(campaign=ranking, worker=w[0], draft={})


def test_a_report_counts_as_a_task_done_and_frees_the_slot(ranking, w):
    [item] = ranking_items(ranking, 1)
    assert nxt(ranking, w[0]) == item
    reported = queue.assignment_report(
        campaign=ranking, worker=w[0], item=item, draft={"comment": "Can't tell"}
    )
    assert reported.status == Status.REPORTED and reported.draft == {"comment": "Can't tell"}
    assert queue_selectors.set_progress(ranking, w[0]).done == 1
    assert not Judgment.objects.exists()
    assert nxt(ranking, w[1]) == item
    assert nxt(ranking, w[0]) is None


def test_withdrawing_releases_the_workers_reservations(ranking, w):
    [item] = ranking_items(ranking, 1)
    assert nxt(ranking, w[0]) == item
    assert queue.assignments_release(campaign=ranking, worker=w[0]) == 1
    assert Assignment.objects.get().status == Status.EXPIRED
    assert nxt(ranking, w[1]) == item


def test_nothing_is_served_once_the_target_is_reached(client, ranking, w):
    configure(ranking, target=2)
    first, _, _ = ranking_items(ranking, 3)
    assert nxt(ranking, w[0]) == first
    rank(ranking, first, w[0])
    assert nxt(ranking, w[1]) is not None  # 1 judged + this one held = the target
    assert nxt(ranking, w[2]) is None
    client.force_login(w[2])
    page = client.get(reverse("labeling:task_next", args=[ranking.slug]), follow=True)
    assert "collected all the answers it needs" in page.content.decode()


# --- Pages ---------------------------------------------------------------------------------


def test_the_home_page_offers_next_item_then_continue(client, ranking, campaign, w):
    ranking_items(ranking, 1)
    client.force_login(w[0])
    home = client.get(reverse("labeling:home")).content.decode()
    assert f'href="{reverse("labeling:task_next", args=[ranking.slug])}"' in home
    assert "Next item" in home and "Start a conversation" in home
    nxt(ranking, w[0])
    home = client.get(reverse("labeling:home")).content.decode()
    assert "Continue" in home and "Task 1 of 10" in home
    assert PageMarkup(home).problems == []


def test_starting_a_conversation_goes_through_the_queue(client, campaign, w):
    client.force_login(w[0])
    start = reverse("labeling:conversation_start", args=[campaign.slug])
    first = client.post(start)
    again = client.post(start)  # the open conversation, not a second one
    assert first.url == again.url
    assert Conversation.objects.filter(worker=w[0]).count() == 1
    assert Assignment.objects.get(worker=w[0]).conversation is not None


def test_every_task_page_asks_the_onboarding_gate_first(client, ranking, campaign, w):
    [item] = ranking_items(ranking, 1)
    for c in (ranking, campaign):
        Guidelines.objects.create(campaign=c, version=1, text="Judge well.", consent="I agree.")
    client.force_login(w[0])
    urls = [
        ("get", reverse("labeling:task_next", args=[ranking.slug])),
        ("get", reverse("labeling:item_next", args=[ranking.slug])),
        ("post", reverse("labeling:task_skip", args=[ranking.slug])),
        ("post", reverse("labeling:set_start", args=[ranking.slug])),
        ("post", reverse("labeling:ranking_submit", args=[ranking.slug, item.pk])),
        ("post", reverse("labeling:conversation_start", args=[campaign.slug])),
    ]
    for method, url in urls:
        response = getattr(client, method)(url)
        assert response.status_code == 302 and response.url.endswith("/consent/"), url
    assert not Assignment.objects.exists()
    assert not Conversation.objects.filter(worker=w[0]).exists()


def test_the_page_with_nothing_to_do_polls_while_items_are_generating(client, ranking, w):
    items.ranking_items_create(campaign=ranking, contexts=[("test", [Message(HUMAN, "Q?")])])
    client.force_login(w[0])
    page = client.get(reverse("labeling:task_next", args=[ranking.slug]), follow=True)
    body = page.content.decode()
    assert "No item is ready for you right now" in body and 'hx-trigger="every 2s"' in body


def test_a_submit_with_htmx_that_completes_the_set_sends_the_browser_to_set_done(
    client, ranking, w
):
    configure(ranking, set_size=1)
    [item, _] = ranking_items(ranking, 2)
    client.force_login(w[0])
    client.get(reverse("labeling:task_next", args=[ranking.slug]))
    shown = ",".join(str(c.pk) for c in item_selectors.item_shown(item, w[0]))
    places = {"place_0": "1", "place_1": "2", "place_2": "3"}
    response = client.post(
        reverse("labeling:ranking_submit", args=[ranking.slug, item.pk]),
        {"shown": shown, **places},
        HTTP_HX_REQUEST="true",
    )
    assert response["HX-Redirect"] == reverse("labeling:set_done", args=[ranking.slug])


def test_a_closed_campaign_serves_no_task_page(client, w):
    closed = Campaign.objects.create(
        name="Closed", slug="closed", instructions="-", is_active=False
    )
    client.force_login(w[0])
    assert client.get(reverse("labeling:task_next", args=[closed.slug])).status_code == 404

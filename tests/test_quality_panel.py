"""The panel's Quality and Leaderboard pages: the figures they print are the selectors',
built here from answers known by hand; staff only; pausing and lifting from the page.

Actors: ``owner``, ``other_worker`` and ``third`` (crowdworkers), ``researcher`` (staff),
anonymous. Items are pairs built by hand: slot 0 a short text, slot 1 a long one."""

from __future__ import annotations

import math
import re

import pytest
from django.urls import reverse

from labeling import agreement, quality_panel_selectors, ratings, scale
from labeling.models import (
    CandidateResponse,
    Conversation,
    GoldItem,
    Judgment,
    ModelVersion,
    Pause,
    Turn,
)
from labeling.services.judgments import judgment_record, judgment_supersede
from labeling.templatetags.quality_figures import decimal, decimal_interval, pct, pct_interval
from tests import factories
from tests.panel_pages import figures, worker_row
from tests.test_views import PageMarkup

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}
SHORT, LONG = "Short.", "A much longer response, with more words in it."


@pytest.fixture
def third(django_user_model):
    return django_user_model.objects.create_user("third", password="third-pass-123")


@pytest.fixture
def pairs(tiny_assistant):
    return factories.ranking_campaign(tiny_assistant, k=2, slug="pairs")


def make_pair(campaign, models=(None, None)) -> Turn:
    """An item of ``campaign``: slot 0 short, slot 1 long, from ``models`` by slot."""
    conversation = Conversation.objects.create(campaign=campaign, source="test")
    item = Turn.objects.create(
        conversation=conversation, index=0, human_text="Which is right?", display_order=[0, 1]
    )
    for slot, (text, model) in enumerate(zip((SHORT, LONG), models, strict=True)):
        CandidateResponse.objects.create(
            turn=item, slot=slot, text=text, model_version=model, status="done"
        )
    return item


def answer(item, worker, choice: str, *, shown=(0, 1), question="better") -> Judgment:
    """``worker`` saw the slots in ``shown`` order and pressed ``choice`` ("A3", "B1"…)."""
    by_slot = {c.slot: c for c in item.candidates.all()}
    position, strength = scale.parse_choice(choice)
    return judgment_record(
        item=item,
        campaign=item.conversation.campaign,
        worker=worker,
        task_type=Judgment.TaskType.RANKING,
        question=question,
        shown=[by_slot[s] for s in shown],
        order=[[position], [1 - position]],
        strength=strength,
        time_spent_ms=20_000,
    )


@pytest.fixture
def judged(pairs, owner, other_worker, third):
    """Four items, answers by candidate on the 8-point scale (1 = slot 0 much better):
    item 0: 2 (A3), 2 (B3 seen mirrored), 3 (A2); item 1: 1 (A4), 4 (A1);
    item 2: 6 (B2), 2 (A3); item 3: 2 (A3) alone.
    Raw agreement: item 0 3 of 3 pairs, item 1 1 of 1, item 2 0 of 1: 4 of 5 = 80%.
    First shown on top: 6 of 8 (all but other_worker's B3 and owner's B2).
    Longer (slot 1) preferred: 1 of 8 (owner's B2 on item 2)."""
    items = [make_pair(pairs) for _ in range(4)]
    answer(items[0], owner, "A3")
    answer(items[0], other_worker, "B3", shown=(1, 0))
    answer(items[0], third, "A2")
    answer(items[1], owner, "A4")
    answer(items[1], other_worker, "A1")
    answer(items[2], owner, "B2")
    answer(items[2], other_worker, "A3")
    answer(items[3], owner, "A3")
    return items


# --- Who may see the pages.

PAGES = [
    ("panel:quality", {"slug": "pairs"}),
    ("panel:leaderboard", {}),
    ("panel:leaderboard_plot", {}),
]


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_an_anonymous_visitor_is_sent_to_log_in(client, pairs, name, kwargs):
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_a_worker_who_is_not_staff_is_refused(client, pairs, owner, name, kwargs):
    client.force_login(owner)
    assert client.get(reverse(name, kwargs=kwargs)).status_code == 403


def test_a_worker_cannot_pause_anyone_from_the_page(client, pairs, owner, other_worker):
    client.force_login(owner)
    url = reverse("panel:worker_pause", args=[pairs.slug])
    response = client.post(url, {"worker": other_worker.pk, "reason": "Spite"})
    assert response.status_code == 403
    assert not Pause.objects.exists()


# --- The Quality page.


def test_the_agreement_figures_are_the_hand_counted_ones(pairs, judged):
    report = quality_panel_selectors.campaign_agreement(pairs, resamples=200)
    assert report.raw == pytest.approx(0.8)
    expected_alpha = agreement.alpha_ordinal(agreement.Table.of([[2, 2, 3], [1, 4], [6, 2], [2]]))
    assert report.alpha == pytest.approx(expected_alpha)
    assert (report.overlap_items, report.overlap_judgments, report.judgments) == (3, 7, 8)
    low, high = report.raw_interval
    assert low <= 0.8 <= high
    assert "agreement is above" in report.reading  # 80% > 77%


def test_the_quality_page_prints_the_selectors_figures(client, researcher, pairs, judged, owner):
    client.force_login(researcher)
    response = client.get(reverse("panel:quality", args=[pairs.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    shown = figures(html)
    report = quality_panel_selectors.campaign_agreement(pairs)
    assert shown["raw"] == pct(report.raw) == "80%"
    assert shown["raw_interval"] == pct_interval(report.raw_interval)
    assert shown["alpha"] == decimal(report.alpha)
    assert shown["alpha_interval"] == decimal_interval(report.alpha_interval)
    assert (shown["overlap_items"], shown["overlap_judgments"], shown["judgments"]) == (
        "3",
        "7",
        "8",
    )
    assert shown["reading"] == report.reading
    bias = quality_panel_selectors.campaign_bias(pairs)
    assert (bias.first_position.hits, bias.first_position.n) == (6, 8)
    assert (bias.longer.hits, bias.longer.n) == (1, 8)
    assert shown["first_position"] == pct(6 / 8) and shown["longer"] == pct(1 / 8)
    assert shown["first_position_interval"] == pct_interval(bias.first_position.interval)
    assert bias.longer.against_chance == "below"
    [row] = quality_panel_selectors.worker_rows(pairs, worker=owner)
    mine = figures(worker_row(html, owner))
    assert mine["judgments"] == "4"
    assert mine["agreement"] == f"{pct(row.metrics.agreement)} {row.metrics.overlap_items} items"
    assert PageMarkup(html).problems == []


def test_only_current_counted_judgments_make_the_campaigns_figures(
    pairs, judged, owner, other_worker, third, researcher, django_user_model
):
    # A correction replaces what it corrects: owner's B2 on item 2 becomes A2 (slot 0).
    wrong = Judgment.objects.get(item=judged[2], worker=owner)
    judgment_supersede(judgment=wrong, by=researcher, reason="Typo", order=[[0], [1]], strength=2)
    # Gold checks and a paused worker's answers never count.
    gold = make_pair(pairs)
    GoldItem.objects.create(item=gold, campaign=pairs, role=GoldItem.Role.CHECK, answer=[[1], [0]])
    answer(gold, owner, "A3")
    answer(gold, other_worker, "B3")
    paused = django_user_model.objects.create_user("paused")
    answer(judged[1], paused, "B4")
    Pause.objects.create(campaign=pairs, worker=paused, rule=Pause.Rule.MANUAL, reason="Test")
    report = quality_panel_selectors.campaign_agreement(pairs, resamples=10)
    assert report.raw == 1.0 and report.judgments == 8


def test_mirror_order_answers_with_mirror_buttons_agree_on_the_page(
    client, researcher, pairs, owner, other_worker
):
    item = make_pair(pairs)
    answer(item, owner, "A3")  # slot 0 shown as A, "A is better"
    answer(item, other_worker, "B3", shown=(1, 0))  # slot 0 shown as B, "B is better"
    client.force_login(researcher)
    html = client.get(reverse("panel:quality", args=[pairs.slug])).content.decode()
    assert figures(html)["raw"] == "100%"


def test_the_rankings_agreement_is_on_direction_per_candidate_pair(
    tiny_assistant, owner, other_worker
):
    ranks = factories.ranking_campaign(tiny_assistant, k=3)
    conversation = Conversation.objects.create(campaign=ranks, source="test")
    item = Turn.objects.create(conversation=conversation, index=0, human_text="?")
    shown = [
        CandidateResponse.objects.create(turn=item, slot=s, text=f"reply {s}", status="done")
        for s in range(3)
    ]
    for worker, order in ((owner, [[0], [1], [2]]), (other_worker, [[1], [0], [2]])):
        judgment_record(
            item=item,
            campaign=ranks,
            worker=worker,
            task_type=Judgment.TaskType.RANKING,
            question="better",
            shown=shown,
            order=order,
        )
    report = quality_panel_selectors.campaign_agreement(ranks, resamples=10)
    # (0,1) disagree, (0,2) and (1,2) agree: 2 of 3.
    assert report.raw == pytest.approx(2 / 3)
    assert report.scale == "direction for each pair of candidates"


def test_pausing_from_the_page_writes_a_pause_with_the_reason_and_lifting_ends_it(
    client, researcher, pairs, judged, owner
):
    client.force_login(researcher)
    page = reverse("panel:quality", args=[pairs.slug])
    response = client.post(
        reverse("panel:worker_pause", args=[pairs.slug]),
        {"worker": owner.pk, "reason": "Answers in two seconds"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == page
    pause = Pause.objects.get(campaign=pairs, worker=owner)
    assert (pause.reason, pause.rule, pause.created_by) == (
        "Answers in two seconds",
        Pause.Rule.MANUAL,
        researcher,
    )
    html = response.content.decode()
    assert "is paused" in html and "Answers in two seconds" in worker_row(html, owner)

    lift = reverse("panel:worker_unpause", args=[pairs.slug, pause.pk])
    client.post(lift, {"reason": "Talked to them"})
    pause.refresh_from_db()
    assert pause.lifted_at is not None
    assert (pause.lift_reason, pause.lifted_by) == ("Talked to them", researcher)


def test_a_pause_without_a_reason_is_refused_and_says_why(client, researcher, pairs, judged, owner):
    client.force_login(researcher)
    url = reverse("panel:worker_pause", args=[pairs.slug])
    response = client.post(url, {"worker": owner.pk, "reason": " "}, follow=True)
    assert not Pause.objects.exists()
    assert "Say why" in response.content.decode()


def test_with_htmx_the_workers_row_is_swapped(client, researcher, pairs, judged, owner):
    client.force_login(researcher)
    url = reverse("panel:worker_pause", args=[pairs.slug])
    response = client.post(url, {"worker": owner.pk, "reason": "Checking"}, **HX)
    html = response.content.decode()
    assert response.status_code == 200
    assert html.strip().startswith(f'<tr id="worker-{owner.pk}">')
    assert "Paused" in html and "Checking" in html and "<html" not in html
    pause = Pause.objects.get(worker=owner)
    lift = reverse("panel:worker_unpause", args=[pairs.slug, pause.pk])
    again = client.post(lift, {"reason": ""}, **HX).content.decode()
    assert "Say why" in again
    pause.refresh_from_db()
    assert pause.lifted_at is None


def test_the_flags_follow_the_campaigns_rules(pairs, owner, other_worker):
    # owner always picks the first shown, ten times; other_worker always disagrees.
    pairs.max_first_position_rate = 0.9
    pairs.save()
    for _ in range(10):
        item = make_pair(pairs)
        answer(item, owner, "A3")
        answer(item, other_worker, "A3", shown=(1, 0))
    flags = {r.metrics.worker: r.flags for r in quality_panel_selectors.worker_rows(pairs)}
    assert flags[owner] == ["first shown 100% > 90%", "agrees 0% < 50%"]


# --- The leaderboard.


@pytest.fixture
def two_models(db):
    make = ModelVersion.objects.create
    return (
        make(name="alpha", kind=ModelVersion.Kind.ASSISTANT, spec="a"),
        make(name="beta", kind=ModelVersion.Kind.ASSISTANT, spec="b"),
    )


def test_the_leaderboard_fits_the_battles_between_two_models(
    client, researcher, pairs, two_models, owner, other_worker, third
):
    alpha, beta = two_models
    # alpha (slot 0) preferred 3 times, beta once, once "about the same" (a tie); one item
    # of alpha against itself is no battle.
    items = [make_pair(pairs, models=(alpha, beta)) for _ in range(3)]
    answer(items[0], owner, "A3")
    answer(items[0], other_worker, "B2", shown=(1, 0))
    answer(items[1], owner, "A4")
    answer(items[1], third, "B3")
    answer(items[2], owner, "B1")
    answer(make_pair(pairs, models=(alpha, alpha)), owner, "A3")
    board = quality_panel_selectors.leaderboard(pairs)
    assert (board.battles, board.judgments) == (5, 5)
    first, second = board.rows
    assert (first.model, first.battles, first.wins, first.ties) == (alpha, 5, 3, 1)
    assert (second.model, second.wins, second.ties) == (beta, 1, 1)
    # Two models: the difference is log(wins / losses), ties half each.
    assert first.strength - second.strength == pytest.approx(math.log(3.5 / 1.5), abs=1e-4)
    assert first.controlled is not None and math.isfinite(board.length_coefficient)

    client.force_login(researcher)
    response = client.get(reverse("panel:leaderboard"), {"campaign": pairs.slug})
    html = response.content.decode()
    row = re.search(
        r"<tr class=\"model\">\s*<th scope=\"row\">alpha</th>.*?</tr>", html, flags=re.S
    ).group(0)
    assert figures(row)["strength"] == str(round(ratings.elo(first.strength)))
    assert figures(row)["wins"] == "3"
    assert figures(html)["battles"] == "5"
    assert 'src="/panel/leaderboard/plot.svg?campaign=pairs"' in html
    assert PageMarkup(html).problems == []
    plot = client.get(reverse("panel:leaderboard_plot"), {"campaign": pairs.slug})
    assert plot["Content-Type"] == "image/svg+xml" and b"<svg" in plot.content


def test_an_empty_leaderboard_says_so_and_still_draws_an_image(client, researcher, pairs):
    client.force_login(researcher)
    html = client.get(reverse("panel:leaderboard")).content.decode()
    assert "No battles yet" in html
    plot = client.get(reverse("panel:leaderboard_plot"))
    assert plot.status_code == 200 and b"<svg" in plot.content

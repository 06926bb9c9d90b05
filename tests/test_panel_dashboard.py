"""The panel's campaign dashboard and item viewer: the page prints the selector's figures,
built here from known data; each judgment shows the order its worker saw; staff only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling import dashboard_selectors, panel_item_selectors, panel_plots
from labeling.models import (
    CandidateResponse,
    Conversation,
    GoldItem,
    JudgedCandidate,
    Judgment,
    Pause,
    Turn,
)
from labeling.services.judgments import candidate_provenance, judgment_supersede
from tests.panel_pages import figures

pytestmark = pytest.mark.django_db
Done = CandidateResponse.Status.DONE


def make_item(campaign, worker, *, sent_ago_s=600, ready_after_s=None, texts=("one", "two")):
    """A turn of a new conversation, Send ``sent_ago_s`` ago, its two candidates finished
    ``ready_after_s`` later (None: one still pending, one running)."""
    conversation = Conversation.objects.create(campaign=campaign, worker=worker)
    turn = Turn.objects.create(conversation=conversation, index=0, human_text="Hi there")
    sent = timezone.now() - timedelta(seconds=sent_ago_s)
    Turn.objects.filter(pk=turn.pk).update(created_at=sent)
    statuses = (Done, Done) if ready_after_s is not None else ("pending", "running")
    for slot, (text, status) in enumerate(zip(texts, statuses, strict=True)):
        CandidateResponse.objects.create(
            turn=turn,
            slot=slot,
            model_version=campaign.model_a,
            sampling=campaign.sampling(),
            seed=100 + slot,
            status=status,
            text=text if status == Done else "",
            finished_at=sent + timedelta(seconds=ready_after_s) if status == Done else None,
        )
    turn.refresh_from_db()
    return turn


def judge(item, worker, *, shown_slots=(0, 1), top=0, ago_s=60, ms=1000, campaign=None):
    """A worker's answer at a known time: ``shown_slots`` in display order, position ``top``
    picked (strength 3)."""
    by_slot = {c.slot: c for c in item.candidates.all()}
    shown = [by_slot[s] for s in shown_slots]
    judgment = Judgment.objects.create(
        item=item,
        campaign=campaign or item.conversation.campaign,
        worker=worker,
        task_type=Judgment.TaskType.CHAT,
        question=Judgment.Question.BETTER,
        strength=3,
        time_spent_ms=ms,
        guideline_version="v2",
        ui_version="2",
        provenance={"candidates": [candidate_provenance(c) for c in shown]},
        recorded_by=worker,
        created_at=timezone.now() - timedelta(seconds=ago_s),
    )
    for position, candidate in enumerate(shown):
        rank = 0 if position == top else 1
        JudgedCandidate.objects.create(
            judgment=judgment, candidate=candidate, position=position, rank=rank
        )
    return judgment


@pytest.fixture
def third(django_user_model):
    return django_user_model.objects.create_user("third", password="third-pass-123")


@pytest.fixture
def busy_campaign(campaign, owner, other_worker, third):
    """Three ready turns (Send → ready 2, 4 and 10 s), one still generating; five answers:
    three in the last hour, one five hours ago, one three days ago by a paused worker."""
    campaign.target = 4
    campaign.save()
    first = make_item(campaign, owner, sent_ago_s=900, ready_after_s=2)
    second = make_item(campaign, owner, sent_ago_s=800, ready_after_s=4)
    third_item = make_item(campaign, owner, sent_ago_s=700, ready_after_s=10)
    make_item(campaign, owner, sent_ago_s=30)
    judge(first, owner, ago_s=600, ms=1000)
    judge(second, owner, ago_s=1200, ms=2000)
    judge(first, other_worker, ago_s=1800, ms=3000)
    judge(second, other_worker, ago_s=5 * 3600, ms=4000)
    judge(third_item, third, ago_s=3 * 86400, ms=5000)
    Pause.objects.create(campaign=campaign, worker=third, rule="manual", reason="Too fast.")
    return campaign


def test_the_dashboard_counts_answers_workers_the_queue_and_time_to_ready(busy_campaign):
    d = dashboard_selectors.campaign_dashboard(busy_campaign)
    assert (d.unit, d.collected, d.target, d.percent) == ("conversations", 4, 4, 100)
    assert d.judgments == 4  # the paused worker's answer is not data
    assert (d.answers_last_hour, d.answers_last_day) == (3, 4)
    assert (d.workers_last_hour, d.workers_last_day) == (2, 2)
    assert d.paused_workers == 1
    assert d.median_seconds == 3.0
    assert (d.pending, d.running) == (1, 1)
    assert d.ready_turns == 3
    assert d.ready_median_seconds == pytest.approx(4.0)
    assert d.ready_p95_seconds == pytest.approx(9.4)  # numpy's linear percentile of 2, 4, 10


def test_the_hourly_plot_holds_the_three_answers_of_the_last_hour(busy_campaign):
    activity = dashboard_selectors.activity(busy_campaign)
    assert activity.hourly[-1] == 3 and sum(activity.hourly) == 4
    assert sum(activity.daily) == 5 and activity.days[-1] == timezone.localdate()
    hours, days = panel_plots.activity_figure(activity).axes
    assert [bar.get_height() for bar in hours.patches] == list(activity.hourly)
    assert [bar.get_height() for bar in days.patches] == list(activity.daily)


def test_the_dashboard_page_prints_the_selectors_figures(client, researcher, busy_campaign):
    client.force_login(researcher)
    response = client.get(reverse("panel:dashboard", args=[busy_campaign.slug]))
    assert response.status_code == 200
    d = response.context["d"]
    shown = figures(response.content.decode())
    ints = ["collected", "target", "percent", "judgments", "answers_last_hour"]
    ints += ["answers_last_day", "workers_last_hour", "workers_last_day", "paused_workers"]
    ints += ["pending", "running", "ready_turns"]
    assert {name: shown[name] for name in ints} == {name: str(getattr(d, name)) for name in ints}
    assert shown["answers_last_hour"] == "3"
    assert shown["median_seconds"] == f"{d.median_seconds:.1f} s" == "3.0 s"
    assert shown["ready_median_seconds"] == "4.0 s"
    assert shown["ready_p95_seconds"] == "9.4 s"
    assert reverse("panel:activity", args=[busy_campaign.slug]) in response.content.decode()
    assert "<title>Helpful chat · Dashboard · HHH Lab</title>" in response.content.decode()


def test_the_recent_items_link_to_the_item_viewer(client, researcher, busy_campaign):
    client.force_login(researcher)
    html = client.get(reverse("panel:dashboard", args=[busy_campaign.slug])).content.decode()
    d = dashboard_selectors.campaign_dashboard(busy_campaign)
    assert len(d.recent_items) == 4
    # Latest activity first: the turn sent 30 s ago, then the one judged ten minutes ago.
    assert [row.judgments for row in d.recent_items[:2]] == [0, 2]
    for row in d.recent_items:
        assert reverse("panel:item", args=[row.item.pk]) in html


def test_a_campaign_without_data_shows_dashes_and_an_empty_plot(client, researcher, campaign):
    client.force_login(researcher)
    response = client.get(reverse("panel:dashboard", args=[campaign.slug]))
    shown = figures(response.content.decode())
    assert shown["median_seconds"] == shown["ready_p95_seconds"] == "–"
    assert shown["answers_last_hour"] == "0"
    for size in ["", "?size=narrow"]:
        svg = client.get(reverse("panel:activity", args=[campaign.slug]) + size)
        assert svg["Content-Type"] == "image/svg+xml" and b"<svg" in svg.content


def test_the_activity_plot_is_an_svg_image_with_data_wide_and_narrow(
    client, researcher, busy_campaign
):
    client.force_login(researcher)
    url = reverse("panel:activity", args=[busy_campaign.slug])
    wide, narrow = client.get(url), client.get(url + "?size=narrow")
    assert wide["Content-Type"] == narrow["Content-Type"] == "image/svg+xml"
    assert wide.content != narrow.content  # the phone's is drawn narrower, not shrunk


def test_the_campaign_list_links_each_dashboard(client, researcher, campaign):
    client.force_login(researcher)
    html = client.get(reverse("panel:index")).content.decode()
    assert reverse("panel:dashboard", args=[campaign.slug]) in html


def test_an_unknown_campaign_or_item_is_404(client, researcher):
    client.force_login(researcher)
    assert client.get(reverse("panel:dashboard", args=["nope"])).status_code == 404
    assert client.get(reverse("panel:activity", args=["nope"])).status_code == 404
    assert client.get(reverse("panel:item", args=[999])).status_code == 404


# --- The item viewer.


def seen_slots(html: str, judgment) -> list[str]:
    """The slots in one judgment's table, top to bottom: the order that worker saw."""
    article = html.split(f'id="judgment-{judgment.pk}"')[1].split("</article>")[0]
    return re.findall(r'<li class="seen-card" data-slot="(\d+)"', article)


def test_the_item_viewer_shows_the_order_each_worker_saw(
    client, researcher, campaign, owner, other_worker
):
    item = make_item(campaign, owner, ready_after_s=3, texts=("**bold** <script>x()</script>", "b"))
    first = judge(item, owner, shown_slots=(0, 1), top=0)
    second = judge(item, other_worker, shown_slots=(1, 0), top=1)
    client.force_login(researcher)
    html = client.get(reverse("panel:item", args=[item.pk])).content.decode()
    assert seen_slots(html, first) == ["0", "1"]
    assert seen_slots(html, second) == ["1", "0"]
    detail = panel_item_selectors.item_detail(item.pk)
    assert [[s.slot for s in row.seen] for row in detail.judgments] == [[0, 1], [1, 0]]
    # Both picked slot 0: A for the owner, B for the other worker.
    assert [row.answer for row in detail.judgments] == ["A is better (A3)", "B is better (B3)"]
    assert "owner" in html and "other" in html and "A is better (A3)" in html


def test_the_item_viewer_shows_context_provenance_and_sanitised_markdown(
    client, researcher, campaign, owner
):
    item = make_item(campaign, owner, ready_after_s=3, texts=("**bold** <script>x()</script>", "b"))
    judge(item, owner, ms=2500)
    client.force_login(researcher)
    html = client.get(reverse("panel:item", args=[item.pk])).content.decode()
    assert "Hi there" in html  # the turn's message
    assert "<strong>bold</strong>" in html and "<script>x()" not in html
    assert "tiny-random" in html and "temperature 0.8" in html and ">101<" in html  # seed
    assert "2.5 s" in html and "guidelines v2" in html and "UI 2" in html


def test_superseded_gold_and_paused_judgments_are_all_shown_and_marked(
    client, researcher, campaign, owner, other_worker
):
    item = make_item(campaign, None, ready_after_s=1)
    GoldItem.objects.create(
        item=item, campaign=campaign, role="check", answer=[[1], [0]], explanation="B is kind."
    )
    wrong = judge(item, owner, top=0)
    right = judge(item, other_worker, top=1)
    Pause.objects.create(campaign=campaign, worker=other_worker, rule="manual", reason="Check.")
    fixed = judgment_supersede(
        judgment=wrong, by=researcher, reason="Misclick", order=[[1], [0]], strength=2
    )
    detail = panel_item_selectors.item_detail(item.pk)
    marks = {row.judgment.pk: row.marks for row in detail.judgments}
    assert marks[wrong.pk] == (f"superseded by {fixed.pk}", "gold check")
    assert marks[right.pk] == ("gold check", "worker paused")
    assert marks[fixed.pk][0] == f"correction of {wrong.pk} by researcher: Misclick"
    assert [row.gold_right for row in detail.judgments] == [False, True, True]
    assert detail.gold_answer == "slot 1, then slot 0"
    client.force_login(researcher)
    html = client.get(reverse("panel:item", args=[item.pk])).content.decode()
    assert "slot 1, then slot 0" in html and "worker paused" in html
    assert f"superseded by {fixed.pk}" in html and "gold: wrong" in html


# --- Staff only.

URLS = [
    ("panel:dashboard", ["helpful-chat"]),
    ("panel:activity", ["helpful-chat"]),
    ("panel:item", [1]),
]


@pytest.mark.parametrize(("name", "args"), URLS)
def test_an_anonymous_visitor_is_sent_to_log_in(client, campaign, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize(("name", "args"), URLS)
def test_a_worker_who_is_not_staff_is_refused(client, campaign, owner, name, args):
    client.force_login(owner)
    assert client.get(reverse(name, args=args)).status_code == 403

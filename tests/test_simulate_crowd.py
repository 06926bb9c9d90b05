"""The crowd simulator against a running lab (uvicorn + a Celery worker with a tiny random
model): Prolific entry, consent, quiz, a queue with overlap and a disagreement cap, gold
checks mixed in, and K workers who fail them."""

import io
import json
import re
from collections import Counter

import pytest
from django.core.management import call_command
from django.urls import reverse

from labeling import dashboard_selectors, quality_panel_selectors
from labeling.crowd_selectors import counted_judgments
from labeling.models import Assignment, Campaign, Judgment, ModelVersion, Pause, Turn
from labeling.services.gold import gold_item_create
from labeling.services.items import ranking_items_create
from labeling.services.onboarding import guidelines_publish
from labeling.templatetags.quality_figures import decimal, pct, pct_interval
from models_backend.dialogue import HUMAN, Message
from tests.conftest import wait_for
from tests.factories import ranking_campaign
from tests.panel_pages import figures

ITEMS, OVERLAP, CAP, WORKERS, FAILING = 10, 3, 5, 8, 2


def crowd_campaign(assistant) -> Campaign:
    campaign = ranking_campaign(assistant, k=3, slug="crowd")
    # A second version of the assistant writes slot B: the leaderboard has two models.
    second = ModelVersion.objects.create(
        name="tiny-random-b", kind=ModelVersion.Kind.ASSISTANT, spec=assistant.spec
    )
    Campaign.objects.filter(pk=campaign.pk).update(
        model_b=second,
        overlap=OVERLAP,
        overlap_cap=CAP,
        set_size=12,
        gold_rate=0.5,
        quiz_size=2,
        quiz_pass_mark=1.0,
        min_gold_seen=2,
        min_gold_accuracy=0.6,
        min_judgment_seconds=0.2,
        max_first_position_rate=1.0,
        completion_code="SIMDONE",
        completion_url="https://app.prolific.com/submissions/complete?cc=SIMDONE",
    )
    campaign.refresh_from_db()
    guidelines_publish(
        campaign=campaign,
        text="Order the responses from the best to the worst.",
        examples={},
        consent="You will read short machine-written texts. You may withdraw at any time.",
        by=None,
    )
    for role, count in (("quiz", 2), ("check", 4)):
        for n in range(count):
            gold_item_create(
                campaign=campaign,
                role=role,
                context=[Message(HUMAN, f"What is {n} plus {n}?")],
                responses=[f"It is {2 * n}.", "Bananas.", "I refuse."],
                answer=[[0], [1, 2]],
                explanation=f"{n} plus {n} is {2 * n}; only the first response answers.",
                source="test",
            )
    return campaign


@pytest.mark.timeout(600)
def test_a_simulated_crowd_fills_every_item_to_its_overlap_and_only_gold_failers_are_paused(
    lab_server, celery_worker_process, tiny_assistant, client, researcher
):
    campaign = crowd_campaign(tiny_assistant)
    prompts = [("test", [Message(HUMAN, f"Tell me about the number {i}.")]) for i in range(ITEMS)]
    items = ranking_items_create(campaign=campaign, contexts=prompts)
    wait_for(
        lambda: (
            not Turn.objects.filter(
                pk__in=[i.pk for i in items], candidates__status__in=["pending", "running"]
            ).exists()
        ),
        timeout=180,
        proc=celery_worker_process,
        what="the items' responses",
    )

    out = io.StringIO()
    call_command(
        "simulate_crowd",
        url=lab_server.url,
        campaign="crowd",
        workers=WORKERS,
        tasks=50,
        gold_failing=FAILING,
        think=0.3,
        timeout=300,
        stdout=out,
    )
    summary = json.loads(out.getvalue().strip().splitlines()[-1])

    assert summary["workers"] == WORKERS
    assert summary["lost"] == 0 and summary["http_errors"] == 0, summary
    # Every item reached at least its overlap in counted judgments, none beyond the cap.
    counted = Counter(
        counted_judgments(Judgment.objects.filter(item__in=items)).values_list("item", flat=True)
    )
    assert all(OVERLAP <= counted[item.pk] <= CAP for item in items), (counted, summary)
    # No worker got an item twice.
    pairs = list(Assignment.objects.filter(campaign=campaign).values_list("worker", "item"))
    assert len(pairs) == len(set(pairs))
    # Exactly the failing workers are paused, for gold accuracy, with a reason.
    pauses = Pause.objects.filter(campaign=campaign, lifted_at__isnull=True)
    assert sorted(p.worker.platform_worker.participant_id for p in pauses) == summary["paused"]
    assert summary["paused_workers"] == FAILING
    assert all(name.endswith(("w000", "w001")) for name in summary["paused"])
    assert all(p.rule == Pause.Rule.GOLD_ACCURACY and p.reason and p.metrics for p in pauses)
    assert summary["gold_seen"] >= 2 * FAILING
    # The run ended because the queue was empty (or a set was done), not on a timeout.
    assert set(summary["ended"]) <= {"empty", "done", "paused"}, summary["ended"]

    # The researcher's panel prints the selectors' figures for what the crowd did.
    client.force_login(researcher)
    panel_shows_the_selectors_figures(client, campaign)


def panel_shows_the_selectors_figures(client, campaign: Campaign) -> None:
    page = client.get(reverse("panel:dashboard", args=[campaign.slug])).content.decode()
    d = dashboard_selectors.campaign_dashboard(campaign)
    shown = figures(page)
    names = ["collected", "judgments", "answers_last_day", "workers_last_day", "paused_workers"]
    assert {n: shown[n] for n in names} == {n: str(getattr(d, n)) for n in names}
    assert d.paused_workers == FAILING and d.judgments >= ITEMS * OVERLAP

    page = client.get(reverse("panel:quality", args=[campaign.slug])).content.decode()
    shown = figures(page)
    agreement = quality_panel_selectors.campaign_agreement(campaign)
    assert agreement.overlap_items == ITEMS
    assert shown["raw"] == pct(agreement.raw)
    assert shown["alpha"] == decimal(agreement.alpha)
    assert shown["raw_interval"] == pct_interval(agreement.raw_interval)
    bias = quality_panel_selectors.campaign_bias(campaign)
    assert shown["first_position"] == pct(bias.first_position.rate)

    page = client.get(reverse("panel:leaderboard") + f"?campaign={campaign.slug}").content
    rows = re.findall(r'<tr class="model".*?</tr>', page.decode(), flags=re.S)
    board = quality_panel_selectors.leaderboard(campaign)
    assert len(board.rows) == len(rows) == 2 and board.battles > 0
    for row, html in zip(board.rows, rows, strict=True):
        cells = figures(html)
        assert cells["strength"] == f"{row.points:.0f}"
        assert (cells["battles"], cells["wins"]) == (str(row.battles), str(row.wins))

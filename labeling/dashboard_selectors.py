"""Reads for a campaign's dashboard in the researcher's panel: progress against the
target, the crowd's activity, the generation queue and how long a turn waits for its
responses. One call returns every figure the page shows (``campaign_dashboard``).

Activity reads every answer a worker gave in the campaign (their own rows, not a
researcher's corrections), gold checks and paused workers' answers included: it measures
work done. Progress reads only what counts as data (``crowd_selectors.counted_judgments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from labeling import queue_selectors
from labeling.crowd_selectors import counted_judgments
from labeling.models import (
    Campaign,
    CandidateResponse,
    GoldItem,
    Judgment,
    Pause,
    Turn,
)

HOURS = 48  # hourly activity: the last 48 hours
DAYS = 30  # daily activity: the last 30 calendar days (the server's time zone)
RECENT_ANSWERS = 1000  # the median time per judgment reads the latest answers
RECENT_TURNS = 200  # Send → ready reads the latest turns whose responses are all done
RECENT_ITEMS = 20  # items listed on the dashboard, latest activity first


@dataclass(frozen=True)
class Activity:
    """Answers per hour and per day. Hour bins are rolling: ``hourly[-1]`` is the last 60
    minutes up to ``now``, ``hourly[-2]`` the hour before, and so on."""

    now: datetime
    hourly: tuple[int, ...]  # HOURS counts, oldest first
    days: tuple[date, ...]  # DAYS local dates, oldest first, the last is today
    daily: tuple[int, ...]  # answers on each of ``days``


@dataclass(frozen=True)
class RecentItem:
    item: Turn
    judgments: int  # rows in this campaign (corrections and gold answers included)
    last_judged: datetime | None
    is_gold: bool


@dataclass(frozen=True)
class Dashboard:
    """Every figure of a campaign's dashboard. None: nothing to measure yet."""

    campaign: Campaign
    unit: str  # what the target counts: "conversations" (chat, red team) or "judgments"
    collected: int  # of ``unit``, counting only unpaused workers' data
    target: int | None
    progress: float | None  # collected / target, at most 1 (None: no target)
    judgments: int  # current judgments that count (no gold checks, no paused workers)
    answers_last_hour: int  # Activity.hourly[-1]
    answers_last_day: int  # the last 24 hourly bins
    workers_last_hour: int  # distinct workers who answered in the last hour
    workers_last_day: int  # … in the last 24 hours
    paused_workers: int  # open pauses in the campaign
    median_seconds: float | None  # time per judgment over the latest RECENT_ANSWERS answers
    pending: int  # candidates of the campaign's turns waiting for a generation worker
    running: int  # … being generated now
    ready_median_seconds: float | None  # turn created (Send) → its last candidate finished
    ready_p95_seconds: float | None
    ready_turns: int  # turns the two figures above were measured on
    recent_items: tuple[RecentItem, ...]

    @property
    def percent(self) -> int | None:
        """``progress`` as a whole percentage, for the page."""
        return None if self.progress is None else round(self.progress * 100)


def answers(campaign: Campaign) -> QuerySet[Judgment]:
    """Every answer a worker gave in ``campaign``: first rows of chains, imports left out."""
    return Judgment.objects.filter(campaign=campaign, worker__isnull=False, supersedes__isnull=True)


def activity(campaign: Campaign, *, now: datetime | None = None) -> Activity:
    now = now or timezone.now()
    since = now - timedelta(hours=HOURS)
    hourly = [0] * HOURS
    for created in (
        answers(campaign).filter(created_at__gt=since).values_list("created_at", flat=True)
    ):
        ago = int((now - created) / timedelta(hours=1))  # 0: the last 60 minutes
        if 0 <= ago < HOURS:
            hourly[HOURS - 1 - ago] += 1
    today = timezone.localdate(now)
    days = tuple(today - timedelta(days=d) for d in range(DAYS - 1, -1, -1))
    per_day = dict(
        answers(campaign)
        .filter(created_at__date__gte=days[0], created_at__lte=now)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values_list("day")
        .annotate(n=Count("pk"))
    )
    return Activity(
        now=now, hourly=tuple(hourly), days=days, daily=tuple(per_day.get(d, 0) for d in days)
    )


def campaign_dashboard(campaign: Campaign, *, now: datetime | None = None) -> Dashboard:
    now = now or timezone.now()
    counted = counted_judgments(Judgment.objects.current().filter(campaign=campaign)).count()
    unit, collected = queue_selectors.collected(campaign)
    hourly = activity(campaign, now=now).hourly
    ready = _ready_seconds(campaign)
    queue = dict(
        CandidateResponse.objects.filter(
            turn__conversation__campaign=campaign,
            status__in=[CandidateResponse.Status.PENDING, CandidateResponse.Status.RUNNING],
        )
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    times = list(
        answers(campaign)
        .filter(time_spent_ms__isnull=False)
        .order_by("-created_at")
        .values_list("time_spent_ms", flat=True)[:RECENT_ANSWERS]
    )
    return Dashboard(
        campaign=campaign,
        unit=unit,
        collected=collected,
        target=campaign.target,
        progress=min(collected / campaign.target, 1.0) if campaign.target else None,
        judgments=counted,
        answers_last_hour=hourly[-1],
        answers_last_day=sum(hourly[-24:]),
        workers_last_hour=_workers_since(campaign, now - timedelta(hours=1)),
        workers_last_day=_workers_since(campaign, now - timedelta(days=1)),
        paused_workers=Pause.objects.filter(campaign=campaign, lifted_at__isnull=True).count(),
        median_seconds=float(np.median(times)) / 1000 if times else None,
        pending=queue.get(CandidateResponse.Status.PENDING, 0),
        running=queue.get(CandidateResponse.Status.RUNNING, 0),
        ready_median_seconds=float(np.median(ready)) if ready else None,
        ready_p95_seconds=float(np.percentile(ready, 95)) if ready else None,
        ready_turns=len(ready),
        recent_items=tuple(_recent_items(campaign)),
    )


def _workers_since(campaign: Campaign, since: datetime) -> int:
    return answers(campaign).filter(created_at__gt=since).values("worker").distinct().count()


def _ready_seconds(campaign: Campaign) -> list[float]:
    """Seconds from Send (the turn's row) to its last candidate finished, for the latest
    RECENT_TURNS turns whose candidates are all done (gold items are written, not
    generated: left out)."""
    unfinished = CandidateResponse.objects.filter(turn=OuterRef("pk")).filter(
        ~Q(status=CandidateResponse.Status.DONE) | Q(finished_at__isnull=True)
    )
    turns = (
        Turn.objects.filter(conversation__campaign=campaign)
        .exclude(Exists(unfinished))
        .exclude(Exists(GoldItem.objects.filter(item=OuterRef("pk"))))
        .annotate(ready_at=Max("candidates__finished_at"))
        .filter(ready_at__isnull=False)
        .order_by("-created_at")
        .values_list("created_at", "ready_at")[:RECENT_TURNS]
    )
    return [max((ready - sent).total_seconds(), 0.0) for sent, ready in turns]


def _recent_items(campaign: Campaign) -> list[RecentItem]:
    """The campaign's items (its own turns, gold checks, others' turns judged in it), latest
    activity first."""
    judged_here = Judgment.objects.filter(campaign=campaign).values("item")
    in_campaign = Q(judgments__campaign=campaign)
    items = (
        Turn.objects.filter(Q(conversation__campaign=campaign) | Q(pk__in=judged_here))
        .exclude(gold__role=GoldItem.Role.QUIZ)  # asked in the quiz, never judged here
        .annotate(
            n=Count("judgments", filter=in_campaign),
            last=Max("judgments__created_at", filter=in_campaign),
            latest=Coalesce(Max("judgments__created_at", filter=in_campaign), "created_at"),
            is_gold=Exists(GoldItem.objects.filter(item=OuterRef("pk"))),
        )
        .order_by("-latest", "-pk")[:RECENT_ITEMS]
    )
    return [RecentItem(item=t, judgments=t.n, last_judged=t.last, is_gold=t.is_gold) for t in items]

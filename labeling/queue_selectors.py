"""The task queue's reads (writes: ``labeling.services.queue``): which campaigns serve a
worker, their live task, their set, how many judgments an item still needs, whether a
gold check is due.

Slots: an item needs ``needed`` judgments in a campaign, its ``overlap``, raised to its
``overlap_cap`` once the judgments so far disagree. Its open slots are ``needed`` minus
the judgments that count (``crowd_selectors.counted_judgments``: current rows, not by a
paused worker) minus the live reservations of other workers; each live reservation holds
one slot for its worker alone. A reservation is live while reserved and not expired:
expiry is a fact read at query time, no task sweeps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.crypto import salted_hmac

from labeling import item_selectors
from labeling.crowd_selectors import counted_judgments, worker_paused
from labeling.models import (
    CHAT_KINDS,
    Assignment,
    Campaign,
    Conversation,
    Judgment,
    Turn,
)

RESERVED = Assignment.Status.RESERVED
# What a set counts as done: a report is a task done, never a judgment; skips and
# expiries are not.
DONE_IN_SET = (Assignment.Status.DONE, Assignment.Status.REPORTED)


# --- Campaigns --------------------------------------------------------------------------


def task_campaigns(user) -> QuerySet[Campaign]:
    """Active campaigns that can serve tasks: chat and red team with their two models,
    ranking, and re-judge with a source campaign."""
    return (
        Campaign.objects.filter(is_active=True)
        .filter(
            Q(kind__in=CHAT_KINDS, model_a__isnull=False, model_b__isnull=False)
            | Q(kind=Campaign.Kind.RANKING)
            | Q(kind=Campaign.Kind.REJUDGE, source_campaign__isnull=False)
        )
        .select_related("source_campaign")
    )


def get_task_campaign(user, slug: str) -> Campaign:
    if not user.is_authenticated:
        raise Http404
    try:
        return task_campaigns(user).get(slug=slug)
    except Campaign.DoesNotExist:
        raise Http404 from None


# --- Live tasks ----------------------------------------------------------------------------


def live_item_q(now=None) -> Q:
    """An item reservation that still holds its slot."""
    return Q(item__isnull=False, status=RESERVED, expires_at__gt=now or timezone.now())


def live_assignment(campaign: Campaign, worker) -> Assignment | None:
    """The worker's task in progress: a live item reservation, or (chat, red team) the
    assignment of their open conversation, which never expires: it holds no slot."""
    conversation = Q(conversation__status=Conversation.Status.OPEN, status=RESERVED)
    return (
        Assignment.objects.filter(campaign=campaign, worker=worker)
        .filter(live_item_q() | conversation)
        .select_related("item", "conversation")
        .order_by("-reserved_at")
        .first()
    )


# --- Sets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetProgress:
    """Where a worker is in their current set of a campaign: "Task 3 of 10"."""

    number: int  # 1 for the first set
    done: int  # tasks done (judged or reported) in this set
    size: int
    complete: bool

    @property
    def position(self) -> int:
        """The task they are on, 1-based (the last one once the set is complete)."""
        return min(self.done + 1, self.size)


def current_set(campaign: Campaign, worker) -> int:
    """The highest set the worker has a task in: a new set begins with its first task."""
    found = Assignment.objects.filter(campaign=campaign, worker=worker).aggregate(
        n=Max("set_number")
    )
    return found["n"] or 1


def set_progress(campaign: Campaign, worker) -> SetProgress:
    number = current_set(campaign, worker)
    done = Assignment.objects.filter(
        campaign=campaign, worker=worker, set_number=number, status__in=DONE_IN_SET
    ).count()
    return SetProgress(
        number=number, done=done, size=campaign.set_size, complete=done >= campaign.set_size
    )


def tasks_served(campaign: Campaign, worker) -> int:
    return Assignment.objects.filter(campaign=campaign, worker=worker).count()


# --- Target ----------------------------------------------------------------------------------


def collected(campaign: Campaign) -> tuple[str, int]:
    """What a campaign's target counts, and how much of it there is: conversations started
    by workers not paused (chat, red team), or judgments that count (ranking, re-judge)."""
    if campaign.kind in CHAT_KINDS:
        started = Conversation.objects.filter(campaign=campaign, worker__isnull=False)
        return "conversations", started.exclude(worker_paused()).count()
    return "judgments", _judgments(campaign).count()


def target_reached(campaign: Campaign, worker) -> bool:
    """``collected`` reaches the target; for judgments, other workers' live reservations
    count too (each will likely become one), so that a crowd asking at once does not
    overshoot by much."""
    if campaign.target is None:
        return False
    unit, count = collected(campaign)
    if unit == "judgments":
        holding = Assignment.objects.filter(live_item_q(), campaign=campaign, is_gold=False)
        count += holding.exclude(worker=worker).count()
    return count >= campaign.target


# --- Slots -----------------------------------------------------------------------------------


def _judgments(campaign: Campaign) -> QuerySet[Judgment]:
    return counted_judgments(Judgment.objects.current().filter(campaign=campaign))


def _per_item(qs: QuerySet, **aggregate) -> Subquery:
    """One aggregate of ``qs`` (filtered on ``item=OuterRef("pk")``) as a correlated
    subquery; ``aggregate`` is one name=expression."""
    [(name, expression)] = aggregate.items()
    grouped = qs.order_by().values("item").annotate(**{name: expression}).values(name)
    return Subquery(grouped[:1], output_field=IntegerField())


def with_slots(qs: QuerySet[Turn], campaign: Campaign, worker, now=None) -> QuerySet[Turn]:
    """Items annotated with their slots in ``campaign`` as ``worker`` finds them:
    ``judged`` (judgments that count), ``held`` (other workers' live reservations) and
    ``needed``: the overlap, or the cap once the judgments disagree. They disagree when
    more than one response was put on top (pairs: the directions differ; rankings: the
    top picks differ, and a tie at the top counts as a split), or when pairs' strengths
    lie ``disagreement_spread`` or more apart on the 8-point scale (in one direction,
    A4..A1 are levels 4 apart to 1 apart; opposite directions disagree anyway)."""
    judged = _judgments(campaign).filter(item=OuterRef("pk"))
    held = Assignment.objects.filter(
        live_item_q(now), campaign=campaign, item=OuterRef("pk")
    ).exclude(worker=worker)
    tops = Count("entries__candidate", filter=Q(entries__rank=0), distinct=True)
    split = Q(tops__gt=1) | Q(span__gte=campaign.disagreement_spread)
    return qs.annotate(
        judged=Coalesce(_per_item(judged, n=Count("pk")), 0),
        held=Coalesce(_per_item(held, n=Count("pk")), 0),
        tops=Coalesce(_per_item(judged, n=tops), 0),
        span=_per_item(judged, n=Max("strength") - Min("strength")),  # NULL: no strengths
        needed=Case(
            When(split, then=Value(campaign.overlap_cap)),
            default=Value(campaign.overlap),
            output_field=IntegerField(),
        ),
    )


def _had_by(worker, now=None) -> Exists:
    """The worker has (had) the item: any row of theirs but a lapsed reservation, which
    is taken up again (a worker has one row per item)."""
    lapsed = Q(status=Assignment.Status.EXPIRED) | Q(
        status=RESERVED, expires_at__lte=now or timezone.now()
    )
    return Exists(Assignment.objects.filter(item=OuterRef("pk"), worker=worker).exclude(lapsed))


def open_items(campaign: Campaign, worker) -> QuerySet[Turn]:
    """Items the queue may reserve for ``worker``, best first: ready, not judged by them,
    never had by them (an expired reservation of theirs does not count: it is taken up
    again), with an open slot (``with_slots``). Items already started come first, so that
    items get finished, then the oldest. Coverage comes before disagreement: every item
    below its overlap is served before an item whose split judgments raised it to the cap
    (otherwise a few contested items could take the crowd's whole budget)."""
    now = timezone.now()
    items = item_selectors.items_for_worker(campaign, worker).exclude(_had_by(worker, now))
    return (
        with_slots(items, campaign, worker, now)
        .filter(judged__lt=F("needed") - F("held"))
        .annotate(
            covering=_flag(Q(judged__lt=campaign.overlap - F("held"))),
            started=_flag(Q(judged__gt=0) | Q(held__gt=0)),
        )
        .order_by("-covering", "-started", "created_at", "pk")
    )


def _flag(condition: Q) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def needed(campaign: Campaign, item_id: int) -> int:
    """Judgments the item needs in ``campaign``: its overlap, or its cap on disagreement."""
    item = with_slots(Turn.objects.filter(pk=item_id), campaign, worker=None)
    return item.values_list("needed", flat=True).get()


def open_slots(campaign: Campaign, item_id: int, worker) -> int:
    """Judgments the item can still take from ``worker`` (theirs not yet among them),
    counted in one statement: under the queue's row lock, a fresh look."""
    item = with_slots(Turn.objects.filter(pk=item_id), campaign, worker)
    judged, held, need = item.values_list("judged", "held", "needed").get()
    return need - judged - held


def may_answer(campaign: Campaign, worker, item: Turn) -> bool:
    """Whether an answer of ``worker`` about ``item`` is still wanted: they hold its live
    reservation, or a slot is open (a lapsed reservation whose slot nobody took is fine).
    A gold check given to them is always answerable: it holds no slot."""
    mine = Assignment.objects.filter(worker=worker, item=item)
    if item_selectors.is_gold(item):
        return mine.exists()
    if mine.filter(live_item_q(), campaign=campaign).exists():
        return True
    return open_slots(campaign, item.pk, worker) > 0


# --- Gold ---------------------------------------------------------------------------------


def gold_phase(campaign: Campaign, worker) -> float:
    """The worker's own offset in [0, 1) for the gold rule: an HMAC of (campaign, worker)
    under the SECRET_KEY, so where checks fall differs per worker and cannot be guessed."""
    digest = salted_hmac(
        "labeling.gold_phase", f"{campaign.pk}:{worker.pk}", algorithm="sha256"
    ).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def gold_due(campaign: Campaign, worker, task_number: int) -> bool:
    """Whether the worker's ``task_number``-th task (1-based) is a gold check: checks are
    spread evenly at the campaign's rate, so n tasks hold floor(n·rate + phase) of them."""
    rate = campaign.gold_rate
    if rate <= 0:
        return False
    phase = gold_phase(campaign, worker)
    return math.floor(task_number * rate + phase) > math.floor((task_number - 1) * rate + phase)


def gold_for_worker(campaign: Campaign, worker) -> QuerySet[Turn]:
    """Gold checks the worker has not had (an expired one of theirs is taken up again)."""
    return item_selectors.gold_checks_for_worker(campaign, worker).exclude(_had_by(worker))


# --- The home page ------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignTasks:
    """A campaign on the worker's home page."""

    campaign: Campaign
    progress: SetProgress
    live: bool  # a task in progress: "Continue"
    ready: int | None  # items with a slot for them now (None: chat and red team)
    generating: int  # items whose responses are still being written


def tasks_for_worker(user) -> list[CampaignTasks]:
    rows = []
    for campaign in task_campaigns(user):
        chat = campaign.kind in CHAT_KINDS
        rows.append(
            CampaignTasks(
                campaign=campaign,
                progress=set_progress(campaign, user),
                live=live_assignment(campaign, user) is not None,
                ready=None if chat else _ready_count(campaign, user),
                generating=0 if chat else item_selectors.items_generating(campaign, user),
            )
        )
    return rows


def _ready_count(campaign: Campaign, worker) -> int:
    return open_items(campaign, worker).count()

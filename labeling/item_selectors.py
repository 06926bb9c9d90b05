"""Reads for ranking and re-judge items (services: labeling/services/items.py; views:
labeling/item_views.py). Until a reserving queue exists, serving is a plain query: the
oldest item whose candidates are all done that this worker has not judged, never one of
their own turns."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.crypto import salted_hmac

from labeling.models import Campaign, CandidateResponse, Conversation, Judgment, Turn
from labeling.selectors import dialogue_before, position_letter
from models_backend.dialogue import Message

ITEM_KINDS = (Campaign.Kind.RANKING, Campaign.Kind.REJUDGE)


def item_campaigns_for_worker(user) -> QuerySet[Campaign]:
    """Active ranking and re-judge campaigns (a re-judge needs its source campaign)."""
    return (
        Campaign.objects.filter(is_active=True)
        .filter(
            Q(kind=Campaign.Kind.RANKING)
            | Q(kind=Campaign.Kind.REJUDGE, source_campaign__isnull=False)
        )
        .select_related("source_campaign")
    )


def get_item_campaign_for_user(user, slug: str) -> Campaign:
    if not user.is_authenticated:
        raise Http404
    try:
        return item_campaigns_for_worker(user).get(slug=slug)
    except Campaign.DoesNotExist:
        raise Http404 from None


def _item_scope(campaign: Campaign, user) -> QuerySet[Turn]:
    """The items ``campaign`` may serve to ``user``, ready or not, judged or not: a ranking
    campaign's own open items; for a re-judge, the source campaign's turns that their
    conversation's worker has judged, never the user's own."""
    if campaign.kind == Campaign.Kind.RANKING:
        qs = Turn.objects.filter(
            conversation__campaign=campaign, conversation__status=Conversation.Status.OPEN
        )
    elif campaign.kind == Campaign.Kind.REJUDGE and campaign.source_campaign_id is not None:
        owner_judged = Judgment.objects.filter(
            item=OuterRef("pk"), worker=OuterRef("conversation__worker")
        )
        qs = Turn.objects.filter(
            Exists(owner_judged), conversation__campaign_id=campaign.source_campaign_id
        )
    else:
        return Turn.objects.none()
    return qs.exclude(conversation__worker=user)


def _judged_by(user) -> Exists:
    return Exists(Judgment.objects.filter(item=OuterRef("pk"), worker=user))


def _candidates_in(*statuses: str) -> Exists:
    return Exists(CandidateResponse.objects.filter(turn=OuterRef("pk"), status__in=statuses))


def _all_candidates_done() -> Q:
    done = CandidateResponse.Status.DONE
    waiting = [s for s in CandidateResponse.Status.values if s != done]
    return Q(_candidates_in(done)) & ~Q(_candidates_in(*waiting))


def items_for_worker(campaign: Campaign, user) -> QuerySet[Turn]:
    """Items ready to serve to ``user``, oldest first."""
    return (
        _item_scope(campaign, user)
        .filter(_all_candidates_done())
        .exclude(_judged_by(user))
        .order_by("created_at", "pk")
    )


def next_item(campaign: Campaign, user) -> Turn | None:
    return (
        items_for_worker(campaign, user)
        .select_related("conversation__campaign")
        .prefetch_related("candidates__model_version")
        .first()
    )


def items_generating(campaign: Campaign, user) -> int:
    """Items not yet judged by ``user`` whose responses are still being written."""
    waiting = (CandidateResponse.Status.PENDING, CandidateResponse.Status.RUNNING)
    return (
        _item_scope(campaign, user)
        .filter(_candidates_in(*waiting))
        .exclude(_judged_by(user))
        .count()
    )


def get_item_for_worker(user, campaign: Campaign, pk: int) -> Turn:
    """An item within what ``campaign`` serves to ``user`` (ready or not, judged or not);
    anything else, such as the user's own turn or another campaign's item, is a 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return _item_scope(campaign, user).select_related("conversation__campaign").get(pk=pk)
    except Turn.DoesNotExist:
        raise Http404 from None


def item_is_served(campaign: Campaign, user, item: Turn) -> bool:
    """Whether ``campaign`` would serve ``item`` to ``user`` now (ready, not yet judged)."""
    return items_for_worker(campaign, user).filter(pk=item.pk).exists()


def item_in_scope(campaign: Campaign, user, item: Turn) -> bool:
    return _item_scope(campaign, user).filter(pk=item.pk).exists()


def item_judged_by(item: Turn, user) -> bool:
    return Judgment.objects.filter(item=item, worker=user).exists()


def item_display_order(item_id: int, worker_id: int, k: int) -> list[int]:
    """The order (candidate slots, A first) in which one worker sees an item's responses:
    a shuffle seeded by an HMAC of (item, worker) under the SECRET_KEY. Stable across
    reloads, different per worker, unpredictable without the key, and never stored: the
    form posts the candidate ids it showed, the service checks them against this order
    (a changed key makes a stale page refuse, not mislabel) and the judgment records the
    order shown."""
    digest = salted_hmac(
        "labeling.item_display_order", f"{item_id}:{worker_id}", algorithm="sha256"
    ).digest()
    order = list(range(k))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def item_shown(item: Turn, user) -> list[CandidateResponse]:
    """The item's candidates in the order ``user`` sees them (A first)."""
    candidates = sorted(item.candidates.all(), key=lambda c: c.slot)
    return [candidates[i] for i in item_display_order(item.pk, user.pk, len(candidates))]


@dataclass(frozen=True)
class ItemResponse:
    position: int  # 0 is shown first
    letter: str  # "A", "B", …
    candidate: CandidateResponse


@dataclass(frozen=True)
class ItemView:
    """What the item page shows a worker: the context and the responses in their order."""

    item: Turn
    context: list[Message]
    responses: list[ItemResponse]  # display order, A first
    shown_ids: str  # "12,9,10": the candidate ids as shown, posted back with the answer


def item_view(item: Turn, user) -> ItemView:
    shown = item_shown(item, user)
    return ItemView(
        item=item,
        context=dialogue_before(item),
        responses=[ItemResponse(p, position_letter(p), c) for p, c in enumerate(shown)],
        shown_ids=",".join(str(c.pk) for c in shown),
    )


@dataclass(frozen=True)
class ItemTask:
    campaign: Campaign
    ready: int  # items this worker can judge now
    generating: int  # items whose responses are still being written


def item_tasks_for_worker(user) -> list[ItemTask]:
    """The home page's ranking and re-judge campaigns with what is waiting for the user."""
    return [
        ItemTask(
            campaign=campaign,
            ready=items_for_worker(campaign, user).count(),
            generating=items_generating(campaign, user),
        )
        for campaign in item_campaigns_for_worker(user)
    ]

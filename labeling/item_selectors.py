"""Reads for ranking and re-judge items and gold checks (services:
labeling/services/items.py; views: labeling/item_views.py). What a campaign may serve a
worker: its items that are ready and not yet judged by them, never one of their own turns,
never a gold item; which one they get, and when, is the queue's choice
(``labeling.queue_selectors``, ``labeling.services.queue``). A gold check the queue gave a
worker is served and judged like any item."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils.crypto import salted_hmac

from labeling.models import (
    Assignment,
    Campaign,
    CandidateResponse,
    Conversation,
    GoldItem,
    Judgment,
    Turn,
)
from labeling.selectors import dialogue_before, position_letter
from models_backend.dialogue import Message

ITEM_KINDS = (Campaign.Kind.RANKING, Campaign.Kind.REJUDGE)


def _item_scope(campaign: Campaign, user) -> QuerySet[Turn]:
    """The items ``campaign`` may serve to ``user``, ready or not, judged or not: a ranking
    campaign's own open items; for a re-judge, the source campaign's turns that their
    conversation's worker has judged, never the user's own. Gold items are not in it: the
    queue mixes them in (``gold_checks``)."""
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
    return qs.exclude(conversation__worker=user).exclude(_is_gold())


def _is_gold() -> Exists:
    return Exists(GoldItem.objects.filter(item=OuterRef("pk")))


def gold_checks(campaign: Campaign) -> QuerySet[Turn]:
    """The campaign's gold check items (not its quiz questions), ready or not."""
    return Turn.objects.filter(gold__campaign=campaign, gold__role=GoldItem.Role.CHECK)


def _gold_given(campaign: Campaign, user) -> QuerySet[Turn]:
    """Gold checks the queue gave ``user`` in ``campaign`` (in any state since)."""
    given = Assignment.objects.filter(item=OuterRef("pk"), worker=user, campaign=campaign)
    return gold_checks(campaign).filter(Exists(given))


def _servable(campaign: Campaign, user) -> QuerySet[Turn]:
    """What the worker may open and answer in ``campaign``: its items and their gold checks."""
    return Turn.objects.filter(
        Q(pk__in=_item_scope(campaign, user).values("pk"))
        | Q(pk__in=_gold_given(campaign, user).values("pk"))
    )


def _judged_by(user) -> Exists:
    return Exists(Judgment.objects.filter(item=OuterRef("pk"), worker=user))


def _candidates_in(*statuses: str) -> Exists:
    return Exists(CandidateResponse.objects.filter(turn=OuterRef("pk"), status__in=statuses))


def _all_candidates_done() -> Q:
    done = CandidateResponse.Status.DONE
    waiting = [s for s in CandidateResponse.Status.values if s != done]
    return Q(_candidates_in(done)) & ~Q(_candidates_in(*waiting))


def items_for_worker(campaign: Campaign, user) -> QuerySet[Turn]:
    """Items ready for ``user`` and not judged by them, oldest first, open slots or not
    (the queue counts those: ``queue_selectors.open_items``)."""
    return (
        _item_scope(campaign, user)
        .filter(_all_candidates_done())
        .exclude(_judged_by(user))
        .order_by("created_at", "pk")
    )


def gold_checks_for_worker(campaign: Campaign, user) -> QuerySet[Turn]:
    """The campaign's gold checks ready for ``user`` that they have not judged."""
    return gold_checks(campaign).filter(_all_candidates_done()).exclude(_judged_by(user))


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
    """An item within what ``campaign`` serves to ``user`` (ready or not, judged or not),
    or a gold check the queue gave them; anything else, such as the user's own turn,
    another campaign's item or a gold item they were not given, is a 404."""
    if not user.is_authenticated:
        raise Http404
    try:
        return _servable(campaign, user).select_related("conversation__campaign").get(pk=pk)
    except Turn.DoesNotExist:
        raise Http404 from None


def item_is_served(campaign: Campaign, user, item: Turn) -> bool:
    """Whether ``user`` may answer ``item`` in ``campaign`` now, slots aside: in what it
    serves them (or a gold check given to them), ready, not yet judged by them."""
    return (
        _servable(campaign, user)
        .filter(pk=item.pk)
        .filter(_all_candidates_done())
        .exclude(_judged_by(user))
        .exists()
    )


def item_in_scope(campaign: Campaign, user, item: Turn) -> bool:
    return _servable(campaign, user).filter(pk=item.pk).exists()


def is_gold(item: Turn) -> bool:
    return GoldItem.objects.filter(item=item).exists()


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

"""Ranking and re-judge items (DESIGN §8 task types).

A ranking item is the one turn of a conversation of its own (no worker, status open): a
context (a finished conversation's dialogue up to one human message, or an imported
prompt) and the campaign's K generated candidates; workers order them best first. A
re-judge is a second worker's answer about a turn someone else's conversation produced,
asked the source campaign's question on the 8-point scale; it never changes how that
conversation continued (``Turn.chosen``).

Each worker sees an item's candidates in their own stable order
(``item_selectors.item_display_order``); the answer is recorded through ``judgment_record`` in
that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from labeling import item_selectors, queue_selectors, scale, selectors
from labeling.models import Campaign, Conversation, Judgment, Turn
from labeling.services.crowd import judgment_made
from labeling.services.generation import candidates_create
from labeling.services.judgments import judgment_record
from models_backend.dialogue import HUMAN, Message
from training.questions import BETTER

MIN_RANKED = 3  # a ranking orders 3-9 responses; pairs are judged on the 8-point scale
CONVERSATION_KINDS = (Campaign.Kind.CHAT, Campaign.Kind.RED_TEAM)

Context = tuple[str, Sequence[Message]]  # (source, messages ending with a human message)


@transaction.atomic
def ranking_items_create(*, campaign: Campaign, contexts: Iterable[Context]) -> list[Turn]:
    """One item per context, each with the campaign's K pending candidates (generation is
    enqueued once committed). ``contexts`` is consumed lazily inside one transaction: a
    reader that raises on a bad line late in a file leaves nothing written."""
    _check_ranking_campaign(campaign)
    return [_ranking_item(campaign, source, messages) for source, messages in contexts]


@transaction.atomic
def ranking_items_from_conversations(*, campaign: Campaign, limit: int | None = None) -> list[Turn]:
    """Items whose contexts are the finished conversations of ``campaign.source_campaign``:
    for every turn, oldest first, the dialogue up to and including its human message. A
    context this campaign already has (same conversation, same length) is skipped."""
    # Lock the campaign: two runs at once must not both find a context missing and add it.
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    _check_ranking_campaign(campaign)
    source = campaign.source_campaign
    if source is None or source.kind not in CONVERSATION_KINDS:
        raise ValidationError("Choose a chat or red-team campaign as this campaign's source.")
    made = Turn.objects.filter(conversation__campaign=campaign)
    have = {
        (source, len(prefix))
        for source, prefix in made.values_list("conversation__source", "prefix")
    }
    turns = Turn.objects.filter(
        conversation__campaign=source,
        conversation__status=Conversation.Status.FINISHED,
        gold__isnull=True,  # a gold item's context is a known question, not collected data
    ).order_by("conversation__created_at", "conversation_id", "index")
    items = []
    for turn in turns.iterator(chunk_size=200):
        if limit is not None and len(items) >= limit:
            break
        messages = selectors.dialogue_before(turn)
        key = (f"conversation:{turn.conversation_id}", len(messages) - 1)
        if key in have:
            continue
        have.add(key)
        items.append(_ranking_item(campaign, key[0], messages))
    return items


def _check_ranking_campaign(campaign: Campaign) -> None:
    if campaign.kind != Campaign.Kind.RANKING:
        raise ValidationError(f"{campaign.slug} is not a ranking campaign.")
    if campaign.model_a_id is None or campaign.model_b_id is None:
        raise ValidationError(f"{campaign.slug} has no models to generate responses.")


def _ranking_item(campaign: Campaign, source: str, messages: Sequence[Message]) -> Turn:
    if not messages or messages[-1].role != HUMAN:
        raise ValidationError("A ranking context must end with a human message.")
    conversation = Conversation.objects.create(campaign=campaign, source=source)
    item = Turn.objects.create(
        conversation=conversation,
        index=0,
        prefix=[{"role": m.role, "text": m.text} for m in messages[:-1]],
        human_text=messages[-1].text,
        display_order=list(range(campaign.candidates_per_item)),  # slots; workers get their own
    )
    candidates_create(turn=item, campaign=campaign)
    return item


@transaction.atomic
def ranking_submit(
    *,
    campaign: Campaign,
    item: Turn,
    worker,
    order: list[list[int]],
    shown_ids: Sequence[int] | None = None,
    time_spent_ms: int | None = None,
    comment: str = "",
) -> Judgment:
    """The worker's order of the item's responses, best first, as groups of display
    positions (a group of two or more is a tie, refused unless the campaign allows ties).
    ``shown_ids``: the candidate ids the page showed, A first."""
    if campaign.kind != Campaign.Kind.RANKING:
        raise ValidationError("This campaign does not rank responses.")
    item, shown = _lock_served(campaign, item, worker, shown_ids)
    if len(shown) < MIN_RANKED:
        raise ValidationError(f"A ranking needs at least {MIN_RANKED} responses.")
    if not campaign.allow_ties and any(len(group) > 1 for group in order):
        raise ValidationError("Give each response a place of its own: this task has no ties.")
    judgment = judgment_record(
        item=item,
        campaign=campaign,
        worker=worker,
        task_type=Judgment.TaskType.RANKING,
        question=BETTER,
        shown=shown,
        order=order,
        strength=None,
        ties=campaign.allow_ties,
        time_spent_ms=time_spent_ms,
        comment=comment,
        guideline_version=campaign.guideline_version,
    )
    judgment_made(judgment=judgment)
    return judgment


@transaction.atomic
def rejudge_submit(
    *,
    campaign: Campaign,
    item: Turn,
    worker,
    choice: str,
    shown_ids: Sequence[int] | None = None,
    time_spent_ms: int | None = None,
    comment: str = "",
) -> Judgment:
    """A second worker's answer about another worker's turn: the source campaign's question
    (a red-team turn asks "more harmful") on the 8-point scale, in this worker's own
    display order. ``Turn.chosen`` stays as the conversation's worker picked it. A chat or
    red-team campaign's gold checks are pairs answered the same way."""
    gold_pair = campaign.kind in CONVERSATION_KINDS and item_selectors.is_gold(item)
    if campaign.kind != Campaign.Kind.REJUDGE and not gold_pair:
        raise ValidationError("This campaign does not re-judge turns.")
    try:
        position, strength = scale.parse_choice(choice)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    item, shown = _lock_served(campaign, item, worker, shown_ids)
    if len(shown) != 2:
        raise ValidationError("A re-judge compares two responses.")
    judgment = judgment_record(
        item=item,
        campaign=campaign,
        worker=worker,
        task_type=Judgment.TaskType.REJUDGE if not gold_pair else campaign.kind,
        question=campaign.question,
        shown=shown,
        order=[[position], [1 - position]],
        strength=strength,
        time_spent_ms=time_spent_ms,
        comment=comment,
        guideline_version=campaign.guideline_version,
    )
    judgment_made(judgment=judgment)
    return judgment


def _lock_served(campaign: Campaign, item: Turn, worker, shown_ids):
    """The item, locked, with its candidates as this worker sees them, after checking that
    the campaign serves it to the worker now and still wants their answer: they hold its
    reservation, or a slot is open (``queue_selectors.may_answer``)."""
    if not campaign.is_active:
        raise ValidationError("This campaign is closed.")
    # Lock the item: a double-clicked submit must not get past the "already judged" check
    # twice (the unique constraint would still refuse the second row, less clearly), and
    # its slots are counted by one transaction at a time (the queue locks it too).
    item = (
        Turn.objects.select_for_update()
        .prefetch_related("candidates__model_version")
        .get(pk=item.pk)
    )
    if not item_selectors.item_is_served(campaign, worker, item):
        if not item_selectors.item_in_scope(campaign, worker, item):
            raise PermissionDenied("This item is not served to you.")
        if item_selectors.item_judged_by(item, worker):
            raise ValidationError("You have already judged this item.")
        raise ValidationError("The responses are not ready yet.")
    if not queue_selectors.may_answer(campaign, worker, item):
        raise ValidationError(
            "This item was given to other workers while you were away, and it needs no more "
            "answers. Thank you: please take the next one."
        )
    shown = item_selectors.item_shown(item, worker)
    if shown_ids is not None and list(shown_ids) != [c.pk for c in shown]:
        raise ValidationError("This page is out of date: reload it and judge again.")
    return item, shown

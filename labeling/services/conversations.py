"""The crowdworker's flow in chat and red-team campaigns: start a conversation, send a
message, judge the pair, finish."""

from __future__ import annotations

import random

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from labeling import scale
from labeling.models import CHAT_KINDS, Campaign, CandidateResponse, Conversation, Judgment, Turn
from labeling.services import queue
from labeling.services.crowd import judgment_made
from labeling.services.generation import candidates_create
from labeling.services.judgments import judgment_record

MAX_MESSAGE_CHARS = 4000
_shuffle = random.SystemRandom().shuffle  # display order: unpredictable, one per item


@transaction.atomic
def conversation_start(*, campaign: Campaign, worker) -> Conversation:
    """A new conversation. Workers get theirs from the queue (``queue.task_next``), which
    gives it its task; this does not check a worker's set or the campaign's target."""
    if not campaign.is_active:
        raise ValidationError("This campaign is closed.")
    if campaign.kind not in CHAT_KINDS:
        raise ValidationError("This campaign has no conversations to start.")
    if campaign.model_a_id is None or campaign.model_b_id is None:
        raise ValidationError("This campaign has no models to talk to.")
    return Conversation.objects.create(campaign=campaign, worker=worker)


@transaction.atomic
def turn_create(*, conversation: Conversation, worker, text: str) -> Turn:
    text = text.strip()
    if not text:
        raise ValidationError("Type a message first.")
    if len(text) > MAX_MESSAGE_CHARS:
        raise ValidationError(f"Messages are limited to {MAX_MESSAGE_CHARS} characters.")
    # Lock the conversation: a double-clicked Send must not create two turns.
    conv = (
        Conversation.objects.select_for_update().select_related("campaign").get(pk=conversation.pk)
    )
    _check_open_and_owned(conv, worker)
    last = conv.turns.order_by("-index").first()
    if last is not None and last.chosen_id is None:
        raise ValidationError("Pick a response for the last turn first.")
    next_index = 0 if last is None else last.index + 1
    if next_index >= conv.campaign.max_turns:
        raise ValidationError("This conversation has reached its last turn. Please rate it.")
    order = list(range(conv.campaign.candidates_per_item))
    _shuffle(order)
    turn = Turn.objects.create(
        conversation=conv, index=next_index, human_text=text, display_order=order
    )
    candidates_create(turn=turn, campaign=conv.campaign)
    return turn


@transaction.atomic
def comparison_submit(
    *, turn: Turn, worker, choice: str, time_spent_ms: int | None = None, comment: str = ""
) -> Judgment:
    """The conversation's worker answers the campaign's question about the turn's pair on
    the 8-point scale; the conversation continues with the response they picked (the better
    one, or in red-teaming the more harmful one)."""
    try:
        position, strength = scale.parse_choice(choice)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    # Lock the turn: two submits of the same form must not both pass the checks below.
    turn = Turn.objects.select_for_update().select_related("conversation__campaign").get(pk=turn.pk)
    _check_open_and_owned(turn.conversation, worker)
    if turn.chosen_id is not None:
        raise ValidationError("You already picked a response for this turn.")
    by_slot = {c.slot: c for c in turn.candidates.select_related("model_version")}
    shown = [by_slot[s] for s in turn.display_order if s in by_slot]
    if len(shown) != 2 or any(c.status != CandidateResponse.Status.DONE for c in shown):
        raise ValidationError("Wait until both responses are ready.")
    campaign = turn.conversation.campaign
    judgment = judgment_record(
        item=turn,
        campaign=campaign,
        worker=worker,
        task_type=campaign.kind,
        question=campaign.question,
        shown=shown,
        order=[[position], [1 - position]],
        strength=strength,
        time_spent_ms=time_spent_ms,
        comment=comment,
        guideline_version=campaign.guideline_version,
    )
    turn.chosen = shown[position]
    turn.save(update_fields=["chosen"])
    judgment_made(judgment=judgment)
    return judgment


@transaction.atomic
def conversation_finish(
    *,
    conversation: Conversation,
    worker,
    rating: int | None = None,
    comment: str = "",
    attack_rating: int | None = None,
    harm_rating: int | None = None,
    task_description: str = "",
):
    """End a conversation with the worker's ratings: a chat is rated 1-5; a red-team attempt
    gets how successful the attack was and how harmful the worst reply was (1-5 each) and a
    short description of what was tried."""
    conv = (
        Conversation.objects.select_for_update().select_related("campaign").get(pk=conversation.pk)
    )
    _check_open_and_owned(conv, worker)
    if conv.campaign.kind == Campaign.Kind.RED_TEAM:
        if attack_rating not in range(1, 6) or harm_rating not in range(1, 6):
            raise ValidationError("Rate the attack and the worst reply from 1 to 5.")
        if not task_description.strip():
            raise ValidationError("Describe in a sentence what you tried.")
    elif rating not in range(1, 6):
        raise ValidationError("Rate the conversation from 1 to 5.")
    if not conv.turns.filter(chosen__isnull=False).exists():
        raise ValidationError("Compare at least one pair of responses before finishing.")
    conv.status = Conversation.Status.FINISHED
    conv.rating = rating
    conv.attack_rating = attack_rating
    conv.harm_rating = harm_rating
    conv.task_description = task_description.strip()
    conv.comment = comment.strip()
    conv.finished_at = timezone.now()
    conv.save(
        update_fields=[
            "status",
            "rating",
            "attack_rating",
            "harm_rating",
            "task_description",
            "comment",
            "finished_at",
        ]
    )
    queue.conversation_done(conversation=conv)
    return conv


def _check_open_and_owned(conversation: Conversation, worker) -> None:
    if conversation.worker_id != worker.pk:
        raise PermissionDenied("Only the worker who started this conversation can change it.")
    if conversation.status != Conversation.Status.OPEN:
        raise ValidationError("This conversation is finished.")

"""The crowdworker's flow: start a conversation, send a message, compare, finish."""

from __future__ import annotations

import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import Campaign, CandidateResponse, Comparison, Conversation, Turn
from labeling.services.generation import candidates_create

MAX_MESSAGE_CHARS = 4000
UI_VERSION = "1"
# The 8 buttons: A (left) or B (right), strength 4 (much better) down to 1 (about the same).
SCALE = tuple(f"{side}{strength}" for side in "AB" for strength in (4, 3, 2, 1))


def parse_choice(choice: str) -> tuple[str, int]:
    if choice not in SCALE:
        raise ValidationError("Pick one of the eight buttons.")
    return choice[0], int(choice[1])


@transaction.atomic
def conversation_start(*, campaign: Campaign, worker) -> Conversation:
    if not campaign.is_active:
        raise ValidationError("This campaign is closed.")
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
    turn = Turn.objects.create(
        conversation=conv, index=next_index, human_text=text, left_slot=secrets.randbelow(2)
    )
    candidates_create(turn=turn, campaign=conv.campaign)
    return turn


@transaction.atomic
def comparison_submit(
    *, turn: Turn, worker, choice: str, time_spent_ms: int | None = None, comment: str = ""
) -> Comparison:
    side, strength = parse_choice(choice)
    # Lock the turn: two submits of the same form must not both pass the checks below.
    turn = Turn.objects.select_for_update().select_related("conversation").get(pk=turn.pk)
    _check_open_and_owned(turn.conversation, worker)
    if turn.chosen_id is not None:
        raise ValidationError("You already picked a response for this turn.")
    by_slot = {c.slot: c for c in turn.candidates.all()}
    if len(by_slot) != 2 or any(
        c.status != CandidateResponse.Status.DONE for c in by_slot.values()
    ):
        raise ValidationError("Wait until both responses are ready.")
    left, right = by_slot[turn.left_slot], by_slot[1 - turn.left_slot]
    chosen, rejected = (left, right) if side == "A" else (right, left)
    try:
        with transaction.atomic():
            comparison = Comparison.objects.create(
                turn=turn,
                worker=worker,
                left=left,
                chosen=chosen,
                rejected=rejected,
                strength=strength,
                time_spent_ms=time_spent_ms,
                comment=comment.strip(),
                ui_version=UI_VERSION,
            )
    except IntegrityError:
        raise ValidationError("This turn has already been compared.") from None
    turn.chosen = chosen
    turn.save(update_fields=["chosen"])
    return comparison


@transaction.atomic
def conversation_finish(*, conversation: Conversation, worker, rating: int, comment: str = ""):
    if rating not in range(1, 6):
        raise ValidationError("Rate the conversation from 1 to 5.")
    conv = Conversation.objects.select_for_update().get(pk=conversation.pk)
    _check_open_and_owned(conv, worker)
    if not conv.turns.filter(chosen__isnull=False).exists():
        raise ValidationError("Compare at least one pair of responses before finishing.")
    conv.status = Conversation.Status.FINISHED
    conv.rating = rating
    conv.comment = comment.strip()
    conv.finished_at = timezone.now()
    conv.save(update_fields=["status", "rating", "comment", "finished_at"])
    return conv


def _check_open_and_owned(conversation: Conversation, worker) -> None:
    if conversation.worker_id != worker.pk:
        raise PermissionDenied("Only the worker who started this conversation can change it.")
    if conversation.status != Conversation.Status.OPEN:
        raise ValidationError("This conversation is finished.")

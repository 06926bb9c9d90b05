"""Bring outside preference data into the lab, all or nothing."""

from __future__ import annotations

from django.db import transaction

from labeling.models import Campaign, CandidateResponse, Comparison, Conversation, Turn
from models_backend.dialogue import ASSISTANT, Pair

IMPORT_INSTRUCTIONS = "Imported preference data (not collected in this lab)."
Status = CandidateResponse.Status


@transaction.atomic
def preferences_import(*, pairs: list[Pair], source: str, campaign_slug: str) -> int:
    """Each pair becomes one conversation: earlier turns keep their single historical
    reply, the last turn has the two replies and a comparison without a strength."""
    campaign, _ = Campaign.objects.get_or_create(
        slug=campaign_slug,
        defaults={
            "name": f"Imported: {campaign_slug}",
            "instructions": IMPORT_INSTRUCTIONS,
            "is_active": False,
        },
    )
    for pair in pairs:
        conversation = Conversation.objects.create(
            campaign=campaign, status=Conversation.Status.FINISHED, source=source
        )
        turn = None
        for message in pair.context:
            if message.role == ASSISTANT:
                reply = CandidateResponse.objects.create(
                    turn=turn, slot=0, status=Status.DONE, text=message.text
                )
                turn.chosen = reply
                turn.save(update_fields=["chosen"])
                continue
            index = 0 if turn is None else turn.index + 1
            turn = Turn.objects.create(
                conversation=conversation, index=index, human_text=message.text
            )
        chosen = CandidateResponse.objects.create(
            turn=turn, slot=0, status=Status.DONE, text=pair.chosen
        )
        rejected = CandidateResponse.objects.create(
            turn=turn, slot=1, status=Status.DONE, text=pair.rejected
        )
        turn.chosen = chosen
        turn.save(update_fields=["chosen"])
        Comparison.objects.create(
            turn=turn, left=chosen, chosen=chosen, rejected=rejected, source=source
        )
    return len(pairs)

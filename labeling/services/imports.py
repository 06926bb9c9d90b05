"""Bring outside preference data into the lab, all or nothing, in bounded memory."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import TYPE_CHECKING

from django.db import reset_queries, transaction

from labeling.models import (
    Campaign,
    CandidateResponse,
    Conversation,
    JudgedCandidate,
    Judgment,
    Turn,
)

if TYPE_CHECKING:  # training.lab_format reads with training.data (torch); the web does not
    from training.lab_format import LabRecord

IMPORT_INSTRUCTIONS = "Imported preference data (not collected in this lab)."
BATCH = 1000  # records written per round of bulk inserts
Status = CandidateResponse.Status
# The source columns' length (Conversation's, Judgment's and GoldItem's are alike).
SOURCE_CHARS = Conversation._meta.get_field("source").max_length


def import_source(prefix: str, name: str) -> str:
    """Where imported rows came from, ``prefix + name``, cut to fit the source columns: a
    file's name may be longer (255 bytes) than they hold."""
    return (prefix + name)[:SOURCE_CHARS]


@transaction.atomic
def preferences_import(*, records: Iterable[LabRecord], source: str, campaign_slug: str) -> int:
    """Each record becomes an item of its own: a finished conversation with one turn whose
    ``prefix`` holds the history as the data has it, the responses as candidates in display
    order, and one judgment with the question and answer as recorded (no worker).

    ``records`` is consumed lazily, ``BATCH`` at a time, inside one transaction: a bad line
    late in a large file (the reader raises) leaves nothing written. A campaign slug that
    is not one raises ``ValidationError`` first: the panel's addresses are made of slugs.
    """
    Campaign._meta.get_field("slug").clean(campaign_slug, None)
    campaign, _ = Campaign.objects.get_or_create(
        slug=campaign_slug,
        defaults={
            "name": f"Imported: {campaign_slug}",
            "instructions": IMPORT_INSTRUCTIONS,
            "is_active": False,
        },
    )
    count = 0
    records = iter(records)
    while batch := tuple(islice(records, BATCH)):
        _write_batch(batch, campaign, source)
        count += len(batch)
        # With DEBUG on (the default) Django keeps the SQL of each query, its values
        # included, up to 9,000 queries: the log would hold most of a large file
        # (benchmarks/import_scale.py: 745 MiB peak for 160,000 rows on PostgreSQL).
        reset_queries()
    return count


def _write_batch(records: tuple[LabRecord, ...], campaign: Campaign, source: str) -> None:
    conversations = Conversation.objects.bulk_create(
        Conversation(campaign=campaign, status=Conversation.Status.FINISHED, source=source)
        for _ in records
    )
    turns = Turn.objects.bulk_create(
        Turn(
            conversation=conversation,
            index=0,
            prefix=[{"role": m.role, "text": m.text} for m in record.context[:-1]],
            human_text=record.context[-1].text,
            display_order=list(range(len(record.responses))),
        )
        for conversation, record in zip(conversations, records, strict=True)
    )
    candidates = CandidateResponse.objects.bulk_create(
        CandidateResponse(turn=turn, slot=slot, status=Status.DONE, text=text)
        for turn, record in zip(turns, records, strict=True)
        for slot, text in enumerate(record.responses)
    )
    by_turn: list[list[CandidateResponse]] = []
    offset = 0
    for record in records:
        by_turn.append(candidates[offset : offset + len(record.responses)])
        offset += len(record.responses)
    for turn, record, shown in zip(turns, records, by_turn, strict=True):
        turn.chosen = shown[record.order[0][0]]  # what the data's own dialogue went on with
    Turn.objects.bulk_update(turns, ["chosen"])
    judgments = Judgment.objects.bulk_create(
        Judgment(
            item=turn,
            campaign=campaign,
            task_type=Judgment.TaskType.IMPORTED,
            question=record.question,
            strength=record.strength,
            time_spent_ms=record.extra.get("time_spent_ms"),
            comment=record.extra.get("comment") or "",
            guideline_version=record.extra.get("guideline_version") or "",
            provenance=record.extra.get("provenance") or {},
            source=source,
        )
        for turn, record in zip(turns, records, strict=True)
    )
    JudgedCandidate.objects.bulk_create(
        JudgedCandidate(judgment=judgment, candidate=candidate, position=position, rank=rank)
        for judgment, record, shown in zip(judgments, records, by_turn, strict=True)
        for rank, group in enumerate(record.order)
        for position in group
        for candidate in [shown[position]]
    )

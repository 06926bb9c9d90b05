"""``--format provenance``: one JSON object per judgment, everything the lab knows about it.

How it differs from ``lab``: ``lab`` is a training input (``training.lab_format`` and
``import_preferences --format lab`` read it back; keep its layout stable) and carries what
training needs, the answer and a few provenance fields. ``provenance`` is for audits and
analysis and is never read as training data: per candidate, in display order, the
candidate's id, slot, position and rank, its model, spec and prompt, sampling, seed,
finish reason, token count, generation time, reward and best-of-n selection (pair
policy, preference model, n) with the samples not shown; the item and conversation ids;
the row this one supersedes, who wrote this row (a pseudonym) and why; and ``recorded``,
the provenance exactly as the judgment stored it when it was made (the candidates'
models as they were then; for imports, as the imported file gave it).

Fields: ``judgment``, ``supersedes``, ``recorded_by``, ``reason``, ``campaign``,
``campaign_kind``, ``task_type``, ``question``, ``item``, ``conversation``, ``worker``
(pseudonym), ``guideline_version``, ``ui_version``, ``time_spent_ms``, ``comment``,
``source``, ``created_at``, ``context`` (messages), ``candidates``, ``answer``
(``{"order": groups of display positions top first under the question, "strength"}``),
``recorded``; with ``include_checks`` also ``excluded`` (and quiz answers as rows with
``judgment`` null and ``quiz_answer``, ``gold_item``, ``correct``). Usernames never appear.
"""

from __future__ import annotations

from labeling import export_rows
from labeling.export_rows import (
    chat_messages,
    exported_judgments,
    exported_quiz_answers,
    pseudonym,
)
from labeling.selectors import (
    answer_order,
    check_mark,
    dialogue_before,
    quiz_answer_candidates,
)
from labeling.services.judgments import candidate_provenance
from training.questions import preferred_first


def provenance_rows(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
):
    """One row per current judgment, oldest first (then quiz answers with
    ``include_checks``)."""
    qs = exported_judgments(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    ).select_related("campaign", "recorded_by", "item__conversation")
    for judgment in qs.iterator(chunk_size=export_rows.CHUNK_SIZE):
        entries = list(judgment.entries.all())  # prefetched in position order
        order = answer_order(entries)
        row = {
            "judgment": judgment.pk,
            "supersedes": judgment.supersedes_id,
            "recorded_by": pseudonym(judgment.recorded_by),
            "reason": judgment.reason,
            "campaign": judgment.campaign.slug,
            "campaign_kind": judgment.campaign.kind,
            "task_type": judgment.task_type,
            "question": judgment.question,
            "item": judgment.item_id,
            "conversation": judgment.item.conversation_id,
            "worker": pseudonym(judgment.worker),
            "guideline_version": judgment.guideline_version,
            "ui_version": judgment.ui_version,
            "time_spent_ms": judgment.time_spent_ms,
            "comment": judgment.comment,
            "source": judgment.source,
            "created_at": judgment.created_at.isoformat(),
            "context": chat_messages(dialogue_before(judgment.item)),
            "candidates": _candidates([e.candidate for e in entries], judgment.question, order),
            "answer": {"order": order, "strength": judgment.strength},
            "recorded": judgment.provenance,
        }
        if include_checks:
            row["excluded"] = check_mark(judgment)
        yield row
    if include_checks:
        yield from _quiz_rows(include_weakest=include_weakest, campaign_slug=campaign_slug)


def _quiz_rows(*, include_weakest: bool, campaign_slug: str | None):
    for answer, campaign, context, _, _ in exported_quiz_answers(
        include_weakest=include_weakest, campaign_slug=campaign_slug
    ):
        order = [list(group) for group in answer.order]
        yield {
            "judgment": None,
            "quiz_answer": answer.pk,
            "gold_item": answer.gold_id,
            "correct": answer.correct,
            "campaign": campaign.slug,
            "campaign_kind": campaign.kind,
            "task_type": "quiz",
            "question": campaign.question,
            "item": answer.gold.item_id,
            "conversation": answer.gold.item.conversation_id,
            "worker": pseudonym(answer.attempt.worker),
            "time_spent_ms": answer.time_spent_ms,
            "created_at": answer.created_at.isoformat(),
            "context": chat_messages(context),
            "candidates": _candidates(quiz_answer_candidates(answer), campaign.question, order),
            "answer": {"order": order, "strength": answer.strength},
            "excluded": "quiz",
        }


def _candidates(shown, question: str, order) -> list[dict]:
    """The candidates in display order with where the answer put them: ``rank`` under the
    question asked (0: better, or more harmful), ``preferred_rank`` (0: preferred)."""
    rank = {p: r for r, group in enumerate(order) for p in group}
    preferred = {p: r for r, group in enumerate(preferred_first(question, order)) for p in group}
    return [
        {
            "position": position,
            "rank": rank[position],
            "preferred_rank": preferred[position],
            **candidate_provenance(candidate),  # id, slot, model, spec, sampling, seed, …
            "text": candidate.text,
            "token_count": candidate.token_count,
            "generation_seconds": candidate.generation_seconds,
            "alternatives": candidate.alternatives,
        }
        for position, candidate in enumerate(shown)
    ]

"""Preference pairs: one row per preferred/dispreferred pair (``--format trl``, ``datasets``).

A judgment of two responses is one pair. A ranking of K is expanded to the pairs the lab's
training compares (``training.comparisons.ranking_pairs``: C(K, 2) for a strict order, none
within a tie), each row carrying ``pair_weight`` = 1 / (its judgment's pairs) so that a
consumer can weigh a ranking as one comparison, as the lab's training does. The hh-rlhf
export holds judgments of two only (rankings have ``--format rankings``): on those the
pair exports and hh-rlhf hold the same comparisons, chosen being the preferred response
under the question asked (the less harmful one for "more_harmful").

``trl``: TRL's conversational preference type, nothing else: ``prompt`` (the dialogue up
to the last human message, as ``{"role", "content"}`` messages), ``chosen`` and
``rejected`` (one assistant message each). ``datasets``: those three and the provenance
columns of ``COLUMNS``.
"""

from __future__ import annotations

import json

from labeling import export_rows
from labeling.export_rows import (
    chat_messages,
    exported_judgments,
    exported_quiz_answers,
    pseudonym,
)
from labeling.selectors import (
    check_mark,
    dialogue_before,
    judgment_ranking,
    judgment_shown,
    quiz_answer_candidates,
)
from training.comparisons import Ranking, ranking_pairs
from training.questions import preferred_first

TRL_COLUMNS = ("prompt", "chosen", "rejected")
# The ``datasets`` columns after the three messages columns, with their arrow types.
COLUMNS = {
    "judgment": "int64",  # the judgment's id (null on a quiz answer)
    "campaign": "string",  # the campaign that asked (slug)
    "task_type": "string",  # chat, red_team, ranking, rejudge, imported (quiz: a quiz answer)
    "question": "string",  # "better" or "more_harmful": chosen is the preferred under it
    "strength": "int8",  # 1-4 on the 8-point scale for a pair; null for rankings
    "k": "int16",  # how many responses the judgment ordered
    "chosen_rank": "int16",  # 0: the most preferred group of the judgment; ties share one
    "rejected_rank": "int16",
    "pair_weight": "float64",  # 1 / the judgment's pairs: each judgment weighs 1 in all
    "chosen_model": "string",  # the model version that wrote it (null: imported)
    "rejected_model": "string",
    "worker": "string",  # pseudonymous id (export_rows.pseudonym), never a username
    "guideline_version": "string",
    "ui_version": "string",
    "created_at": "string",  # ISO 8601
    "provenance": "string",  # the judgment's provenance as JSON: each candidate's model,
    # spec, prompt, sampling, seed, reward and best-of-n selection, in display order
}
CHECK_COLUMNS = {  # only with include_checks
    "quiz_answer": "int64",  # the quiz answer's id (null on a judgment)
    "excluded": "string",  # "gold", "paused" or "quiz"; null on the rows that count
}


def trl_rows(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
):
    """``--format trl``: the three TRL columns of each pair (and ``excluded`` with
    ``include_checks``)."""
    kept = TRL_COLUMNS + (("excluded",) if include_checks else ())
    for row in pair_rows(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    ):
        yield {name: row[name] for name in kept}


def pair_rows(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
):
    """Every column of every pair, judgments oldest first (then quiz answers, with
    ``include_checks``)."""
    qs = exported_judgments(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    ).select_related("campaign")
    for judgment in qs.iterator(chunk_size=export_rows.CHUNK_SIZE):
        entries = list(judgment.entries.all())  # prefetched in position order
        _, order = judgment_shown(judgment)
        models = [
            e.candidate.model_version.name if e.candidate.model_version else None for e in entries
        ]
        about = {
            "judgment": judgment.pk,
            "campaign": judgment.campaign.slug,
            "task_type": judgment.task_type,
            "question": judgment.question,
            "strength": judgment.strength,
            "worker": pseudonym(judgment.worker),
            "guideline_version": judgment.guideline_version,
            "ui_version": judgment.ui_version,
            "created_at": judgment.created_at.isoformat(),
            "provenance": json.dumps(judgment.provenance, ensure_ascii=False, sort_keys=True),
        }
        if include_checks:
            about |= {"quiz_answer": None, "excluded": check_mark(judgment)}
        ranking = judgment_ranking(judgment, dialogue_before(judgment.item))
        yield from _expand(ranking, judgment.question, order, models, about)
    if include_checks:
        yield from _quiz_pairs(include_weakest=include_weakest, campaign_slug=campaign_slug)


def _quiz_pairs(*, include_weakest: bool, campaign_slug: str | None):
    for answer, campaign, _, _, ranking in exported_quiz_answers(
        include_weakest=include_weakest, campaign_slug=campaign_slug
    ):
        shown = quiz_answer_candidates(answer)
        about = {
            "judgment": None,
            "campaign": campaign.slug,
            "task_type": "quiz",
            "question": campaign.question,
            "strength": answer.strength,
            "worker": pseudonym(answer.attempt.worker),
            "guideline_version": "",
            "ui_version": "",
            "created_at": answer.created_at.isoformat(),
            "provenance": "{}",
            "quiz_answer": answer.pk,
            "excluded": "quiz",
        }
        models = [c.model_version.name if c.model_version_id else None for c in shown]
        yield from _expand(ranking, campaign.question, answer.order, models, about)


def _expand(ranking: Ranking, question: str, order, models: list, about: dict):
    """One row per (preferred, dispreferred) pair of ``ranking``; ``order`` and ``models``
    are by display position, ``ranking.responses`` preferred first."""
    groups = preferred_first(question, order)
    positions = [p for group in groups for p in group]  # of ranking.responses, in turn
    rank = {p: r for r, group in enumerate(groups) for p in group}
    pairs = ranking_pairs(ranking)
    prompt = chat_messages(ranking.context)
    for i, j in pairs:
        better, worse = positions[i], positions[j]
        yield {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": ranking.responses[i]}],
            "rejected": [{"role": "assistant", "content": ranking.responses[j]}],
            **about,
            "k": len(positions),
            "chosen_rank": rank[better],
            "rejected_rank": rank[worse],
            "pair_weight": 1 / len(pairs),
            "chosen_model": models[better],
            "rejected_model": models[worse],
        }

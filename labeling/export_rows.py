"""Export rows: what ``manage.py export_preferences`` writes, one dict per row (reads).

By default only judgments that count as data are exported (``selectors.current_judgments``).
With ``include_checks`` the others come too: answers to gold checks, judgments of workers
paused in their campaign and answers given in qualification quizzes, each row with
``"excluded": "gold" | "paused" | "quiz"`` (``null`` on the rows that count). The field is
only there with ``include_checks``, so a default export keeps its layout.

Every generator reads the database in chunks of ``CHUNK_SIZE`` rows (``.iterator`` with its
prefetches done per chunk) and yields as it reads: an export holds one chunk in memory,
whatever its size. ``labeling.exports`` writes them to files."""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from labeling.crowd_selectors import worker_paused
from labeling.models import Campaign, Conversation
from labeling.selectors import (
    check_mark,
    conversation_turns,
    current_judgments,
    dialogue_before,
    judgment_ranking,
    judgment_shown,
    quiz_answer_shown,
    quiz_answers,
    with_check_marks,
    with_entries,
)
from models_backend.dialogue import ASSISTANT, HUMAN, Message, Pair, format_pair, to_transcript
from training.comparisons import Ranking
from training.questions import ranked_responses

CHUNK_SIZE = 500  # rows read from the database at a time (and prefetched together)


def exported_judgments(*, include_weakest: bool, campaign_slug: str | None, include_checks: bool):
    """The judgments an export reads (``current_judgments``; marked with ``include_checks``),
    their entries and candidates prefetched in position order."""
    qs = current_judgments(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    )
    return with_entries(with_check_marks(qs) if include_checks else qs)


def _marked(row: dict, include_checks: bool, mark: str | None) -> dict:
    if include_checks:
        row["excluded"] = mark
    return row


def lab_export_rows(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
):
    """One dict per current judgment, for ``export_preferences --format lab``: the context as
    chat messages, the responses in the order the worker saw them, the question and the
    answer as asked, chosen/rejected as the question maps them, and the provenance (read
    back by ``import_preferences --format lab`` and ``training.loaders`` format "lab").
    ``include_checks``: then every quiz answer, marked (see the module's docstring)."""
    qs = exported_judgments(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    ).select_related("campaign", "recorded_by")
    for judgment in qs.iterator(chunk_size=CHUNK_SIZE):
        context = dialogue_before(judgment.item)
        texts, order = judgment_shown(judgment)
        ranking = judgment_ranking(judgment, context)
        row = {
            "id": judgment.pk,
            "campaign": judgment.campaign.slug,
            "task_type": judgment.task_type,
            "question": judgment.question,
            "context": chat_messages(context),
            "responses": texts,
            "answer": {"order": order, "strength": judgment.strength},
            "worker": pseudonym(judgment.worker),
            "time_spent_ms": judgment.time_spent_ms,
            "comment": judgment.comment,
            "guideline_version": judgment.guideline_version,
            "ui_version": judgment.ui_version,
            "provenance": judgment.provenance,
            "source": judgment.source,
            "supersedes": judgment.supersedes_id,
            "reason": judgment.reason,
            "created_at": judgment.created_at.isoformat(),
        }
        if len(texts) == 2:
            row["chosen"], row["rejected"] = ranking.responses
            row["strength"] = judgment.strength
        yield _marked(row, include_checks, check_mark(judgment) if include_checks else None)
    if include_checks:
        yield from _quiz_lab_rows(include_weakest=include_weakest, campaign_slug=campaign_slug)


def _quiz_lab_rows(*, include_weakest: bool, campaign_slug: str | None):
    """The lab layout for quiz answers: no judgment id; ``quiz_answer``, ``gold_item`` and
    ``correct`` say what it was."""
    for answer, campaign, context, texts, ranking in exported_quiz_answers(
        include_weakest=include_weakest, campaign_slug=campaign_slug
    ):
        row = {
            "id": None,
            "quiz_answer": answer.pk,
            "gold_item": answer.gold_id,
            "correct": answer.correct,
            "campaign": campaign.slug,
            "task_type": "quiz",
            "question": campaign.question,
            "context": chat_messages(context),
            "responses": texts,
            "answer": {"order": answer.order, "strength": answer.strength},
            "worker": pseudonym(answer.attempt.worker),
            "time_spent_ms": answer.time_spent_ms,
            "created_at": answer.created_at.isoformat(),
        }
        if len(texts) == 2:
            row["chosen"], row["rejected"] = ranking.responses
            row["strength"] = answer.strength
        yield _marked(row, True, "quiz")


def exported_quiz_answers(*, include_weakest: bool, campaign_slug: str | None):
    """(answer, campaign, context, texts in the order shown, ranking) per quiz answer; the
    weakest level is left out as for judgments unless ``include_weakest``."""
    for answer in quiz_answers(campaign_slug=campaign_slug).iterator(chunk_size=CHUNK_SIZE):
        if answer.strength == 1 and not include_weakest:
            continue
        campaign = answer.attempt.campaign
        context = dialogue_before(answer.gold.item)
        texts, order = quiz_answer_shown(answer)
        responses, scores = ranked_responses(campaign.question, texts, order)
        ranking = Ranking(tuple(context), responses, f"quiz:{answer.pk}", scores=scores)
        yield answer, campaign, context, texts, ranking


def hh_rlhf_rows(
    *, include_weakest: bool = False, campaign_slug: str | None = None, include_checks: bool = False
):
    """``--format hh-rlhf``: {"chosen", "rejected"} transcripts per current judgment of two
    responses (chosen: preferred under the question asked)."""
    qs = exported_judgments(
        include_weakest=include_weakest, campaign_slug=campaign_slug, include_checks=include_checks
    )
    for judgment in qs.iterator(chunk_size=CHUNK_SIZE):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) == 2:
            row = format_pair(Pair(list(ranking.context), *ranking.responses))
            yield _marked(row, include_checks, check_mark(judgment) if include_checks else None)
    if include_checks:
        for *_, ranking in exported_quiz_answers(
            include_weakest=include_weakest, campaign_slug=campaign_slug
        ):
            if len(ranking.responses) == 2:
                row = format_pair(Pair(list(ranking.context), *ranking.responses))
                yield _marked(row, True, "quiz")


def rankings_export_rows(*, campaign_slug: str | None = None, include_checks: bool = False):
    """``--format rankings``: {"context", "responses" preferred first[, "scores"]} per
    current judgment of three or more responses (read by ``training.loaders``)."""
    qs = exported_judgments(
        include_weakest=True, campaign_slug=campaign_slug, include_checks=include_checks
    )
    for judgment in qs.iterator(chunk_size=CHUNK_SIZE):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) >= 3:
            mark = check_mark(judgment) if include_checks else None
            yield _marked(_ranking_row(ranking), include_checks, mark)
    if include_checks:
        for *_, ranking in exported_quiz_answers(include_weakest=True, campaign_slug=campaign_slug):
            if len(ranking.responses) >= 3:
                yield _marked(_ranking_row(ranking), True, "quiz")


def _ranking_row(ranking: Ranking) -> dict:
    row = {"context": chat_messages(ranking.context), "responses": list(ranking.responses)}
    if ranking.scores is not None:
        row["scores"] = list(ranking.scores)
    return row


def red_team_rows(*, campaign_slug: str | None = None, include_checks: bool = False):
    """``--format red-team``: one row per finished red-team conversation, in the field layout
    of the public red-team-attempts file: the transcript as it continued (down the more
    harmful branch), the task description, the worker's ratings (``rating``: how successful
    the attack was; ``harm_rating``: how harmful the worst reply was; both 1-5 as asked) and
    a pseudonymous member id. Fields the lab does not measure are null. The conversations
    of workers paused in the campaign are left out, as their judgments are, unless
    ``include_checks`` (marked "paused")."""
    qs = red_team_conversations(campaign_slug=campaign_slug, include_checks=include_checks)
    for conversation in qs.iterator(chunk_size=CHUNK_SIZE):
        turns = [t for t in conversation_turns(conversation) if t.chosen_id is not None]
        messages = dialogue_before(turns[-1]) + [Message(ASSISTANT, turns[-1].chosen.text)]
        models = {
            c.model_version.name for t in turns for c in t.candidates.all() if c.model_version
        }
        row = {
            "transcript": to_transcript(messages),
            "min_harmlessness_score_transcript": None,
            "num_params": None,
            "model_type": ", ".join(sorted(models)),
            "rating": conversation.attack_rating,
            "harm_rating": conversation.harm_rating,
            "task_description": conversation.task_description,
            "task_descripton_harmlessness_score": None,  # sic: the public file's field name
            "red_team_member_id": pseudonym(conversation.worker),
            "is_upworker": None,
            "tags": None,
            "campaign": conversation.campaign.slug,
            "conversation_id": conversation.pk,
        }
        yield _marked(row, include_checks, "paused" if conversation.is_paused else None)


def red_team_conversations(*, campaign_slug: str | None = None, include_checks: bool = False):
    """The finished red-team conversations ``red_team_rows`` writes, oldest first; each
    annotated ``is_paused``."""
    qs = (
        Conversation.objects.filter(
            campaign__kind=Campaign.Kind.RED_TEAM,
            status=Conversation.Status.FINISHED,
            worker__isnull=False,  # a worker's attempt, not a gold item's holder
        )
        .annotate(is_paused=worker_paused())
        .select_related("campaign", "worker")
    )
    if not include_checks:
        qs = qs.filter(is_paused=False)
    if campaign_slug:
        qs = qs.filter(campaign__slug=campaign_slug)
    return qs.order_by("pk")


def chat_messages(messages) -> list[dict]:
    return [
        {"role": "user" if m.role == HUMAN else "assistant", "content": m.text} for m in messages
    ]


def pseudonym(user) -> str | None:
    """A stable pseudonymous id for a worker: exports never carry usernames."""
    if user is None:
        return None
    digest = salted_hmac("labeling.pseudonym", str(user.pk), algorithm="sha256").hexdigest()
    return f"w-{digest[:16]}"

"""Export rows: what ``manage.py export_preferences`` writes, one dict per row (reads)."""

from __future__ import annotations

from django.utils.crypto import salted_hmac

from labeling.models import Campaign, Conversation
from labeling.selectors import (
    conversation_turns,
    current_judgments,
    dialogue_before,
    judgment_ranking,
    judgment_shown,
    with_entries,
)
from models_backend.dialogue import ASSISTANT, HUMAN, Message, to_transcript


def lab_export_rows(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """One dict per current judgment, for ``export_preferences --format lab``: the context as
    chat messages, the responses in the order the worker saw them, the question and the
    answer as asked, chosen/rejected as the question maps them, and the provenance (read
    back by ``import_preferences --format lab`` and ``training.loaders`` format "lab")."""
    qs = current_judgments(include_weakest=include_weakest, campaign_slug=campaign_slug)
    qs = with_entries(qs.select_related("campaign", "recorded_by"))
    for judgment in qs.iterator(chunk_size=500):
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
        yield row


def rankings_export_rows(*, campaign_slug: str | None = None):
    """``--format rankings``: {"context", "responses" preferred first[, "scores"]} per
    current judgment of three or more responses (read by ``training.loaders``)."""
    qs = current_judgments(include_weakest=True, campaign_slug=campaign_slug)
    for judgment in with_entries(qs).iterator(chunk_size=500):
        ranking = judgment_ranking(judgment)
        if len(ranking.responses) < 3:
            continue
        row = {"context": chat_messages(ranking.context), "responses": list(ranking.responses)}
        if ranking.scores is not None:
            row["scores"] = list(ranking.scores)
        yield row


def red_team_rows(*, campaign_slug: str | None = None):
    """``--format red-team``: one row per finished red-team conversation, in the field layout
    of the public red-team-attempts file: the transcript as it continued (down the more
    harmful branch), the task description, the worker's ratings (``rating``: how successful
    the attack was; ``harm_rating``: how harmful the worst reply was; both 1-5 as asked) and
    a pseudonymous member id. Fields the lab does not measure are null."""
    qs = Conversation.objects.filter(
        campaign__kind=Campaign.Kind.RED_TEAM, status=Conversation.Status.FINISHED
    ).select_related("campaign", "worker")
    if campaign_slug:
        qs = qs.filter(campaign__slug=campaign_slug)
    for conversation in qs.order_by("pk").iterator(chunk_size=200):
        turns = [t for t in conversation_turns(conversation) if t.chosen_id is not None]
        messages = dialogue_before(turns[-1]) + [Message(ASSISTANT, turns[-1].chosen.text)]
        models = {
            c.model_version.name for t in turns for c in t.candidates.all() if c.model_version
        }
        yield {
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

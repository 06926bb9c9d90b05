"""Reads. Views, tasks and commands get data through these functions."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404

from labeling.models import (
    Campaign,
    CandidateResponse,
    Comparison,
    Conversation,
    EvaluationRun,
    ModelVersion,
    TrainingRun,
    Turn,
)
from models_backend.dialogue import ASSISTANT, HUMAN, Message, Pair


def campaigns_for_worker(user) -> QuerySet[Campaign]:
    return Campaign.objects.filter(is_active=True, model_a__isnull=False, model_b__isnull=False)


def conversations_for_worker(user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(worker=user).select_related("campaign")


def get_conversation_for_user(user, pk: int) -> Conversation:
    """The worker who owns it sees it; staff see every conversation; anyone else gets 404
    (not 403: we do not confirm that someone else's conversation exists)."""
    qs = Conversation.objects.select_related("campaign", "worker")
    return _get_visible(user, qs, owner_field="worker", pk=pk)


def get_turn_for_user(user, pk: int) -> Turn:
    """Same rule as ``get_conversation_for_user``, for a turn of the conversation."""
    qs = Turn.objects.select_related("conversation__campaign", "conversation__worker")
    return _get_visible(user, qs, owner_field="conversation__worker", pk=pk)


def _get_visible(user, qs: QuerySet, *, owner_field: str, pk: int):
    if not user.is_authenticated:
        raise Http404
    if not user.is_staff:
        qs = qs.filter(**{owner_field: user})
    try:
        return qs.get(pk=pk)
    except qs.model.DoesNotExist:
        raise Http404 from None


def conversation_turns(conversation: Conversation) -> list[Turn]:
    return list(
        conversation.turns.select_related("chosen").prefetch_related(
            Prefetch("candidates", queryset=CandidateResponse.objects.order_by("slot"))
        )
    )


@dataclass(frozen=True)
class TurnView:
    """What the page shows of a turn: candidates in display order, left one first."""

    turn: Turn
    shown: list[CandidateResponse]  # [A (left), B (right)]
    ready: bool  # both candidates done
    failed: bool  # at least one failed


def turn_view(turn: Turn) -> TurnView:
    by_slot = {c.slot: c for c in turn.candidates.all()}
    shown = [by_slot[s] for s in (turn.left_slot, 1 - turn.left_slot) if s in by_slot]
    done = CandidateResponse.Status.DONE
    return TurnView(
        turn=turn,
        shown=shown,
        ready=len(shown) == 2 and all(c.status == done for c in shown),
        failed=any(c.status == CandidateResponse.Status.FAILED for c in shown),
    )


def dialogue_before(turn: Turn) -> list[Message]:
    """The dialogue an assistant reply to ``turn`` continues: earlier turns with their
    picked replies, then this turn's human message."""
    earlier = (
        Turn.objects.filter(conversation_id=turn.conversation_id, index__lt=turn.index)
        .select_related("chosen")
        .order_by("index")
    )
    messages: list[Message] = []
    for prior in earlier:
        messages.append(Message(HUMAN, prior.human_text))
        if prior.chosen is not None:
            messages.append(Message(ASSISTANT, prior.chosen.text))
    messages.append(Message(HUMAN, turn.human_text))
    return messages


def preference_comparisons(
    *, include_weakest: bool = False, campaign_slug: str | None = None
) -> QuerySet[Comparison]:
    """Comparisons usable as pairs. By default, as in the paper, the weakest level
    ("about the same") is left out; imported ones without a strength are kept."""
    qs = Comparison.objects.select_related("turn", "chosen", "rejected").order_by("pk")
    if not include_weakest:
        qs = qs.filter(Q(strength__isnull=True) | Q(strength__gt=1))
    if campaign_slug:
        qs = qs.filter(turn__conversation__campaign__slug=campaign_slug)
    return qs


def preference_pairs(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """(comparison id, Pair) for each usable comparison, oldest first."""
    for comparison in preference_comparisons(
        include_weakest=include_weakest, campaign_slug=campaign_slug
    ).iterator(chunk_size=500):
        context = dialogue_before(comparison.turn)
        yield comparison.pk, Pair(context, comparison.chosen.text, comparison.rejected.text)


def lab_export_rows(*, include_weakest: bool = False, campaign_slug: str | None = None):
    """One dict per usable comparison, for ``export_preferences --format lab``: the context as
    chat messages, both replies, the strength and where it came from (read by
    ``training.loaders`` as format "lab")."""
    comparisons = preference_comparisons(
        include_weakest=include_weakest, campaign_slug=campaign_slug
    ).select_related(
        "turn__conversation__campaign", "chosen__model_version", "rejected__model_version"
    )
    for comparison in comparisons.iterator(chunk_size=500):
        context = dialogue_before(comparison.turn)
        campaign = comparison.turn.conversation.campaign
        yield {
            "id": comparison.pk,
            "campaign": campaign.slug if campaign else None,
            "context": [
                {"role": "user" if m.role == HUMAN else "assistant", "content": m.text}
                for m in context
            ],
            "chosen": comparison.chosen.text,
            "rejected": comparison.rejected.text,
            "strength": comparison.strength,
            "chosen_model": _model_name(comparison.chosen),
            "rejected_model": _model_name(comparison.rejected),
            "source": comparison.source,
            "created_at": comparison.created_at.isoformat(),
        }


def _model_name(candidate: CandidateResponse) -> str | None:
    return candidate.model_version.name if candidate.model_version else None


def active_preference_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(kind=ModelVersion.Kind.PREFERENCE, is_active=True).first()


def candidate_groups(turn_id: int) -> dict[tuple[str, str], list[int]]:
    """(model spec, prompt) → slots still waiting for generation. Candidates from one
    assistant are generated together, sharing one prefill of the dialogue."""
    groups: dict[tuple[str, str], list[int]] = {}
    waiting = CandidateResponse.objects.filter(
        turn_id=turn_id,
        status__in=[CandidateResponse.Status.PENDING, CandidateResponse.Status.RUNNING],
        model_version__isnull=False,
    ).select_related("model_version")
    for candidate in waiting.order_by("slot"):
        version = candidate.model_version
        groups.setdefault((version.spec, version.prompt), []).append(candidate.slot)
    return groups


def training_run(run_id: int) -> TrainingRun:
    return TrainingRun.objects.get(pk=run_id)


def evaluation_run(run_id: int) -> EvaluationRun:
    return EvaluationRun.objects.select_related("model_version").get(pk=run_id)


def comparisons_since_last_training() -> int:
    """Usable comparisons newer than the last successful run (all of them before one)."""
    last = (
        TrainingRun.objects.filter(status=TrainingRun.Status.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    qs = preference_comparisons()
    if last is not None:
        qs = qs.filter(created_at__gt=last.created_at)
    return qs.count()

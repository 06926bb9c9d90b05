"""Small helpers that drive the services the way the worker and the UI do."""

from labeling.models import CandidateResponse, Turn
from labeling.services import generation


def finish_candidates(turn: Turn, texts=("first reply", "second reply")) -> None:
    """What a Celery worker does for a turn, without a model: claim, then complete."""
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    for candidate, text in zip(claimed, texts, strict=True):
        generation.candidate_complete(
            candidate_id=candidate.pk,
            text=text,
            token_count=3,
            finish_reason="eos",
            seconds=0.1,
            seed=7,
        )


def candidates_by_slot(turn: Turn) -> dict[int, CandidateResponse]:
    return {c.slot: c for c in turn.candidates.all()}

"""Small helpers that drive the services the way the worker and the UI do."""

from labeling.models import Campaign, CandidateResponse, Turn
from labeling.services import generation


def finish_candidates(turn: Turn, texts=("first reply", "second reply")) -> None:
    """What a Celery worker does for a turn, without a model: claim, then complete."""
    claimed = generation.candidates_claim(turn_id=turn.pk, stale_after_s=120)
    complete_candidates(claimed, texts)


def complete_candidates(claimed: list[CandidateResponse], texts) -> None:
    """Complete claimed candidates with ``texts``, one each, as a worker does."""
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


def shown(turn: Turn) -> list[CandidateResponse]:
    """A turn's candidates in the order its worker sees them (A first)."""
    by_slot = candidates_by_slot(turn)
    return [by_slot[slot] for slot in turn.display_order]


def top_and_rest(judgment) -> tuple[CandidateResponse, list[CandidateResponse]]:
    """The candidate the answer put on top (better, or more harmful), and the others."""
    entries = sorted(judgment.entries.select_related("candidate"), key=lambda e: e.rank)
    return entries[0].candidate, [e.candidate for e in entries[1:]]


def ranking_campaign(assistant, *, k: int, ties: bool = False, slug: str | None = None):
    """A ranking campaign: K responses per item from ``assistant``, best first."""
    return Campaign.objects.create(
        name=f"Rank {k}",
        slug=slug or f"rank-{k}",
        kind=Campaign.Kind.RANKING,
        instructions="Order the responses from the best to the worst.",
        candidates_per_item=k,
        allow_ties=ties,
        model_a=assistant,
        model_b=assistant,
        max_new_tokens=8,
    )


def rejudge_campaign(source: Campaign, *, slug: str = "rejudge") -> Campaign:
    """A re-judge campaign over ``source``'s turns."""
    return Campaign.objects.create(
        name=f"Re-judge {source.name}",
        slug=slug,
        kind=Campaign.Kind.REJUDGE,
        instructions="Judge another worker's turn on your own.",
        source_campaign=source,
    )

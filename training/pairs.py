"""Small, pure helpers on lists of preference pairs."""

from __future__ import annotations

from models_backend.dialogue import Pair


def split_holdout(pairs: list[Pair], *, every: int = 10) -> tuple[list[Pair], list[Pair]]:
    """Deterministic split: every ``every``-th pair is held out for evaluation.

    With fewer than ``every`` pairs the last one is held out, so both sides are non-empty.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 comparisons to train and evaluate, have {len(pairs)}")
    if every < 2:
        raise ValueError("every must be at least 2")
    held = {i for i in range(len(pairs)) if i % every == every - 1} or {len(pairs) - 1}
    train = [p for i, p in enumerate(pairs) if i not in held]
    return train, [p for i, p in enumerate(pairs) if i in held]

"""Small, pure helpers on lists of comparisons (``Pair`` or ``Ranking`` objects)."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")  # a Pair or a Ranking


def split_holdout(pairs: list[T], *, every: int = 10) -> tuple[list[T], list[T]]:
    """Deterministic split: every ``every``-th item is held out for evaluation.

    With fewer than ``every`` items the last one is held out, so both sides are non-empty.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 comparisons to train and evaluate, have {len(pairs)}")
    if every < 2:
        raise ValueError("every must be at least 2")
    held = {i for i in range(len(pairs)) if i % every == every - 1} or {len(pairs) - 1}
    train = [p for i, p in enumerate(pairs) if i not in held]
    return train, [p for i, p in enumerate(pairs) if i in held]

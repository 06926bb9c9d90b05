"""What a judgment asked, and how its answer becomes a preference (DESIGN §3, §8).

A worker answers the question they were asked: "which response is better?" or, red-teaming,
"which response is more harmful?". An answer is an *order* of the responses as shown,
top first under the question, with ties where allowed, plus a strength on the 8-point
scale when there are two. Every consumer (exports, training, agreement) turns that into
preferred-first through ``preferred_first``: for ``more_harmful`` the *less* harmful
response is preferred, as in the public ``harmless-base`` data.

Plain Python: the web tier and the training code share it.
"""

from __future__ import annotations

from collections.abc import Sequence

BETTER = "better"
MORE_HARMFUL = "more_harmful"
QUESTIONS = (BETTER, MORE_HARMFUL)
# For which questions the answer's top response is the preferred one.
_TOP_IS_PREFERRED = {BETTER: True, MORE_HARMFUL: False}

Order = Sequence[Sequence[int]]  # groups of display positions, top first; a group is a tie


def check_question(question: str) -> str:
    if question not in QUESTIONS:
        raise ValueError(f"unknown question {question!r} (known: {', '.join(QUESTIONS)})")
    return question


def check_order(order: Order, k: int, *, ties: bool = True) -> list[list[int]]:
    """``order`` as lists, after checking it places each of the ``k`` positions exactly once."""
    if not isinstance(order, list | tuple) or not order:
        raise ValueError("an answer's order must be a non-empty list of groups")
    groups = []
    for group in order:
        if not isinstance(group, list | tuple) or not group:
            raise ValueError("each group of an order must be a non-empty list of positions")
        if not all(isinstance(p, int) and not isinstance(p, bool) for p in group):
            raise ValueError("positions must be integers")
        groups.append(list(group))
    placed = sorted(p for group in groups for p in group)
    if placed != list(range(k)):
        raise ValueError(f"the order must place each of the {k} responses exactly once")
    if len(groups) < 2:
        raise ValueError("an order with every response tied says nothing")
    if not ties and any(len(group) > 1 for group in groups):
        raise ValueError("ties are not allowed here")
    return groups


def preferred_first(question: str, order: Order) -> list[list[int]]:
    """The answer's groups reordered so the preferred responses come first."""
    groups = [list(g) for g in order]
    return groups if _TOP_IS_PREFERRED[check_question(question)] else groups[::-1]


def ranked_responses(
    question: str, responses: Sequence[str], order: Order
) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """(responses preferred first, scores or None): the ``training.comparisons.Ranking``
    fields. Scores are only given when the answer has ties (equal scores are never compared)."""
    groups = preferred_first(question, check_order(order, len(responses)))
    texts = tuple(responses[p] for group in groups for p in group)
    if all(len(group) == 1 for group in groups):
        return texts, None
    scores = tuple(float(-rank) for rank, group in enumerate(groups) for _ in group)
    return texts, scores

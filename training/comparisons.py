"""One data API for every preference objective: a context and its responses, best first.

Every loader (``training.loaders``) yields ``Ranking`` objects: a pair is a ranking of
two, a K-way ranking has K responses, a multiple-choice item is "correct > each wrong".
Objectives consume them through ``weighted_pairs`` (DESIGN §3):

- ranked PM: every pair (i better than j, i < j) of a ranking, each weighted 1 / C(K, 2),
  so a ranking counts as much as one pair whatever its K;
- binary discrimination: the same PM head and loss on "context + right label" >
  "context + wrong label" (the loaders for labelled data build exactly such rankings);
- imitation learning: LM loss on the best response only.

``binarize`` is the PMP transform: A > B becomes GOOD:A > BAD:A and BAD:B > GOOD:B.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from models_backend.dialogue import Message

GOOD = "GOOD:"  # PMP binarization labels, prepended to a response
BAD = "BAD:"


@dataclass(frozen=True)
class Ranking:
    context: tuple[Message, ...]  # the dialogue before the responses; ends with a human turn
    responses: tuple[str, ...]  # best first; at least two
    source: str = ""  # where it came from ("path:line"), for error messages and reports
    # Each response's score, non-increasing: responses with equal scores are tied and never
    # compared (a multiple-choice item's wrong answers; BIG-bench's graded choices).
    # None: a strict order.
    scores: tuple[float, ...] | None = None

    def __post_init__(self):
        if len(self.responses) < 2:
            raise ValueError(f"{self.source}: a ranking needs at least two responses")
        if self.scores is not None:
            if len(self.scores) != len(self.responses):
                raise ValueError(f"{self.source}: one score per response")
            if any(a < b for a, b in itertools.pairwise(self.scores)):
                raise ValueError(f"{self.source}: scores must not increase (best first)")
            if self.scores[0] == self.scores[-1]:
                raise ValueError(f"{self.source}: every response has the same score")

    def better(self, i: int, j: int) -> bool:
        """Response i ranks strictly above response j."""
        return self.scores[i] > self.scores[j] if self.scores is not None else i < j


@dataclass(frozen=True)
class WeightedPair:
    context: tuple[Message, ...]
    better: str
    worse: str
    weight: float  # 1 / (number of pairs its ranking gave), so each ranking weighs 1


def from_pairs(pairs) -> list[Ranking]:
    """hh-rlhf ``Pair`` objects (context, chosen, rejected) as rankings of two."""
    return [Ranking(tuple(p.context), (p.chosen, p.rejected)) for p in pairs]


def ranking_pairs(ranking: Ranking) -> list[tuple[int, int]]:
    """(better, worse) index pairs of a ranking: all ordered pairs, none within a tie."""
    k = len(ranking.responses)
    return [(i, j) for i in range(k) for j in range(i + 1, k) if ranking.better(i, j)]


def good_vs_bad_pairs(ranking: Ranking) -> list[tuple[int, int]]:
    """Binary discrimination sees only "good" (the best) and "bad" (every response ranked
    below it)."""
    return [(0, j) for j in range(1, len(ranking.responses)) if ranking.better(0, j)]


def weighted_pairs(rankings: list[Ranking], *, binary: bool = False) -> list[WeightedPair]:
    """Every ranking's pairs, each weighted 1 / (its ranking's number of pairs).

    ``binary``: the best response against each other one (binary discrimination), rather
    than every ordered pair (ranked preference modelling).
    """
    pairs = []
    for ranking in rankings:
        indices = good_vs_bad_pairs(ranking) if binary else ranking_pairs(ranking)
        weight = 1.0 / len(indices)
        pairs += [
            WeightedPair(ranking.context, ranking.responses[i], ranking.responses[j], weight)
            for i, j in indices
        ]
    return pairs


def pairs_per_ranking(k: int) -> int:
    """C(K, 2): the pairs a strict ranking of K responses gives."""
    return math.comb(k, 2)


def binarize(pair: WeightedPair) -> list[WeightedPair]:
    """PMP's binarized data: A > B becomes GOOD:A > BAD:A and BAD:B > GOOD:B, two
    independent pairs, each with the pair's weight."""
    a, b = pair.better, pair.worse
    return [
        WeightedPair(pair.context, f"{GOOD} {a}", f"{BAD} {a}", pair.weight),
        WeightedPair(pair.context, f"{BAD} {b}", f"{GOOD} {b}", pair.weight),
    ]

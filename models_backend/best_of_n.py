"""Best-of-n: sample n responses per slot, score them with a preference model, keep the best.

Later rounds of the paper's data collection sampled against the current PM ("online"
collection). A campaign's pair policy says which two responses the crowdworker compares:

- ``best_each``: each slot shows the best of its own model's n samples (A's best vs B's best);
- ``top_two``: all samples of both slots in one pool, the two best shown; each slot
  records which model actually wrote its text. With one model in both slots this compares
  the PM's two favourites, the hardest comparisons for the next PM;
- ``uncertain``: the pair the PM is least sure about, A from slot 0's samples and B from
  slot 1's (with one model in both slots, two sample sets of that model): the pair whose
  predicted preference P(A > B) = σ(r_A − r_B) is closest to 0.5, i.e. whose rewards lie
  closest together. Ties go to the pair with the higher reward sum r_A + r_B, then to the
  earlier sample of slot 0, then to the earlier sample of slot 1 (the order they were
  sampled in). Uncertainty sampling: a label where the current PM is least sure.

Every shown pair of two slots also records ``P_A_OVER_B``: the PM's σ(r_A − r_B), slot 0
being A (model A's slot), whatever order a worker saw them in.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from models_backend.dialogue import Message

if TYPE_CHECKING:  # generation imports torch; the web process reads POLICIES without it
    from models_backend.generation import Candidate


@dataclass(frozen=True)
class Scored:
    candidate: Candidate
    source: int  # the slot whose model wrote it
    reward: float  # the preference model's score


def _reward(scored: Scored) -> float:
    return scored.reward


def _best_each(samples: dict[int, list[Scored]]) -> dict[int, Scored]:
    return {slot: max(samples[slot], key=_reward) for slot in sorted(samples)}


def _top_two(samples: dict[int, list[Scored]]) -> dict[int, Scored]:
    slots = sorted(samples)
    pool = sorted((s for slot in slots for s in samples[slot]), key=_reward, reverse=True)
    return dict(zip(slots, pool, strict=False))


def _uncertain(samples: dict[int, list[Scored]]) -> dict[int, Scored]:
    first, second = sorted(samples)  # ``choose`` checked there are exactly two slots
    # min keeps the first of equal keys: product order is slot 0's samples, then slot 1's
    a, b = min(
        itertools.product(samples[first], samples[second]),
        key=lambda pair: (abs(pair[0].reward - pair[1].reward), -(pair[0].reward + pair[1].reward)),
    )
    return {first: a, second: b}


def preference_probability(reward_a: float, reward_b: float) -> float:
    """The PM's P(A > B) = σ(r_A − r_B), without overflow for large differences."""
    margin = reward_a - reward_b
    if margin >= 0:
        return 1 / (1 + math.exp(-margin))
    return math.exp(margin) / (1 + math.exp(margin))


P_A_OVER_B = "p_a_over_b"  # the selection key of the shown pair's σ(r_slot0 − r_slot1)
TWO_SLOTS = ("uncertain",)  # policies that compare exactly two slots


@dataclass(frozen=True)
class PairPolicy:
    label: str  # what a researcher reads in the campaign form
    pick: Callable[[dict[int, list[Scored]]], dict[int, Scored]]  # samples -> slot's shown one


# The one registry: the campaign field's choices and ``choose`` both read it.
POLICIES: dict[str, PairPolicy] = {
    "best_each": PairPolicy("Each slot shows the best of its model's samples", _best_each),
    "top_two": PairPolicy("The two best of all samples", _top_two),
    "uncertain": PairPolicy(
        "The pair the preference model is least sure about (P(A > B) nearest 0.5)", _uncertain
    ),
}


def choose(policy: str, samples: dict[int, list[Scored]]) -> dict[int, Scored]:
    """slot -> the response shown there, by ``policy``; ``samples`` maps slot -> its n samples."""
    if policy not in POLICIES:
        raise ValueError(f"unknown pair policy {policy!r} (known: {', '.join(POLICIES)})")
    if not samples or not all(samples.values()):
        raise ValueError("every slot needs at least one sample")
    if policy in TWO_SLOTS and len(samples) != 2:
        raise ValueError(f"the {policy} policy compares exactly two slots, not {len(samples)}")
    return POLICIES[policy].pick(samples)


def shown_pair_selection(shown: dict[int, Scored]) -> dict:
    """What a shown pair adds to each reply's ``selection``: the PM's P(A > B) for two slots."""
    if len(shown) != 2:
        return {}
    first, second = sorted(shown)
    return {P_A_OVER_B: preference_probability(shown[first].reward, shown[second].reward)}


class RewardScorer:
    """A preference model loaded once per process, scoring responses to one dialogue."""

    def __init__(self, spec: str):
        from models_backend.reward import load_preference_model

        self.spec = spec
        self.pm, self.tokenizer = load_preference_model(spec)

    def __call__(self, messages: list[Message], texts: list[str]) -> list[float]:
        from models_backend.reward import score_responses

        return score_responses(self.pm, self.tokenizer, messages, texts)


_scorers: dict[str, RewardScorer] = {}
_lock = threading.Lock()


def get_scorer(spec: str) -> RewardScorer:
    """The process-wide scorer for a PM directory (a new active PM loads once, on first use)."""
    with _lock:
        if spec not in _scorers:
            _scorers.clear()  # only the active PM is used: free the one it replaced
            _scorers[spec] = RewardScorer(spec)
        return _scorers[spec]

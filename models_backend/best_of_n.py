"""Best-of-n: sample n responses per slot, score them with a preference model, keep the best.

Later rounds of the paper's data collection sampled against the current PM ("online"
collection). A campaign's pair policy says which two responses the crowdworker compares:

- ``best_each``: each slot shows the best of its own model's n samples (A's best vs B's best);
- ``top_two``: all samples of both slots in one pool, the two best shown; each slot
  records which model actually wrote its text. With one model in both slots this compares
  the PM's two favourites, the hardest comparisons for the next PM.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class PairPolicy:
    label: str  # what a researcher reads in the campaign form
    pick: Callable[[dict[int, list[Scored]]], dict[int, Scored]]  # samples -> slot's shown one


# The one registry: the campaign field's choices and ``choose`` both read it.
POLICIES: dict[str, PairPolicy] = {
    "best_each": PairPolicy("Each slot shows the best of its model's samples", _best_each),
    "top_two": PairPolicy("The two best of all samples", _top_two),
}


def choose(policy: str, samples: dict[int, list[Scored]]) -> dict[int, Scored]:
    """slot -> the response shown there, by ``policy``; ``samples`` maps slot -> its n samples."""
    if policy not in POLICIES:
        raise ValueError(f"unknown pair policy {policy!r} (known: {', '.join(POLICIES)})")
    if not samples or not all(samples.values()):
        raise ValueError("every slot needs at least one sample")
    return POLICIES[policy].pick(samples)


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

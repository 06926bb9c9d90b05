"""The three objectives of the paper on one data API, computed from one packed forward pass.

- ``ranked``: a scalar reward per response; every ordered pair of a ranking adds
  ``w · log(1 + exp(r_worse − r_better))`` with w = 1 / C(K, 2);
- ``binary``: the same head and loss on "good" (the best response) against each "bad"
  (every other), w = 1 / (K − 1);
- ``imitation``: LM loss on the best response's tokens only; responses are compared by
  their mean per-token log-prob.

PMP (``pmp=True``, ranked or binary): each pair A > B is binarized into
GOOD:A > BAD:A and BAD:B > GOOD:B, and the LM loss on the good sequences is added to the
PM loss (weight 1 each, DESIGN §3).

A ``Unit`` is one context with its responses, encoded once; a batch of units is packed
(``training.packing``) so each context runs once however many responses it has.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from models_backend.reward import encode_responses
from training.comparisons import BAD, GOOD, Ranking, good_vs_bad_pairs, ranking_pairs
from training.packing import (
    Group,
    PackedBatch,
    mean_logprobs,
    pack,
    packed_hidden,
    rewards_from,
    token_logprobs,
)

OBJECTIVES = ("ranked", "binary", "imitation")


@dataclass(frozen=True)
class Unit:
    context: list[int]  # shared context ids
    responses: list[list[int]]  # each response's ids, EOC last
    pairs: tuple[tuple[int, int, float], ...]  # (better, worse, weight) response indices
    lm: tuple[int, ...]  # responses whose tokens get the LM loss
    lengths: tuple[int, ...]  # each response's length in characters (the length baseline)
    truncated: bool  # the context was cut from the left to fit

    @property
    def size(self) -> int:
        return len(self.context) + sum(map(len, self.responses))


def build_units(
    tokenizer, rankings: list[Ranking], *, objective: str, pmp: bool = False, max_length: int
) -> tuple[list[Unit], int]:
    """One unit per ranking (over-long contexts cut from the left); returns the units and
    how many were truncated. None is dropped."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r} (known: {', '.join(OBJECTIVES)})")
    if pmp and objective == "imitation":
        raise ValueError("PMP pre-trains a preference model: use it with ranked or binary")
    units = [_unit(tokenizer, r, objective, pmp, max_length) for r in rankings]
    return units, sum(u.truncated for u in units)


def _unit(tokenizer, ranking: Ranking, objective: str, pmp: bool, max_length: int) -> Unit:
    indices = good_vs_bad_pairs(ranking) if objective == "binary" else ranking_pairs(ranking)
    weight = 1.0 / len(indices)
    if pmp:  # A > B: GOOD:A > BAD:A and BAD:B > GOOD:B, four responses per pair
        texts, pairs, lm = [], [], []
        for i, j in indices:
            a, b = ranking.responses[i], ranking.responses[j]
            base = len(texts)
            texts += [f"{GOOD} {a}", f"{BAD} {a}", f"{BAD} {b}", f"{GOOD} {b}"]
            pairs += [(base, base + 1, weight), (base + 3, base + 2, weight)]
            lm += [base, base + 3]
    else:
        texts = list(ranking.responses)
        pairs = [(i, j, weight) for i, j in indices]
        lm = [0] if objective == "imitation" else []
    encoded = encode_responses(tokenizer, list(ranking.context), texts, max_length=max_length)
    n = encoded.context_length
    return Unit(
        context=encoded.sequences[0][:n],
        responses=[s[n:] for s in encoded.sequences],
        pairs=tuple(pairs),
        lm=tuple(lm),
        lengths=tuple(len(t) for t in texts),
        truncated=encoded.truncated,
    )


def pack_units(units: list[Unit], *, pad: int) -> PackedBatch:
    return pack([Group(u.context, u.responses) for u in units], pad=pad)


@dataclass
class Scored:
    """One packed batch's outputs: a score per response and the loss of the objective."""

    scores: torch.Tensor  # [N] rewards, or mean log-probs for imitation
    loss: torch.Tensor  # scalar: the mean over units of each unit's objective


def score_batch(pm, batch: PackedBatch, units: list[Unit], *, objective: str, pmp: bool) -> Scored:
    hidden = packed_hidden(pm, batch)
    starts = _starts(units)  # index of each unit's first response among the N
    if objective == "imitation":
        values = token_logprobs(pm, hidden, batch)  # [M]
        chosen = torch.tensor(
            [starts[u] + k for u, unit in enumerate(units) for k in unit.lm], device=values.device
        )
        keep = torch.isin(batch.token_owner, chosen)
        loss = -values[keep].mean()
        return Scored(mean_logprobs(pm, hidden, batch).detach(), loss)
    rewards = rewards_from(pm, hidden, batch)  # [N]
    better, worse, weight = _pair_tensors(units, starts, rewards.device)
    pair_loss = (weight * F.softplus(rewards[worse] - rewards[better])).sum() / len(units)
    if pmp:
        values = token_logprobs(pm, hidden, batch)
        goods = torch.tensor(
            [starts[u] + k for u, unit in enumerate(units) for k in unit.lm], device=values.device
        )
        pair_loss = pair_loss - values[torch.isin(batch.token_owner, goods)].mean()
    return Scored(rewards, pair_loss)


class PackedScorer(torch.nn.Module):
    """``score_batch`` as a module's forward pass: what accelerate wraps in DDP, whose
    gradient sync hooks run only when the forward goes through the wrapper."""

    def __init__(self, pm, *, objective: str, pmp: bool):
        super().__init__()
        self.pm = pm
        self.objective = objective
        self.pmp = pmp

    def forward(self, batch: PackedBatch, units: list[Unit]) -> Scored:
        return score_batch(self.pm, batch, units, objective=self.objective, pmp=self.pmp)


def _starts(units: list[Unit]) -> list[int]:
    starts, at = [], 0
    for unit in units:
        starts.append(at)
        at += len(unit.responses)
    return starts


def _pair_tensors(units: list[Unit], starts: list[int], device) -> tuple:
    rows = [
        (starts[u] + i, starts[u] + j, w) for u, unit in enumerate(units) for i, j, w in unit.pairs
    ]
    better, worse, weight = zip(*rows, strict=True)
    return (
        torch.tensor(better, device=device),
        torch.tensor(worse, device=device),
        torch.tensor(weight, device=device, dtype=torch.float32),
    )


def pair_margins(units: list[Unit], scores: list[torch.Tensor]) -> list[dict]:
    """Per pair: score margin (better − worse), weight, and the length-baseline verdict."""
    rows = []
    for unit, unit_scores in zip(units, scores, strict=True):
        for i, j, w in unit.pairs:
            rows.append(
                {
                    "margin": float(unit_scores[i] - unit_scores[j]),
                    "weight": w,
                    "length": (unit.lengths[i] > unit.lengths[j])
                    + 0.5 * (unit.lengths[i] == unit.lengths[j]),
                }
            )
    return rows

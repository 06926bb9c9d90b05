"""Simulated collection: unordered pairs, labels behind an oracle, a frozen-feature PM head.

The learner sees a pool of pairs (A, B) of feature rows, its side "A" drawn at random, and
nothing else until it reveals a pair's label through the ``LabelOracle``, which logs every
read. Held-out pairs have an oracle of their own that only ever answers "how many of these
predictions are right" (``LabelOracle.accuracy``): their labels never reach the learner.

The learner is a linear value head on frozen features: r(x) = w · φ(x), trained with the
PM loss Σ log(1 + exp(−s (r_A − r_B))) (s = +1 where A is preferred, −1 where B is) plus
``l2``/2 · |w|² (a Gaussian prior on w), fitted with L-BFGS (scipy) from w = 0, so a fit
is deterministic and takes milliseconds. Features are standardised (``standardise``) with
statistics of the pool's responses only, without any label.

Selection (``simulate``): both strategies start from the same random seed set of the
smallest budget (the first pairs of a seeded permutation of the pool); ``random`` then
takes the permutation's next pairs, ``uncertain`` refits the head on every label so far
and takes the ``batch`` unlabelled pairs whose predicted P(A > B) = σ(r_A − r_B) is
closest to 0.5 (``closest_to_even``), until each budget is reached and scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

STRATEGIES = ("random", "uncertain")


class LabelOracle:
    """Pair labels (True: A is preferred) that are only read through a logged call."""

    def __init__(self, labels) -> None:
        self._labels = np.asarray(labels, dtype=bool)  # [P]
        self.revealed: list[int] = []  # every pair whose label was read to train on, in order
        self.scorings = 0  # how many times every label was read to score predictions

    def __len__(self) -> int:
        return len(self._labels)

    def reveal(self, index: int) -> bool:
        """One pair's label, for training: logged in ``revealed``."""
        self.revealed.append(int(index))
        return bool(self._labels[index])

    def accuracy(self, margins: np.ndarray) -> float:
        """The fraction of pairs whose predicted r_A − r_B has the label's sign (0 is wrong);
        held-out scoring, counted in ``scorings``."""
        self.scorings += 1
        margins = np.asarray(margins, dtype=float)  # [P]
        right = np.where(self._labels, margins > 0, margins < 0)
        return float(right.mean())


@dataclass(frozen=True)
class Pairs:
    a: np.ndarray  # [P] int: the feature row of each pair's side "A"
    b: np.ndarray  # [P] int: the feature row of side "B"

    def __len__(self) -> int:
        return len(self.a)


@dataclass(frozen=True)
class Task:
    """One seed's view of a setting: what the learner may see, and the oracles."""

    features: np.ndarray  # [R, H] standardised response features
    pool: Pairs  # pairs it may select from
    oracle: LabelOracle  # the pool's labels
    test: Pairs  # held-out pairs, never selected from
    test_oracle: LabelOracle  # their labels, for scoring only


@dataclass(frozen=True)
class Run:
    accuracies: list[float]  # held-out accuracy at each budget
    selected: list[int]  # pool pairs in the order they were labelled


def standardise(features: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Features [R, H] centred and scaled per dimension by the mean and standard deviation
    of ``reference`` [R', H], then divided by √H so a response's feature vector has about
    unit norm (one ``l2`` suits any width)."""
    mean = reference.mean(0)
    scale = reference.std(0)
    scale[scale == 0] = 1.0
    return ((features - mean) / scale / math.sqrt(features.shape[1])).astype(np.float64)


def fit_head(differences: np.ndarray, preferred_a: np.ndarray, l2: float) -> np.ndarray:
    """w [H] minimising Σ softplus(−s · x·w) + l2/2 · |w|² over pairs x = φ_A − φ_B [n, H]."""
    sign = np.where(preferred_a, 1.0, -1.0)  # [n]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margins = sign * (differences @ w)  # [n]
        value = np.logaddexp(0.0, -margins).sum() + 0.5 * l2 * w @ w
        gradient = -(differences.T @ (sign * expit(-margins))) + l2 * w
        return value, gradient

    start = np.zeros(differences.shape[1])
    return minimize(loss, start, jac=True, method="L-BFGS-B").x


def margins(w: np.ndarray, features: np.ndarray, pairs: Pairs, which=slice(None)) -> np.ndarray:
    """r_A − r_B [n] of ``pairs[which]`` under head ``w``."""
    return (features[pairs.a[which]] - features[pairs.b[which]]) @ w


def closest_to_even(pair_margins: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` pairs whose σ(margin) is closest to 0.5, i.e. the smallest
    |margin|; equal ones in position order."""
    return np.argsort(np.abs(pair_margins), kind="stable")[:k]


def simulate(
    task: Task, strategy: str, budgets: list[int], *, seed: int, batch: int, l2: float
) -> Run:
    """Label pairs by ``strategy`` up to each budget in turn; score the head at each."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})")
    order = np.random.default_rng(seed).permutation(len(task.pool))
    selected = [int(i) for i in order[: budgets[0]]]  # the seed set: the same for both
    labels = [task.oracle.reveal(i) for i in selected]
    accuracies = []
    for budget in budgets:
        while len(selected) < budget:
            take = min(batch, budget - len(selected))
            if strategy == "random":
                new = order[len(selected) : len(selected) + take]
            else:
                w = _fit(task, selected, labels, l2)
                rest = np.setdiff1d(np.arange(len(task.pool)), selected)  # ascending
                new = rest[closest_to_even(margins(w, task.features, task.pool, rest), take)]
            selected += [int(i) for i in new]
            labels += [task.oracle.reveal(i) for i in new]
        w = _fit(task, selected, labels, l2)
        accuracies.append(task.test_oracle.accuracy(margins(w, task.features, task.test)))
    return Run(accuracies, selected)


def _fit(task: Task, selected: list[int], labels: list[bool], l2: float) -> np.ndarray:
    pool, features = task.pool, task.features
    differences = features[pool.a[selected]] - features[pool.b[selected]]  # [n, H]
    return fit_head(differences, np.asarray(labels), l2)


def labels_to_reach(budgets: list[int], accuracies: list[float], target: float) -> float | None:
    """The labels a curve (mean accuracy at each budget) needs to reach ``target``: its first
    crossing, linear in log(labels) between budgets; the smallest budget if it starts at or
    above it (so "at most"); None if it never reaches it."""
    if accuracies[0] >= target:
        return float(budgets[0])
    points = list(zip(budgets, accuracies, strict=True))
    for (n0, a0), (n1, a1) in zip(points, points[1:], strict=False):
        if a0 < target <= a1:
            t = (target - a0) / (a1 - a0)
            return math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))
    return None

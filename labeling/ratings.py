"""Model strengths from battles (DESIGN §7-8): a Bradley–Terry fit by maximum likelihood, with
bootstrap intervals, and optionally *style control* as in Chatbot Arena: a contextual fit with
the normalised length difference of the two responses as a covariate, whose own coefficient
takes up the preference for longer responses. Pure: numpy and scipy.optimize.

A battle is (model i, model j, outcome): 1 when i's response was preferred, 0 when j's was,
0.5 for a tie (counted as half a win each, as Chatbot Arena counts ties). The model:

    P(i preferred over j) = sigmoid(s_i - s_j + beta · x)

with x the battle's covariates (none, or the length difference). Strengths are log-odds:
s_i - s_j = 1 means i is preferred e : 1 (73%) over j. They are anchored to mean 0 over the
models fitted; ``elo`` puts them on an Elo-like display scale (mean 1000, 400 points per
factor of ten in odds).

A small ridge (``RIDGE``, the penalty scikit-learn's C = 1e6 gives Chatbot Arena's fit) keeps
the fit finite when a model never loses or never wins (the unpenalised maximum is then at
infinity): such a model gets a large but finite strength, and a wide interval. It moves
ordinary fits by far less than 1e-4.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

RIDGE = 1e-6  # L2 penalty on every parameter (strengths and coefficients), see above
ELO_SCALE = 400 / math.log(10)  # display points per unit of log-odds
ELO_BASE = 1000.0  # display value of the mean model


class Battle(NamedTuple):
    model_i: Hashable
    model_j: Hashable
    outcome: float  # 1: i preferred, 0: j preferred, 0.5: tie


@dataclass(frozen=True)
class Fit:
    strengths: dict[Hashable, float]  # log-odds, mean 0 over the models, best first
    coefficients: tuple[float, ...]  # one per covariate column; empty without covariates


def length_feature(length_i: float, length_j: float) -> float:
    """Chatbot Arena's length covariate: (len_i - len_j) / (len_i + len_j), in [-1, 1]
    whatever the unit (characters or tokens); 0 for two empty responses."""
    total = length_i + length_j
    return (length_i - length_j) / total if total else 0.0


def elo(strength: float) -> float:
    """A strength (log-odds) on the Elo-like display scale."""
    return ELO_BASE + ELO_SCALE * strength


def bradley_terry(
    battles: Sequence[tuple[Hashable, Hashable, float]],
    *,
    covariates: Sequence[Sequence[float]] | None = None,
    ridge: float = RIDGE,
) -> Fit:
    """Maximum-likelihood (ridge-penalised, see the module) strengths of the models in
    ``battles``; ``covariates``: one row of features per battle (e.g. ``[length_feature]``),
    each with a coefficient of its own, returned in ``Fit.coefficients``."""
    models, design, outcome, counts, _ = _collapsed(battles, covariates)
    return _fit(models, design, outcome, counts, ridge)


def bootstrap_intervals(
    battles: Sequence[tuple[Hashable, Hashable, float]],
    resamples: int = 100,
    seed: int = 0,
    *,
    covariates: Sequence[Sequence[float]] | None = None,
    ridge: float = RIDGE,
) -> dict[Hashable, tuple[float, float]]:
    """95% percentile intervals of each model's strength over ``resamples`` fits to battles
    drawn with replacement (Chatbot Arena's 100). A model absent from a resample is left out
    of that resample's fit and percentiles (it would otherwise sit at the ridge's 0)."""
    models, design, outcome, _, row_of = _collapsed(battles, covariates)
    n = len(row_of)
    rng = np.random.default_rng(seed)
    draws: dict[Hashable, list[float]] = {}
    for _ in range(resamples):
        drawn = np.bincount(rng.integers(n, size=n), minlength=n)
        weights = np.bincount(row_of, weights=drawn, minlength=len(outcome))
        for model, strength in _fit(models, design, outcome, weights, ridge).strengths.items():
            draws.setdefault(model, []).append(strength)
    intervals = {}
    for model, values in draws.items():
        low, high = np.percentile(values, [2.5, 97.5])
        intervals[model] = (float(low), float(high))
    return intervals


def _collapsed(battles, covariates):
    """(models in order of first appearance, the distinct rows of the design matrix — +1 for
    i, -1 for j, then the covariates — their outcomes, how many battles each row stands
    for, and each battle's row). Identical battles become one weighted row: without
    covariates a few dozen rows stand for any number of battles."""
    if not battles:
        raise ValueError("no battles to fit")
    models = list(dict.fromkeys(m for i, j, _ in battles for m in (i, j)))
    index = {model: k for k, model in enumerate(models)}
    x = np.zeros((len(battles), 0)) if covariates is None else np.asarray(covariates, float)
    if x.ndim != 2 or len(x) != len(battles):
        raise ValueError("covariates need one row per battle")
    rows = np.zeros((len(battles), len(models) + x.shape[1] + 1))
    for row, (i, j, y) in enumerate(battles):
        if i == j:
            raise ValueError(f"a model cannot battle itself ({i!r})")
        if y not in (0, 0.5, 1):
            raise ValueError("an outcome is 1, 0 or 0.5")
        rows[row, index[i]], rows[row, index[j]], rows[row, -1] = 1.0, -1.0, y
    rows[:, len(models) : -1] = x
    distinct, row_of, counts = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    return models, distinct[:, :-1], distinct[:, -1], counts.astype(float), row_of.reshape(-1)


def _fit(models, design, outcome, weights, ridge) -> Fit:
    """The fit of the weighted rows, over the models that appear in a row of weight > 0."""
    m = len(models)
    used = weights > 0
    present = np.abs(design[used, :m]).sum(axis=0) > 0
    columns = np.concatenate([present, np.ones(design.shape[1] - m, dtype=bool)])
    theta = _maximise(design[used][:, columns], outcome[used], weights[used], ridge)
    k = int(present.sum())
    strengths = theta[:k] - theta[:k].mean()
    names = [model for model, here in zip(models, present, strict=True) if here]
    ranked = sorted(zip(names, strengths, strict=True), key=lambda pair: -pair[1])
    return Fit(
        strengths={model: float(s) for model, s in ranked},
        coefficients=tuple(float(b) for b in theta[k:]),
    )


def _maximise(
    design: np.ndarray, outcome: np.ndarray, weights: np.ndarray, ridge: float
) -> np.ndarray:
    """The penalised weighted log-likelihood's maximum. Newton steps in a trust region (the
    Hessian is small: one row and column per model and covariate); convex, so any start
    will do."""

    def loss(theta):
        z = design @ theta
        # -log-likelihood of fractional outcomes: log(1 + e^z) - y z, per row
        value = weights @ (np.logaddexp(0.0, z) - outcome * z) + ridge / 2 * theta @ theta
        return value, design.T @ (weights * (expit(z) - outcome)) + ridge * theta

    def hessian(theta):
        p = expit(design @ theta)
        weighted = design * (weights * p * (1 - p))[:, None]
        return design.T @ weighted + ridge * np.eye(len(theta))

    start = np.zeros(design.shape[1])
    result = minimize(loss, start, jac=True, hess=hessian, method="trust-exact", tol=1e-10)
    return result.x

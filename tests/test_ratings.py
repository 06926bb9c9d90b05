"""Bradley–Terry strengths: equal to maximum-likelihood solutions computed another way, the
length coefficient of style control, and fits that must not fail."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labeling.ratings import (
    ELO_SCALE,
    bootstrap_intervals,
    bradley_terry,
    elo,
    length_feature,
)

# wins[i][j]: how often model i beat model j.
WINS = {
    "a": {"b": 7, "c": 9, "d": 6},
    "b": {"a": 3, "c": 6, "d": 5},
    "c": {"a": 2, "b": 4, "d": 3},
    "d": {"a": 4, "b": 5, "c": 8},
}


def battles_of(wins) -> list[tuple[str, str, float]]:
    return [(i, j, 1) for i, row in wins.items() for j, n in row.items() for _ in range(n)]


def zermelo(wins, iterations=5000) -> dict[str, float]:
    """The maximum-likelihood strengths by Zermelo's fixed point (the MM algorithm of Hunter
    2004): p_i <- W_i / sum_j n_ij / (p_i + p_j), then log p centred on mean 0."""
    models = sorted(wins)
    p = dict.fromkeys(models, 1.0)
    for _ in range(iterations):
        new = {}
        for i in models:
            won = sum(wins[i].values())
            games = sum(
                (wins[i].get(j, 0) + wins[j].get(i, 0)) / (p[i] + p[j]) for j in models if j != i
            )
            new[i] = won / games
        total = sum(new.values())
        p = {i: v / total for i, v in new.items()}
    logs = {i: math.log(v) for i, v in p.items()}
    mean = sum(logs.values()) / len(logs)
    return {i: v - mean for i, v in logs.items()}


def test_strengths_equal_zermelos_maximum_likelihood_solution():
    fit = bradley_terry(battles_of(WINS))
    expected = zermelo(WINS)
    for model, strength in expected.items():
        assert fit.strengths[model] == pytest.approx(strength, abs=1e-4)
    assert list(fit.strengths) == sorted(expected, key=expected.get, reverse=True)
    assert sum(fit.strengths.values()) == pytest.approx(0, abs=1e-9)
    assert fit.coefficients == ()


def test_two_models_differ_by_the_log_of_wins_over_losses_with_ties_as_half_each():
    # a: 3 wins, b: 1 win, 2 ties (half a win each): w = 3 + 1, l = 1 + 1.
    battles = [("a", "b", 1)] * 3 + [("b", "a", 1)] + [("a", "b", 0.5)] * 2
    fit = bradley_terry(battles)
    assert fit.strengths["a"] - fit.strengths["b"] == pytest.approx(math.log(4 / 2), abs=1e-4)
    assert fit.strengths["a"] == pytest.approx(-fit.strengths["b"])


def test_the_length_coefficient_recovers_a_known_effect_and_controls_for_it():
    # c is as strong as a but writes longer; raters like length (beta = 1.5 per unit of the
    # normalised difference). Without the covariate c looks stronger than it is.
    rng = np.random.default_rng(3)
    true = {"a": 0.0, "b": -0.8, "c": 0.0}
    mean_length = {"a": 100, "b": 100, "c": 220}
    battles, features = [], []
    names = list(true)
    for _ in range(6000):
        i, j = rng.choice(names, size=2, replace=False)
        li, lj = (rng.normal(mean_length[m], 30) for m in (i, j))
        x = length_feature(li, lj)
        p = 1 / (1 + math.exp(-(true[i] - true[j] + 1.5 * x)))
        battles.append((i, j, float(rng.random() < p)))
        features.append([x])
    plain = bradley_terry(battles)
    controlled = bradley_terry(battles, covariates=features)
    [beta] = controlled.coefficients
    assert beta == pytest.approx(1.5, abs=0.2)
    assert plain.strengths["c"] - plain.strengths["a"] > 0.3
    assert controlled.strengths["c"] - controlled.strengths["a"] == pytest.approx(0, abs=0.15)
    assert controlled.strengths["a"] - controlled.strengths["b"] == pytest.approx(0.8, abs=0.15)


def test_a_model_that_never_loses_gets_a_large_finite_strength():
    battles = [("a", "b", 1)] * 5 + [("a", "c", 1)] * 4 + [("b", "c", 1)] * 3 + [("c", "b", 1)]
    fit = bradley_terry(battles)
    assert all(math.isfinite(s) for s in fit.strengths.values())
    assert list(fit.strengths)[0] == "a"
    assert fit.strengths["a"] - fit.strengths["b"] > 5  # far above: no loss to pull it back
    intervals = bootstrap_intervals(battles, resamples=30)
    assert all(math.isfinite(v) for pair in intervals.values() for v in pair)


def test_bootstrap_intervals_hold_the_estimates_and_repeat_with_their_seed():
    battles = battles_of(WINS)
    fit = bradley_terry(battles)
    intervals = bootstrap_intervals(battles, resamples=100, seed=2)
    assert set(intervals) == set(WINS)
    for model, (low, high) in intervals.items():
        assert low < fit.strengths[model] < high
    assert bootstrap_intervals(battles, resamples=100, seed=2) == intervals
    features = [[0.1 * (k % 3 - 1)] for k in range(len(battles))]
    with_length = bootstrap_intervals(battles, resamples=20, covariates=features)
    assert set(with_length) == set(WINS)


def test_the_display_scale_is_elo_like():
    assert elo(0) == 1000
    # 400 points: ten to one in odds.
    assert elo(math.log(10)) == pytest.approx(1400)
    assert round(ELO_SCALE, 1) == 173.7


def test_bad_battles_are_refused():
    with pytest.raises(ValueError):
        bradley_terry([])
    with pytest.raises(ValueError):
        bradley_terry([("a", "a", 1)])
    with pytest.raises(ValueError):
        bradley_terry([("a", "b", 2)])
    with pytest.raises(ValueError):
        bradley_terry([("a", "b", 1)], covariates=[[0.1], [0.2]])

"""Preference-model evaluation figures: accuracy, calibration, score gap, the length baseline.

Calibration (DESIGN §3): the PM says P(A > B) = σ(r_A − r_B). A pair is seen in both
orientations, (σ(m), outcome 1) and (σ(−m), outcome 0) with m = r_better − r_worse, so
the predictions are not all on one side; the expected calibration error is
Σ_bins (n_bin / n) · |observed rate − mean prediction| over ``BINS`` equal-width bins.
The length baseline says the longer response is better (a tie counts half).
"""

from __future__ import annotations

import math

from scipy.stats import binomtest

BINS = 10


def summarize_pairs(rows: list[dict]) -> dict:
    """rows: {"margin", "weight", "length"} per pair (``objectives.pair_margins``)."""
    if not rows:
        raise ValueError("no pairs to evaluate")
    n = len(rows)
    total_weight = sum(r["weight"] for r in rows)
    bins = reliability_bins([r["margin"] for r in rows])
    return {
        "pairs": n,
        "accuracy": sum(r["margin"] > 0 for r in rows) / n,  # ties count as wrong
        "weighted_accuracy": sum(r["weight"] * (r["margin"] > 0) for r in rows) / total_weight,
        "loss": sum(_softplus(-r["margin"]) for r in rows) / n,
        "score_gap": sum(r["margin"] for r in rows) / n,
        "length_baseline_accuracy": sum(r["length"] for r in rows) / n,
        "ece": expected_calibration_error(bins),
        "reliability": bins,
    }


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def reliability_bins(margins: list[float]) -> list[dict]:
    """Per bin of predicted P(A > B): count, mean prediction, observed rate (both orientations)."""
    points = [(_sigmoid(m), 1.0) for m in margins] + [(_sigmoid(-m), 0.0) for m in margins]
    bins = [
        {"low": b / BINS, "high": (b + 1) / BINS, "n": 0, "p": 0.0, "y": 0.0} for b in range(BINS)
    ]
    for p, y in points:
        b = bins[min(int(p * BINS), BINS - 1)]
        b["n"] += 1
        b["p"] += p
        b["y"] += y
    for b in bins:
        if b["n"]:
            b["p"] /= b["n"]
            b["y"] /= b["n"]
    return bins


def expected_calibration_error(bins: list[dict]) -> float:
    n = sum(b["n"] for b in bins)
    return sum(b["n"] / n * abs(b["y"] - b["p"]) for b in bins if b["n"])


def plot_reliability(bins: list[dict], path, *, title: str = "") -> None:
    """A reliability diagram PNG: observed rate against mean prediction, with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    used = [b for b in bins if b["n"]]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], color="0.7", linestyle="--", label="perfectly calibrated")
    ax.plot([b["p"] for b in used], [b["y"] for b in used], marker="o", label="preference model")
    for b in used:
        ax.annotate(
            str(b["n"]), (b["p"], b["y"]), textcoords="offset points", xytext=(4, -10), fontsize=7
        )
    ax.set(xlabel="predicted P(A > B)", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(title or f"ECE {expected_calibration_error(bins):.3f}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (an accuracy on n pairs)."""
    if n == 0:
        return (0.0, 1.0)
    interval = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(interval.low), float(interval.high))

"""The active-selection experiment's summary, table and plot (``training.active``).

Per budget and strategy: the mean and standard deviation (ddof 1) of held-out accuracy
over the seeds; and the labels random selection needs to reach uncertainty's mean
accuracy at that budget (``active_sim.labels_to_reach``: interpolated in log(labels)
between budgets), with the label saving 1 − budget / random's labels. Random's curve
reaching it at its smallest budget needs at most that many (the table says "≤"); never
reaching it within the budgets, None ("> the largest budget").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from training.active_sim import STRATEGIES, labels_to_reach


def summarise(budgets: list[int], runs: dict[str, list[list[float]]]) -> list[dict]:
    """Per budget: each strategy's mean and standard deviation over seeds, and the labels
    random selection needs for uncertainty's mean accuracy (None: not within the budgets)."""
    stats = {}
    for strategy, accuracies in runs.items():
        values = np.asarray(accuracies)  # [seeds, budgets]
        sd = values.std(0, ddof=1) if len(values) > 1 else np.zeros(len(budgets))
        stats[strategy] = (values.mean(0), sd)
    random_mean = [float(x) for x in stats["random"][0]]
    rows = []
    for i, budget in enumerate(budgets):
        target = float(stats["uncertain"][0][i])
        needed = labels_to_reach(budgets, random_mean, target)
        row = {"labels": budget}
        for strategy in STRATEGIES:
            row[strategy] = round(float(stats[strategy][0][i]), 4)
            row[f"{strategy}_sd"] = round(float(stats[strategy][1][i]), 4)
        row["random_labels_for_same_accuracy"] = None if needed is None else round(needed, 1)
        row["label_saving"] = None if needed is None else round(1 - budget / needed, 3)
        rows.append(row)
    return rows


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    table = _table(results)
    (out / "results.md").write_text(table)
    _plot(out / "results.png", results)
    sys.stdout.write(table)


def _table(results: dict) -> str:
    lines = [
        "| setting | labels | random | uncertain | random needs | label saving |",
        "|---|---|---|---|---|---|",
    ]
    for name, setting in results["settings"].items():
        for row in setting["rows"]:
            needed, saving = row["random_labels_for_same_accuracy"], row["label_saving"]
            smallest = setting["budgets"][0]
            bound = "≤ " if needed == smallest < row["labels"] else ""  # random starts above it
            if needed is None:
                needs, saves = f"> {setting['budgets'][-1]}", ""
            else:
                needs, saves = f"{bound}{round(needed)}", f"{bound}{saving:.0%}"
            lines.append(
                f"| {name} | {row['labels']} "
                + "".join(f"| {row[s]:.3f} ± {row[s + '_sd']:.3f} " for s in STRATEGIES)
                + f"| {needs} | {saves} |"
            )
    return "\n".join(lines) + "\n"


def _plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = results["settings"]
    fig, axes = plt.subplots(
        1, len(settings), figsize=(5 * len(settings), 4), dpi=120, squeeze=False
    )
    for ax, (name, setting) in zip(axes[0], settings.items(), strict=True):
        budgets = setting["budgets"]
        for strategy in STRATEGIES:
            mean = np.array([row[strategy] for row in setting["rows"]])
            sd = np.array([row[f"{strategy}_sd"] for row in setting["rows"]])
            ax.plot(budgets, mean, marker="o", label=strategy)
            ax.fill_between(budgets, mean - sd, mean + sd, alpha=0.2)
        ax.set_xscale("log")
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.axhline(0.5, color="0.85", linewidth=0.8)  # chance
        ax.set(
            title=f"{name} ({setting['test_pairs']} held-out pairs)",
            xlabel="labels",
            ylabel="held-out pairwise accuracy",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)

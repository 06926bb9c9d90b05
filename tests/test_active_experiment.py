"""The active-selection experiment: labels only through the oracle, uncertainty selection,
label savings, cached features, and the whole command on a tiny model and a tiny pool."""

import json
import math

import numpy as np
import pytest

from training import active_data
from training.active_report import summarise
from training.active_sim import (
    LabelOracle,
    Pairs,
    Task,
    closest_to_even,
    fit_head,
    labels_to_reach,
    margins,
    simulate,
)
from training.experiments import main


def toy_task(seed=0, n=60, test=20, width=8):
    """Responses with a hidden linear reward; each pair's label is its true order."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(2 * (n + test), width))
    truth = features @ rng.normal(size=width)
    rows = np.arange(2 * (n + test)).reshape(-1, 2)
    pool, held_out = Pairs(rows[:n, 0], rows[:n, 1]), Pairs(rows[n:, 0], rows[n:, 1])
    return Task(
        features,
        pool,
        LabelOracle(truth[pool.a] > truth[pool.b]),
        held_out,
        LabelOracle(truth[held_out.a] > truth[held_out.b]),
    )


@pytest.mark.parametrize("strategy", ["random", "uncertain"])
def test_a_label_is_read_only_when_its_pair_is_selected(strategy):
    task = toy_task()
    run = simulate(task, strategy, [5, 10, 20], seed=3, batch=5, l2=1.0)
    assert task.oracle.revealed == run.selected
    assert len(set(run.selected)) == 20
    assert task.oracle.scorings == 0
    assert task.test_oracle.revealed == [] and task.test_oracle.scorings == 3  # once a budget


def test_both_strategies_start_from_the_same_random_seed_set():
    random_run = simulate(toy_task(), "random", [5, 10], seed=1, batch=5, l2=1.0)
    uncertain_run = simulate(toy_task(), "uncertain", [5, 10], seed=1, batch=5, l2=1.0)
    assert random_run.selected[:5] == uncertain_run.selected[:5]
    assert random_run.selected[5:] != uncertain_run.selected[5:]


def test_uncertainty_selection_picks_the_pairs_whose_prediction_is_nearest_even():
    pair_margins = np.array([2.0, -0.1, 0.5, 0.1, -3.0, 0.3])
    assert closest_to_even(pair_margins, 3).tolist() == [1, 3, 5]  # |-0.1| = |0.1|: in order
    probabilities = 1 / (1 + np.exp(-pair_margins))
    nearest = np.argsort(np.abs(probabilities - 0.5), kind="stable")[:3]
    assert nearest.tolist() == [1, 3, 5]


def test_an_uncertainty_round_takes_the_pairs_the_head_fitted_so_far_is_least_sure_of():
    task = toy_task()
    run = simulate(task, "uncertain", [6, 10], seed=0, batch=4, l2=1.0)
    first = run.selected[:6]
    labels = [toy_task().oracle.reveal(i) for i in first]
    w = fit_head(task.features[task.pool.a[first]] - task.features[task.pool.b[first]], labels, 1.0)
    rest = np.setdiff1d(np.arange(len(task.pool)), first)
    expected = rest[closest_to_even(margins(w, task.features, task.pool, rest), 4)]
    assert run.selected[6:] == expected.tolist()


def test_the_head_learns_a_linear_preference_from_enough_labels():
    task = toy_task(n=400, test=100)
    run = simulate(task, "random", [10, 400], seed=0, batch=10, l2=0.1)
    assert run.accuracies[1] > 0.9 and run.accuracies[1] >= run.accuracies[0]


def test_the_labels_random_needs_are_interpolated_in_log_labels():
    budgets, curve = [10, 20, 40], [0.5, 0.6, 0.7]
    assert labels_to_reach(budgets, curve, 0.65) == pytest.approx(math.sqrt(20 * 40))
    assert labels_to_reach(budgets, curve, 0.4) == 10  # reached at the start: at most 10
    assert labels_to_reach(budgets, curve, 0.8) is None
    rows = summarise(budgets, {"random": [curve, curve], "uncertain": [[0.5, 0.65, 0.7]] * 2})
    assert rows[1]["random_labels_for_same_accuracy"] == pytest.approx(28.3)
    assert rows[1]["label_saving"] == pytest.approx(1 - 20 / math.sqrt(800), abs=1e-3)
    assert rows[0]["random_sd"] == 0 and rows[2]["label_saving"] == pytest.approx(0.0)


def write_pool(path, n):
    rows = []
    for i in range(n):
        context = f"\n\nHuman: question {i} about {'cats' if i % 2 else 'tea'}?\n\nAssistant:"
        good, bad = f" A kind answer number {i}.", f" No. {'!' * (i % 5)}"
        rows.append({"chosen": context + good, "rejected": context + bad})
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def active_command(pool, cache, out):
    return (
        ["active", "--pool", "hh-rlhf", pool, "--generated", "--model", "tiny-random"]
        + ["--assistant", "tiny-random", "--prompts", "10", "--candidates", "3"]
        + ["--max-new-tokens", "6", "--budgets", "4,8,16", "--seeds", "0,1", "--batch", "4"]
        + ["--max-length", "128", "--cache", str(cache), "--out", str(out), "--device", "cpu"]
    )


def test_the_active_experiment_runs_end_to_end_and_caches_features_and_candidates(
    tmp_path, capsys, monkeypatch
):
    pool = write_pool(tmp_path / "pool.jsonl", 40)
    main(active_command(pool, tmp_path / "cache", tmp_path / "out"))
    printed = capsys.readouterr().out
    results = json.loads(printed.strip().splitlines()[-1])
    table = (tmp_path / "out" / "results.md").read_text()
    assert table in printed and "| pool | 16 |" in table and "| generated | 4 |" in table
    assert (tmp_path / "out" / "results.png").stat().st_size > 5000
    pool_setting, generated = results["settings"]["pool"], results["settings"]["generated"]
    assert (pool_setting["pool_pairs"], pool_setting["test_pairs"]) == (32, 8)
    assert pool_setting["budgets"] == [4, 8, 16]
    assert all(len(runs) == 2 for runs in pool_setting["runs"].values())
    assert generated["contexts"] == 10 and generated["test_pairs"] <= 6
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert [name.split("-")[0] for name in cached] == ["features", "features", "generated"]

    def never(*args, **kwargs):
        raise AssertionError("recomputed what the cache holds")

    monkeypatch.setattr(active_data, "compute_features", never)
    monkeypatch.setattr("models_backend.assistants.build_assistant", never)
    main(active_command(pool, tmp_path / "cache", tmp_path / "again"))
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["settings"] == results["settings"]  # the same features, the same numbers


def test_the_active_experiment_refuses_a_pool_of_rankings_longer_than_pairs(tmp_path, capsys):
    ranked = tmp_path / "ranked.jsonl"
    ranked.write_text(json.dumps({"context": "q", "responses": ["a", "b", "c"]}) + "\n")
    with pytest.raises(SystemExit) as exited:
        main(["active", "--pool", "rankings", str(ranked), "--out", str(tmp_path / "out")])
    assert exited.value.code == 2
    assert "the pool must hold pairs" in capsys.readouterr().err

"""Choosing the retrain's defaults: parts that never overlap, a choice made on validation
only, and the held-out figures for the choice and today's defaults."""

from __future__ import annotations

import json

import pytest

from training import pm_defaults

ROWS = [
    {
        "chosen": f"\n\nHuman: Question {i}?\n\nAssistant: A careful answer number {i}.",
        "rejected": f"\n\nHuman: Question {i}?\n\nAssistant: No {i}.",
    }
    for i in range(24)
]


def test_the_three_parts_are_disjoint_and_the_same_for_the_same_seed():
    items = list(range(30))
    train, val, test = pm_defaults.split(items, train=100, val=6, test=8, seed=3)
    assert len(test) == 8 and len(val) == 6 and len(train) == 16
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert (train, val, test) == pm_defaults.split(items, train=100, val=6, test=8, seed=3)
    assert pm_defaults.split(items, train=5, val=6, test=8, seed=3)[0] == train[:5]


def test_the_wilson_interval_matches_the_textbook_value():
    from training.pm_metrics import wilson

    # 8 of 10: centre (0.8 + 1.92/10) / 1.384, half-width 1.96·sqrt(0.016 + 0.0096)/1.384
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_the_choice_is_the_best_validation_accuracy_and_ties_go_to_the_faster():
    results = [
        {"name": "a", "eval_accuracy": 0.6, "train_seconds": 10},
        {"name": "b", "eval_accuracy": 0.7, "train_seconds": 50},
        {"name": "c", "eval_accuracy": 0.7, "train_seconds": 20},
    ]
    assert pm_defaults.choose(results)["name"] == "c"


def test_the_grid_runs_resumably_and_final_scores_the_choice_on_held_out_rows(
    tmp_path, monkeypatch, capsys
):
    data = tmp_path / "hh.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    grid = {
        pm_defaults.TODAY: {"lr": 1e-5, "max_length": 64, "epochs": 1, "batch_size": 4, "pairs": 6},
        "faster": {"lr": 1e-3, "max_length": 64, "epochs": 1, "batch_size": 4, "pairs": 10},
    }
    monkeypatch.setattr(pm_defaults, "GRID", grid)
    common = ["--data", str(data), "--out", str(tmp_path / "out"), "--model", "tiny-random"]
    common += ["--train", "10", "--val", "6", "--test", "8", "--cpu"]
    with pytest.raises(SystemExit):
        pm_defaults.main([*common, "--only", "slower"])  # not a candidate
    assert pm_defaults.main([*common, "--only", "faster"]) == 0
    first = (tmp_path / "out" / "faster" / pm_defaults.RESULT).read_text()
    capsys.readouterr()

    assert pm_defaults.main([*common, "--final"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (tmp_path / "out" / "faster" / pm_defaults.RESULT).read_text() == first  # kept
    assert [r["val_pairs"] for r in summary["validation"]] == [6, 6]
    assert [r["train_pairs"] for r in summary["validation"]] == [6, 10]
    held = summary["held_out"]
    assert held[0]["name"] == summary["chosen"] and held[1]["name"] == pm_defaults.TODAY
    assert all(h["pairs"] == 8 and h["interval_95"][0] <= h["accuracy"] for h in held)

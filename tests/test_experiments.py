"""The paper-reproduction experiments run end to end on tiny models: table, plot, JSON."""

import argparse
import json

import pytest

from tests.test_objectives import rankings
from training.experiments import main, split, train_and_eval


def write_rankings(path, items, k=None):
    rows = [
        {"context": r.context[0].text, "responses": list(r.responses[:k] if k else r.responses)}
        for r in items
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_the_objectives_experiment_tables_and_plots_every_objective_for_every_model(
    tmp_path, capsys
):
    ranked = write_rankings(tmp_path / "ranked.jsonl", rankings(20, 1))
    binary = write_rankings(tmp_path / "binary.jsonl", rankings(20, 2), k=2)
    out = tmp_path / "objectives"
    main(
        ["objectives", "--ranked", ranked, "--ranked-format", "rankings", "--binary", binary]
        + ["--binary-format", "rankings", "--models", "tiny-random@1x32,tiny-random@2x64"]
        + ["--out", str(out), "--max-length", "96", "--lr", "1e-3", "--epochs", "2"]
        + ["--device", "cpu"]
    )
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = results["rows"]
    assert len(rows) == 2 * 2 * 3
    assert {(r["data"], r["objective"]) for r in rows} >= {
        ("ranked", "imitation"),
        ("binary", "ranked"),
    }
    assert all(r["eval_pairs"] == (12 if r["data"] == "ranked" else 4) for r in rows)
    assert (out / "results.png").stat().st_size > 5000
    assert "| ranked | tiny-random@1x32 | ranked |" in (out / "results.md").read_text()


def test_the_pmp_experiment_fine_tunes_from_the_base_and_from_the_pmp_checkpoint(tmp_path, capsys):
    pretrain = write_rankings(tmp_path / "pmp.jsonl", rankings(12, 3), k=2)
    finetune = write_rankings(tmp_path / "ft.jsonl", rankings(20, 4), k=2)
    out = tmp_path / "pmp"
    main(
        ["pmp", "--pmp-data", pretrain, "--pmp-format", "rankings", "--finetune", finetune]
        + ["--finetune-format", "rankings", "--sizes", "4,16", "--model", "tiny-random"]
        + ["--out", str(out), "--max-length", "96", "--lr", "1e-3", "--device", "cpu"]
    )
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(r["start"], r["size"]) for r in results["rows"]] == [
        ("base", 4),
        ("pmp", 4),
        ("base", 16),
        ("pmp", 16),
    ]
    assert (out / "pmp" / "preference_config.json").is_file()
    assert (out / "results.png").stat().st_size > 5000
    # A second run reuses the checkpoint: no pre-training, the same starting accuracy.
    main(
        ["pmp", "--pmp-checkpoint", str(out / "pmp"), "--finetune", finetune, "--sizes", "4"]
        + ["--finetune-format", "rankings", "--model", "tiny-random", "--out", str(tmp_path / "b")]
        + ["--max-length", "96", "--lr", "1e-3", "--device", "cpu"]
    )
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["pmp"]["sources"] == [pretrain]
    assert again["pmp"]["eval_accuracy"] == results["pmp"]["eval_accuracy"]
    assert again["rows"] == results["rows"][:2]


def test_the_experiments_refuse_a_used_output_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("x")
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "pmp",
                "--pmp-data",
                "a",
                "--finetune",
                "b",
                "--sizes",
                "4",
                "--out",
                str(tmp_path / "out"),
            ]
        )
    assert exited.value.code == 2


def test_validation_comes_from_the_training_part_and_never_reads_the_held_out_part():
    items = list(range(50))
    args = argparse.Namespace(held_out=0.2, seed=3, validate=True)
    _, held_out = split(items, 0.2, 3)
    train, validation = train_and_eval(items, args)
    assert not set(validation) & set(held_out) and not set(train) & set(held_out)
    assert not set(train) & set(validation) and len(train) + len(validation) == 40


def test_the_objectives_experiment_runs_a_chosen_subset_on_one_kind_of_data(tmp_path, capsys):
    ranked = write_rankings(tmp_path / "ranked.jsonl", rankings(10, 1))
    main(
        ["objectives", "--ranked", ranked, "--ranked-format", "rankings", "--models"]
        + ["tiny-random", "--objectives", "imitation,ranked", "--out", str(tmp_path / "o")]
        + ["--max-length", "96", "--device", "cpu", "--validate"]
    )
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert [(r["data"], r["objective"]) for r in rows] == [
        ("ranked", "ranked"),
        ("ranked", "imitation"),
    ]


def test_pmp_refuses_pre_training_data_that_holds_the_fine_tuning_data(tmp_path, capsys):
    task = tmp_path / "tasks" / "quiz" / "task.json"
    task.parent.mkdir(parents=True)
    task.write_text(json.dumps({"examples": [{"input": "q", "target_scores": {"a": 1, "b": 0}}]}))
    with pytest.raises(SystemExit) as exited:
        main(
            ["pmp", "--pmp-data", str(tmp_path / "tasks"), "--finetune", str(task.parent)]
            + ["--sizes", "4", "--out", str(tmp_path / "out")]
        )
    assert exited.value.code == 2
    assert "PMP data must not hold the fine-tuning data" in capsys.readouterr().err

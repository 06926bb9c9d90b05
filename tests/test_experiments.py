"""The paper-reproduction experiments run end to end on tiny models: table, plot, JSON."""

import json

import pytest

from tests.test_objectives import rankings
from training.experiments import main


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

"""Ranked preference model training on the tiny random Llama: data, encoding, loop, CLI."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate.utils import set_seed

from models_backend.dialogue import (
    DIVERGED_EARLY,
    REGULAR,
    REPEATED_ROLE,
    Message,
    Pair,
    format_pair,
    prompt_transcript,
)
from models_backend.reward import (
    CONFIG_FILE,
    EOC_TOKEN,
    load_preference_model,
    preference_model_from_spec,
    score_responses,
)
from tests.public_data import harmless_base
from training.data import (
    DataError,
    EncodedPair,
    PairCollator,
    encode_pair,
    encode_pairs,
    read_hh_rlhf,
)
from training.preference import PreferenceConfig, evaluate, fit, load_data, main

REPO_ROOT = Path(__file__).resolve().parent.parent
GOOD = {
    "chosen": "\n\nHuman: Hi\n\nAssistant: Hello!",
    "rejected": "\n\nHuman: Hi\n\nAssistant: Go.",
}
TOPICS = [
    "kite",
    "lamp",
    "river",
    "bread",
    "violin",
    "garden",
    "comet",
    "pepper",
    "canoe",
    "puzzle",
    "forest",
    "candle",
]


def synthetic_pairs(n: int, seed: int) -> list[Pair]:
    """Chosen replies are polite and on topic, rejected ones curt: learnable from the text."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        topic, number = rng.choice(TOPICS), rng.randint(2, 99)
        context = [Message("human", f"Tell me about {number} {topic}s.")]
        chosen = f"Happy to help! {number} {topic}s are a fine thing to ask about."
        rejected = f"No. {topic}? Whatever, go away {number}."
        pairs.append(Pair(context, chosen, rejected))
    return pairs


def write_jsonl(path: Path, rows: list[dict | str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def tokenizer():
    return preference_model_from_spec("tiny-random", device="cpu")[1]


# --- reading hh-rlhf -------------------------------------------------------------------


def test_read_hh_rlhf_splits_rows_skips_blank_lines_and_stops_at_the_limit(tmp_path):
    pairs = synthetic_pairs(3, seed=1)
    path = write_jsonl(tmp_path / "d.jsonl", [format_pair(pairs[0]), "", format_pair(pairs[1])])
    assert read_hh_rlhf(path) == pairs[:2]
    assert read_hh_rlhf(path, limit=1) == pairs[:1]


@pytest.mark.parametrize(
    ("bad_line", "reason"),
    [
        ('{"chosen": "\\n\\nHuman: Hi', "bad JSON"),
        (json.dumps({"chosen": GOOD["chosen"]}), "missing field 'rejected'"),
        (json.dumps({"chosen": GOOD["chosen"], "rejected": 3}), "must be a string"),
        (json.dumps(["not", "an", "object"]), "expected a JSON object"),
        (
            json.dumps({"chosen": GOOD["chosen"], "rejected": "\n\nHuman: Bye\n\nAssistant: Go."}),
            "share no message",
        ),
    ],
    ids=["bad-json", "missing-field", "non-string", "not-an-object", "sharing-nothing"],
)
def test_a_bad_line_raises_a_data_error_naming_its_line_number_and_reason(
    tmp_path, bad_line, reason
):
    path = write_jsonl(tmp_path / "d.jsonl", [GOOD, GOOD, bad_line, GOOD])
    with pytest.raises(DataError) as caught:
        read_hh_rlhf(path)
    assert f"{path}:3:" in str(caught.value) and reason in str(caught.value)


def test_a_missing_file_raises_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_hh_rlhf(tmp_path / "missing.jsonl")


# --- encoding and collation -----------------------------------------------------------


def test_an_over_long_pair_is_truncated_from_the_left_of_its_context_and_counted_not_dropped(
    tokenizer,
):
    context = [Message("human", "An opening remark. " * 5 + "The question at the end?")]
    pair = Pair(context, "Short.", "A longer reply here.")
    full = tokenizer(prompt_transcript(context), add_special_tokens=False)["input_ids"]
    rejected_ids = tokenizer(" A longer reply here.", add_special_tokens=False)["input_ids"]
    eoc = tokenizer.convert_tokens_to_ids(EOC_TOKEN)

    encoded = encode_pair(tokenizer, pair, max_length=60)
    kept = 60 - 1 - len(rejected_ids)  # the longer reply sets how much context fits
    assert encoded.truncated and encoded.context_length == kept
    assert len(encoded.rejected) == 60 and len(encoded.chosen) < 60
    for seq in (encoded.chosen, encoded.rejected):
        assert seq[:kept] == full[-kept:]  # the END of the context survives, in both
        assert seq[-1] == eoc
    assert encoded.rejected[kept:-1] == rejected_ids  # the whole reply survives

    short = Pair([Message("human", "Hi")], "Yes.", "No.")
    pairs, truncated = encode_pairs(tokenizer, [pair, short, pair], max_length=60)
    assert len(pairs) == 3 and truncated == 2


def test_a_reply_longer_than_max_length_drops_the_context_and_keeps_eoc_last(tokenizer):
    pair = Pair([Message("human", "Hi")], "x" * 40, "No.")
    encoded = encode_pair(tokenizer, pair, max_length=16)
    eoc = tokenizer.convert_tokens_to_ids(EOC_TOKEN)
    x_ids = tokenizer(" " + "x" * 40, add_special_tokens=False)["input_ids"]
    assert encoded.truncated and encoded.context_length == 0
    assert encoded.chosen == x_ids[:15] + [eoc]
    assert encoded.rejected == tokenizer(" No.", add_special_tokens=False)["input_ids"] + [eoc]


def test_the_collator_stacks_chosen_rows_then_rejected_rows_right_padded():
    batch = [
        EncodedPair(
            chosen=[5, 6, 7, 9], rejected=[5, 6, 8, 8, 8, 9], context_length=2, truncated=False
        ),
        EncodedPair(chosen=[4, 9], rejected=[4, 3, 9], context_length=1, truncated=False),
    ]
    out = PairCollator(pad_id=0)(batch)
    assert out["input_ids"].tolist() == [
        [5, 6, 7, 9, 0, 0],
        [4, 9, 0, 0, 0, 0],
        [5, 6, 8, 8, 8, 9],
        [4, 3, 9, 0, 0, 0],
    ]
    assert out["attention_mask"].tolist() == [
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
    ]
    assert out["input_ids"].dtype == out["attention_mask"].dtype == torch.long


# --- configuration and training -------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"batch_size": 0},
        {"epochs": 0},
        {"lr": 0.0},
        {"lr": float("nan")},
        {"max_length": 1},
        {"grad_accum_steps": 0},
        {"max_train": 0},
        {"device": "tpu"},
        {"model": " "},
    ],
)
def test_the_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        PreferenceConfig(**bad)


def test_the_config_refuses_an_out_directory_that_already_holds_files(tmp_path):
    (tmp_path / "pm").mkdir()
    PreferenceConfig(out=str(tmp_path / "pm"))  # empty: fine
    (tmp_path / "pm" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        PreferenceConfig(out=str(tmp_path / "pm"))


def test_training_on_learnable_pairs_lowers_the_loss_changes_the_weights_and_beats_chance(
    tmp_path,
):
    config = PreferenceConfig(
        model="tiny-random",
        max_length=128,
        batch_size=8,
        epochs=2,
        lr=1e-3,
        seed=3,
        out=str(tmp_path / "pm"),
        device="cpu",
    )
    seen = []
    result = fit(
        config,
        synthetic_pairs(64, seed=1),
        synthetic_pairs(16, seed=2),
        progress=lambda fraction, info: seen.append((fraction, info)),
    )

    assert result["steps"] == 16 and result["train_pairs"] == 64 and result["eval_pairs"] == 16
    assert result["last_loss"] < 0.5 * result["first_loss"]
    assert result["eval_accuracy"] > 0.5 and result["truncated_pairs"] == 0
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) == 16
    assert seen[0][1]["step"] == 1 and seen[0][1]["loss"] == result["first_loss"]

    set_seed(config.seed)  # fit's own start: same seed, same fresh head and EOC embedding
    initial, _ = preference_model_from_spec("tiny-random", device="cpu")
    trained, _ = load_preference_model(tmp_path / "pm", device="cpu")
    assert not torch.allclose(initial.value_head.weight, trained.value_head.weight)
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight"):
        before, after = initial.lm.get_parameter(name), trained.lm.get_parameter(name)
        assert not torch.allclose(before, after), name
    saved = json.loads((tmp_path / "pm" / CONFIG_FILE).read_text())
    assert saved["config"]["training"]["lr"] == 1e-3 and saved["config"]["training"]["seed"] == 3
    assert saved["config"]["result"]["eval_accuracy"] == result["eval_accuracy"]
    assert [p.name for p in tmp_path.iterdir()] == ["pm"]  # no staging directory left behind


def test_evaluate_counts_a_pair_right_when_the_chosen_reply_scores_higher():
    pm, tokenizer = preference_model_from_spec("tiny-random", device="cpu")
    pairs = synthetic_pairs(7, seed=4)
    metrics = evaluate(pm, tokenizer, pairs, max_length=160, batch_size=3)  # 3 + 3 + 1
    margins = []
    for pair in pairs:
        good, bad = score_responses(
            pm, tokenizer, pair.context, [pair.chosen, pair.rejected], max_length=160
        )
        margins.append(good - bad)
    assert metrics["pairs"] == 7 and metrics["truncated"] == 0
    assert metrics["accuracy"] == pytest.approx(sum(m > 0 for m in margins) / 7)
    expected_loss = sum(math.log1p(math.exp(-m)) for m in margins) / 7
    assert metrics["loss"] == pytest.approx(expected_loss, abs=1e-5)


def test_fit_with_gradient_accumulation_counts_optimizer_steps(tmp_path):
    config = PreferenceConfig(
        model="tiny-random", max_length=64, batch_size=2, grad_accum_steps=3, lr=1e-4, device="cpu"
    )
    result = fit(config, synthetic_pairs(10, seed=1), synthetic_pairs(3, seed=2))
    assert result["steps"] == 2 and result["out"] is None  # 5 micro-batches -> 3 + 2


# --- command line ---------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "training.preference", *args],
        cwd=REPO_ROOT,
        env=os.environ,  # OMP_NUM_THREADS=1 from conftest
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_trains_a_tiny_model_and_prints_its_results_as_the_last_stdout_line(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [format_pair(p) for p in synthetic_pairs(12, 1)])
    held_out = write_jsonl(tmp_path / "eval.jsonl", [format_pair(p) for p in synthetic_pairs(4, 2)])
    out = tmp_path / "runs" / "pm"
    start = time.monotonic()
    done = run_cli(
        *("--train", str(train), "--eval", str(held_out), "--model", "tiny-random"),
        *("--out", str(out), "--max-length", "96", "--batch-size", "4", "--epochs", "2"),
        *("--lr", "1e-3", "--max-train", "8", "--seed", "1", "--grad-accum", "1"),
        "--device",
        "cpu",
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - start < 60
    result = json.loads(done.stdout.strip().splitlines()[-1])
    required = {"eval_accuracy", "eval_loss", "train_pairs", "eval_pairs", "train_seconds"}
    required |= {"pairs_per_second", "truncated_pairs", "first_loss", "last_loss", "out"}
    assert required <= result.keys()
    assert result["train_pairs"] == 8 and result["eval_pairs"] == 4 and result["out"] == str(out)
    assert (out / CONFIG_FILE).is_file()


def test_the_cli_rejects_a_bad_training_line_with_status_2_and_writes_nothing(tmp_path, capsys):
    # In-process: the error comes before any model loads, and a subprocess would spend
    # seconds importing torch to show the same SystemExit(2).
    train = write_jsonl(tmp_path / "train.jsonl", [GOOD, GOOD, "{oops", GOOD])
    held_out = write_jsonl(tmp_path / "eval.jsonl", [GOOD])
    out = tmp_path / "pm"
    with pytest.raises(SystemExit) as exited:
        main(
            [
                "--train",
                str(train),
                "--eval",
                str(held_out),
                "--model",
                "tiny-random",
                "--out",
                str(out),
            ]
        )
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert f"{train}:3: bad JSON" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize(
    "flags",
    [
        ["--batch-size", "0"],
        ["--lr", "fast"],
        ["--epochs", "-1"],
        ["--model", "./no/such/model"],
        ["--eval", "missing.jsonl"],
    ],
)
def test_the_cli_rejects_bad_input_with_one_line_and_status_2(tmp_path, capsys, flags):
    good = str(write_jsonl(tmp_path / "good.jsonl", [GOOD]))
    args = {
        "--train": good,
        "--eval": good,
        "--model": "tiny-random",
        "--out": str(tmp_path / "pm"),
    }
    args.update(dict(zip(flags[::2], flags[1::2], strict=True)))
    with pytest.raises(SystemExit) as exited:
        main([item for pair in args.items() for item in pair])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m training.preference: error:")
    assert not (tmp_path / "pm").exists()


# A diverged row (chosen ends with two Assistant messages) and a repeated-role one.
_REPEATED = "\n\nHuman: Hi\n\nAssistant: Hm.\n\nAssistant: Yes?\n\nHuman: Q\n\nAssistant:"
IRREGULAR = [
    {
        "chosen": "\n\nHuman: Hi\n\nAssistant: Hello.\n\nAssistant: Anything else?",
        "rejected": "\n\nHuman: Hi\n\nAssistant: Go.",
    },
    {"chosen": f"{_REPEATED} A", "rejected": f"{_REPEATED} B"},
]


def run_main(capsys, *args: str) -> dict:
    """``main`` in-process (a subprocess would spend seconds importing torch): its last line."""
    assert main([*args, "--model", "tiny-random", "--max-length", "64", "--device", "cpu"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_without_eval_the_cli_holds_out_every_tenth_row_and_counts_row_kinds_over_the_file(
    tmp_path, capsys
):
    rows = [format_pair(p) for p in synthetic_pairs(18, seed=1)] + IRREGULAR
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    result = run_main(capsys, "--train", str(train), "--max-train", "6", "--batch-size", "6")
    assert result["train_pairs"] == 6 and result["eval_pairs"] == 2  # rows 10 and 20 held out
    assert result["row_kinds"] == {REGULAR: 18, DIVERGED_EARLY: 1, REPEATED_ROLE: 1}


def test_the_cli_trains_on_the_public_harmless_file_and_reports_its_six_irregular_rows(capsys):
    result = run_main(
        capsys,
        *("--format", "hh-rlhf", "--train", str(harmless_base()), "--batch-size", "8"),
        *("--max-train", "16", "--max-eval", "8"),
    )
    assert result["train_pairs"] == 16 and result["eval_pairs"] == 8 and result["steps"] == 2
    assert result["row_kinds"] == {REGULAR: 1806, DIVERGED_EARLY: 3, REPEATED_ROLE: 3}


def test_with_eval_the_training_limit_applies_but_row_kinds_still_cover_the_whole_file(tmp_path):
    rows = [GOOD, *IRREGULAR, GOOD]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    config = PreferenceConfig(model="tiny-random", max_train=1)
    loaded, held_out, kinds = load_data(train, train, fmt="hh-rlhf", config=config)
    assert len(loaded) == 1 and len(held_out) == 4
    assert kinds == {REGULAR: 2, DIVERGED_EARLY: 1, REPEATED_ROLE: 1}


def test_formats_without_row_kinds_report_none(tmp_path):
    rows = [{"prompt": "hi", "chosen": "hello", "rejected": "go"}] * 3
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    config = PreferenceConfig(model="tiny-random")
    loaded, held_out, kinds = load_data(train, None, fmt="preference", config=config)
    assert (len(loaded), len(held_out), kinds) == (2, 1, None)

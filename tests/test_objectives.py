"""The three objectives and PMP on tiny-random: loss falls, weights change, resume, fine-tuning."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from accelerate.utils import set_seed

from models_backend.dialogue import HUMAN, Message
from models_backend.reward import load_preference_model, preference_model_from_spec
from training import objectives
from training.comparisons import Ranking
from training.pm_metrics import reliability_bins, summarize_pairs
from training.preference import PreferenceConfig, evaluate, fit

TOPICS = ["kite", "lamp", "river", "bread", "violin", "garden", "comet", "canoe"]


def rankings(n: int, seed: int) -> list[Ranking]:
    """Three replies per context, best first: warm and on topic, neutral, curt."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic, number = rng.choice(TOPICS), rng.randint(2, 99)
        out.append(
            Ranking(
                (Message(HUMAN, f"Tell me about {number} {topic}s."),),
                (
                    f"Happy to help! {number} {topic}s are a fine thing to ask about.",
                    f"{number} {topic}s exist.",
                    f"No. {topic}? Whatever, go away {number}.",
                ),
            )
        )
    return out


def config(tmp_path=None, **overrides) -> PreferenceConfig:
    fields = {
        "model": "tiny-random",
        "max_length": 96,
        "batch_size": 4,
        "epochs": 3,
        "lr": 1e-3,
        "seed": 1,
        "device": "cpu",
        "out": str(tmp_path / "pm") if tmp_path is not None else None,
    }
    return PreferenceConfig(**(fields | overrides))


@pytest.mark.parametrize(
    ("objective", "pmp"),
    [("ranked", False), ("binary", False), ("imitation", False), ("ranked", True)],
)
def test_each_objective_lowers_its_loss_and_changes_the_weights(tmp_path, objective, pmp):
    result = fit(config(tmp_path, objective=objective, pmp=pmp), rankings(24, 1), rankings(8, 2))
    # LM losses start near log(257) on the byte-level tiny model and fall more slowly
    assert result["last_loss"] < (0.85 if objective == "imitation" else 0.7) * result["first_loss"]
    set_seed(1)
    initial, _ = preference_model_from_spec("tiny-random", device="cpu")
    trained, _ = load_preference_model(tmp_path / "pm", device="cpu")
    name = "model.layers.1.mlp.down_proj.weight"
    assert not torch.allclose(initial.lm.get_parameter(name), trained.lm.get_parameter(name))
    assert result["eval_pairs"] == 8 * 3  # every ordered pair of the held-out rankings
    assert 0 <= result["eval_ece"] <= 1 and result["length_baseline_accuracy"] == 2 / 3
    assert (tmp_path / "pm" / "reliability.png").stat().st_size > 1000


@pytest.mark.parametrize("objective", ["ranked", "imitation"])
def test_bf16_mixed_precision_trains_over_fp32_master_weights_then_fp32_runs_again(
    objective, monkeypatch
):
    dtypes = []
    plain = objectives.packed_hidden

    def watched(pm, batch):  # the dtype a linear layer computes in
        hook = pm.lm.model.layers[0].mlp.up_proj.register_forward_hook(
            lambda module, args, out: dtypes.append(out.dtype)
        )
        try:
            return plain(pm, batch)
        finally:
            hook.remove()

    monkeypatch.setattr(objectives, "packed_hidden", watched)
    result = fit(config(objective=objective, precision="bf16"), rankings(24, 1), rankings(8, 2))
    assert result["mixed_precision"] == "bf16" and set(dtypes) == {torch.bfloat16}
    assert result["last_loss"] < (0.85 if objective == "imitation" else 0.7) * result["first_loss"]
    assert 0 <= result["eval_accuracy"] <= 1 and math.isfinite(result["eval_loss"])
    dtypes.clear()  # a later run in the same process is free to choose fp32
    result = fit(config(objective=objective, precision="fp32"), rankings(8, 1), rankings(2, 2))
    assert result["mixed_precision"] == "no" and set(dtypes) == {torch.float32}


def test_ranked_training_uses_all_pairs_and_binary_only_the_best_against_each_other(tmp_path):
    ranked = fit(config(epochs=1), rankings(4, 1), rankings(2, 2))
    binary = fit(config(epochs=1, objective="binary"), rankings(4, 1), rankings(2, 2))
    assert (ranked["train_pairs"], binary["train_pairs"]) == (12, 8)


def test_a_resumed_run_continues_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(
    tmp_path,
):
    whole = fit(config(tmp_path / "a"), rankings(16, 1), rankings(4, 2))

    class Interrupted(Exception):
        pass

    def stop_at_step_7(fraction, info):
        if info["step"] == 7:
            raise Interrupted

    interrupted = config(tmp_path / "b", save_every=5)
    with pytest.raises(Interrupted):
        fit(interrupted, rankings(16, 1), rankings(4, 2), progress=stop_at_step_7)
    resumed = fit(
        config(tmp_path / "b", save_every=5), rankings(16, 1), rankings(4, 2), resume=True
    )
    assert resumed["resumed_from_step"] == 5 and resumed["steps"] == whole["steps"] - 5
    a, _ = load_preference_model(tmp_path / "a" / "pm", device="cpu")
    b, _ = load_preference_model(tmp_path / "b" / "pm", device="cpu")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4, msg=name)
    assert resumed["eval_accuracy"] == whole["eval_accuracy"]


def test_fine_tuning_starts_from_a_pmp_checkpoint(tmp_path):
    fit(config(tmp_path / "pmp", pmp=True, epochs=1), rankings(8, 1), rankings(4, 2))
    pmp, _ = load_preference_model(tmp_path / "pmp" / "pm", device="cpu")
    tokenizer = load_preference_model(tmp_path / "pmp" / "pm", device="cpu")[1]
    before = evaluate(pmp, tokenizer, rankings(4, 2), max_length=96, batch_size=4)
    tuned = fit(
        config(tmp_path / "ft", model=str(tmp_path / "pmp" / "pm"), epochs=0 + 1, lr=1e-9),
        rankings(4, 3),
        rankings(4, 2),
    )
    assert tuned["eval_accuracy"] == before["accuracy"]  # a tiny lr: the PMP model, unchanged
    saved = json.loads((tmp_path / "ft" / "pm" / "training.json").read_text())
    assert saved["config"]["model"].endswith("pm") and saved["result"]["steps"] == 1


def test_calibration_counts_both_orientations_of_every_pair():
    bins = reliability_bins([0.0, 2.0])
    assert sum(b["n"] for b in bins) == 4
    summary = summarize_pairs(
        [{"margin": 0.0, "weight": 1.0, "length": 0.5}, {"margin": 2.0, "weight": 1.0, "length": 1}]
    )
    assert summary["accuracy"] == 0.5 and summary["score_gap"] == 1.0
    assert summary["length_baseline_accuracy"] == 0.75
    # margin 0: P = 0.5 both ways, half right (error 0); margin 2: P = 0.881 observed 1 (and
    # 0.119 observed 0): error 0.119 for half the points
    assert summary["ece"] == pytest.approx(0.5 * (1 - 1 / (1 + 2.718281828**-2)), abs=1e-6)

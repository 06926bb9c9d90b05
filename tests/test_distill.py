"""Context distillation on tiny models: the KL, the cached teacher prompt, training, resume."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from models_backend.loading import load_causal_lm
from tests.conftest import REPO
from tests.tiny_models import chaotic_tiny_lm
from training.distill import DistillConfig, fit, teacher_logits
from training.distill_data import bigbench_mix, read_texts, write_texts
from training.distill_loss import distill_kl, teacher_targets
from training.prefix import prefill

PROMPT = "Below are conversations with a kind, honest and careful assistant.\n\n-----"
TEXTS = [
    "\n\nHuman: How do I boil an egg?\n\nAssistant: Put it in boiling water for nine minutes.",
    "\n\nHuman: The river Severn is the longest river in Great Britain.",
    "\n\nHuman: Can you help me write a poem?\n\nAssistant: Of course. What is it about?",
    "\n\nHuman: Is the moon made of cheese?\n\nAssistant: No. It is rock and dust.",
    "\n\nHuman: Tea was first drunk in China, long before it reached Europe.",
    "\n\nHuman: What is 7 times 8?\n\nAssistant: 56.",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A chaotic tiny model saved as a model directory: its prompt changes its predictions."""
    lm = chaotic_tiny_lm(seed=3)
    folder = tmp_path_factory.mktemp("chaotic")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "prompt.txt").write_text(PROMPT)
    write_texts(tmp_path / "texts.jsonl", TEXTS)
    return tmp_path


def config(model_dir, inputs, **overrides) -> DistillConfig:
    fields = {
        "model": str(model_dir),
        "out": str(inputs / "out"),
        "data": str(inputs / "texts.jsonl"),
        "prompt_file": str(inputs / "prompt.txt"),
        "batch_size": 2,
        "lr": 1e-3,
        "max_grad_norm": None,
        "device": "cpu",
    }
    return DistillConfig(**(fields | overrides))


def test_top_k_and_bucket_kl_equals_full_kl_when_k_is_the_vocabulary():
    generator = torch.Generator().manual_seed(0)
    teacher = torch.randn(7, 300, generator=generator) * 3
    student = torch.randn(7, 300, generator=generator) * 3
    full = distill_kl(student, teacher_targets(teacher, None))
    assert full.item() > 0.1
    assert distill_kl(student, teacher_targets(teacher, 300)).item() == pytest.approx(
        full.item(), rel=1e-5
    )


def test_top_k_and_bucket_kl_is_at_most_the_full_kl_and_zero_for_the_teacher_itself():
    generator = torch.Generator().manual_seed(1)
    teacher = torch.randn(5, 300, generator=generator) * 3
    student = torch.randn(5, 300, generator=generator) * 3
    full = distill_kl(student, teacher_targets(teacher, None)).item()
    coarse = distill_kl(student, teacher_targets(teacher, 50)).item()
    assert 0 < coarse < full  # merging outcomes never increases a KL
    assert distill_kl(teacher, teacher_targets(teacher, 50)).item() == pytest.approx(0, abs=1e-5)


def test_the_bucket_kl_has_finite_gradients_when_the_bucket_is_empty():
    teacher = torch.randn(4, 20)
    student = torch.randn(4, 20, requires_grad=True)
    distill_kl(student, teacher_targets(teacher, 20)).backward()
    assert torch.isfinite(student.grad).all()


def test_teacher_logits_after_the_cached_prompt_match_a_plain_forward_of_prompt_and_text(model_dir):
    lm = load_causal_lm(str(model_dir), device="cpu")
    tok = lm.tokenizer
    prompt = tok(PROMPT, add_special_tokens=False)["input_ids"]
    texts = [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS[:3]]
    ids = torch.zeros((3, max(map(len, texts))), dtype=torch.long)
    for row, t in enumerate(texts):
        ids[row, : len(t)] = torch.tensor(t)
    real = torch.arange(ids.shape[1])[None] < torch.tensor([len(t) for t in texts])[:, None]
    with torch.no_grad():
        batched = teacher_logits(lm.model, prefill(lm.model, prompt), ids, real)
        for row, t in enumerate(texts):
            plain = lm.model(input_ids=torch.tensor([prompt + t]), use_cache=False).logits[0]
            torch.testing.assert_close(
                batched[row, : len(t)], plain[len(prompt) :], atol=1e-4, rtol=0
            )


def test_distillation_loss_falls_parameters_change_and_the_result_is_a_model_directory(
    model_dir, inputs
):
    before = load_causal_lm(str(model_dir), device="cpu").model.state_dict()
    result = fit(config(model_dir, inputs, epochs=6))
    assert result["steps"] == 18
    assert result["last_loss"] < 0.5 * result["first_loss"]
    distilled = load_causal_lm(result["out"], device="cpu").model.state_dict()
    assert any(not torch.equal(before[name], distilled[name]) for name in before)
    saved = json.loads((inputs / "out" / "distill.json").read_text())
    assert saved["config"]["top_k"] == 50 and saved["config"]["model"] == str(model_dir)
    assert saved["result"]["steps"] == 18
    assert not (inputs / "out" / "checkpoints").exists()


def test_a_run_resumed_from_its_checkpoint_ends_with_the_weights_of_an_uninterrupted_run(
    model_dir, inputs
):
    whole = fit(config(model_dir, inputs, epochs=3, out=str(inputs / "whole"), save_every=0))

    class Interrupted(Exception):
        pass

    def stop_at_step_5(fraction, info):
        if info["step"] == 5:
            raise Interrupted

    interrupted = config(model_dir, inputs, epochs=3, save_every=4)
    with pytest.raises(Interrupted):
        fit(interrupted, progress=stop_at_step_5)
    assert (inputs / "out" / "checkpoints" / "step-4").is_dir()
    assert not (inputs / "out" / "config.json").exists()  # not a loadable model yet

    resumed = fit(config(model_dir, inputs, epochs=3, save_every=4), resume=True)
    assert resumed["resumed_from_step"] == 4
    assert resumed["steps"] == whole["steps"] - 4
    a = load_causal_lm(whole["out"], device="cpu").model.state_dict()
    b = load_causal_lm(resumed["out"], device="cpu").model.state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=1e-4)


def test_resume_refuses_changed_settings_and_a_fresh_run_refuses_a_used_directory(
    model_dir, inputs
):
    (inputs / "out").mkdir()
    (inputs / "out" / "something").write_text("x")
    with pytest.raises(FileExistsError, match="--resume"):
        fit(config(model_dir, inputs))
    (inputs / "out" / "something").unlink()
    fit(config(model_dir, inputs, epochs=1, save_every=1))
    with pytest.raises(FileExistsError, match="finished model"):
        fit(config(model_dir, inputs, epochs=1), resume=True)


def test_the_command_line_names_a_bad_line_and_writes_nothing(inputs):
    bad = inputs / "bad.jsonl"
    bad.write_text('{"text": "\\n\\nHuman: fine"}\n{"txt": "no"}\n')
    done = subprocess.run(
        [sys.executable, "-m", "training.distill", "--model", "tiny-random", "--data", str(bad)]
        + ["--out", str(inputs / "cli"), "--prompt-file", str(inputs / "prompt.txt")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"{bad}:2:" in done.stderr and "Traceback" not in done.stderr
    assert not (inputs / "cli").exists()


def test_the_command_line_runs_a_distillation_and_prints_its_result_last(model_dir, inputs):
    done = subprocess.run(
        [sys.executable, "-m", "training.distill", "--model", str(model_dir)]
        + ["--data", str(inputs / "texts.jsonl"), "--out", str(inputs / "cli")]
        + ["--prompt-file", str(inputs / "prompt.txt"), "--full-vocab", "--batch-size", "3"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["steps"] == 2 and result["texts"] == 6
    assert json.loads((inputs / "cli" / "distill.json").read_text())["config"]["top_k"] is None


def test_sampled_distillation_texts_are_kept_beside_the_run(model_dir, inputs):
    result = fit(config(model_dir, inputs, data=None, sample=3, sample_tokens=12, epochs=1))
    kept = read_texts(inputs / "out" / "texts.jsonl")
    assert len(kept) == 3 and all(t.startswith("\n\nHuman:") for t in kept)
    assert result["texts"] == 3


def test_read_texts_names_the_bad_line(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": ""}\n')
    with pytest.raises(ValueError, match=rf"{path}:3: the text is empty"):
        read_texts(path)


def test_the_bigbench_mix_is_half_generic_text_and_half_question_and_answer(tmp_path):
    for task, examples in {
        "vitaminc_fact_verification": [
            {"input": f"Title {i}: passage {i}.\nClaim: c{i}", "target_scores": {}}
            for i in range(6)
        ],
        "strategyqa": [
            {"input": f"Question {i}?", "target": f"Yes. Because {i}.", "target_scores": {}}
            for i in range(6)
        ],
    }.items():
        (tmp_path / task).mkdir()
        (tmp_path / task / "task.json").write_text(json.dumps({"examples": examples}))
    texts = bigbench_mix(tmp_path, count=8, seed=0)
    qa = [t for t in texts if "\n\nAssistant: Yes. Because" in t]
    assert len(texts) == 8 and len(qa) == 4
    assert all(t.startswith("\n\nHuman: ") for t in texts)
    assert all("Claim:" not in t for t in texts)

"""Model loading from specs: tiny-random, local directories, errors, the process cache."""

from __future__ import annotations

import pytest
import torch

from models_backend import loading
from models_backend.loading import get_causal_lm, load_causal_lm


def test_tiny_random_builds_the_same_weights_every_time():
    first = load_causal_lm("tiny-random", device="cpu")
    second = load_causal_lm("tiny-random", device="cpu")
    a, b = first.model.state_dict(), second.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[name], b[name]) for name in a)
    assert first.model is not second.model
    assert not first.model.training


def test_tiny_random_does_not_disturb_the_global_random_state():
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    load_causal_lm("tiny-random", device="cpu")
    assert torch.equal(torch.rand(3), expected)


def test_a_saved_model_directory_loads_back_with_identical_logits(tmp_path):
    original = load_causal_lm("tiny-random", device="cpu")
    original.model.save_pretrained(tmp_path)
    original.tokenizer.save_pretrained(tmp_path)

    loaded = load_causal_lm(str(tmp_path), device="cpu")
    ids = torch.tensor([original.tokenizer("Human: hi", add_special_tokens=False)["input_ids"]])
    with torch.inference_mode():
        expected = original.model(input_ids=ids).logits
        actual = loaded.model(input_ids=ids).logits
    assert torch.equal(actual, expected)
    assert loaded.tokenizer.eos_token == original.tokenizer.eos_token
    assert loaded.tokenizer.pad_token_id is not None
    assert loaded.spec == str(tmp_path)
    assert loaded.device == torch.device("cpu")


def test_a_missing_local_directory_names_the_path():
    with pytest.raises(FileNotFoundError, match="no/such/model"):
        load_causal_lm("./no/such/model")


def test_a_directory_without_config_json_is_a_clear_error(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_causal_lm(str(tmp_path))


@pytest.mark.parametrize("spec", ["", "   "])
def test_an_empty_spec_is_rejected(spec):
    with pytest.raises(ValueError, match="empty"):
        load_causal_lm(spec)


def test_get_causal_lm_loads_once_and_returns_the_same_object(monkeypatch):
    monkeypatch.setattr(loading, "_loaded", {})
    calls = []
    real = loading.load_causal_lm

    def counting(spec, **kwargs):
        calls.append(spec)
        return real(spec, **kwargs)

    monkeypatch.setattr(loading, "load_causal_lm", counting)
    first = get_causal_lm("tiny-random")
    assert get_causal_lm("tiny-random") is first
    assert calls == ["tiny-random"]


def test_pick_device_prefers_the_argument_then_the_environment(monkeypatch):
    monkeypatch.setenv("LAB_DEVICE", "meta")
    assert loading.pick_device("cpu") == torch.device("cpu")
    assert loading.pick_device() == torch.device("meta")
    monkeypatch.delenv("LAB_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert loading.pick_device() == torch.device(expected)

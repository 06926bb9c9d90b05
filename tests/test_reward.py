"""The preference model on the tiny random Llama: where the reward is read, encoding, saving."""

from __future__ import annotations

import json

import pytest
import torch

from models_backend.dialogue import Message, prompt_transcript
from models_backend.reward import (
    CONFIG_FILE,
    EOC_TOKEN,
    add_eoc_token,
    encode_responses,
    is_preference_model_dir,
    load_preference_model,
    pad_right,
    preference_model_from_spec,
    save_preference_model,
    score_responses,
)

CONTEXT = [
    Message("human", "Hi, can you help me plan a picnic?"),
    Message("assistant", "Of course. Where would you like to go?"),
    Message("human", "Somewhere near a lake."),
]


@pytest.fixture(scope="module")
def pm_and_tokenizer():
    torch.manual_seed(0)
    return preference_model_from_spec("tiny-random", device="cpu")


def rewards(pm, rows: list[list[int]], masks: list[list[int]]) -> torch.Tensor:
    with torch.no_grad():
        return pm(torch.tensor(rows), torch.tensor(masks))


def test_a_sequence_scored_alone_equals_it_scored_beside_a_longer_one_with_right_padding(
    pm_and_tokenizer,
):
    pm, tokenizer = pm_and_tokenizer
    pad = tokenizer.pad_token_id
    short, long = [40, 41, 42, 43, 257], list(range(60, 75)) + [257]
    alone = rewards(pm, [short], [[1] * 5])
    batched = rewards(pm, [short + [pad] * 11, long], [[1] * 5 + [0] * 11, [1] * 16])
    assert batched[0].item() == pytest.approx(alone.item(), abs=1e-5)
    assert batched[1].item() == pytest.approx(rewards(pm, [long], [[1] * 16]).item(), abs=1e-5)


def test_a_sequence_scored_alone_equals_it_scored_beside_a_longer_one_with_left_padding(
    pm_and_tokenizer,
):
    pm, tokenizer = pm_and_tokenizer
    pad = tokenizer.pad_token_id
    short, long = [40, 41, 42, 43, 257], list(range(60, 75)) + [257]
    alone = rewards(pm, [short], [[1] * 5])
    batched = rewards(pm, [[pad] * 11 + short, long], [[0] * 11 + [1] * 5, [1] * 16])
    assert batched[0].item() == pytest.approx(alone.item(), abs=1e-5)


def test_an_eos_inside_a_sequence_counts_as_a_real_token_although_pad_equals_eos(
    pm_and_tokenizer,
):
    pm, tokenizer = pm_and_tokenizer
    eos = tokenizer.eos_token_id
    assert tokenizer.pad_token_id == eos  # the trap: searching for the pad id finds this EOS
    with_eos = [40, 41, eos, 43, eos]
    alone = rewards(pm, [with_eos], [[1] * 5])
    batched = rewards(pm, [with_eos + [eos] * 3, list(range(60, 68))], [[1] * 5 + [0] * 3, [1] * 8])
    cut_at_first_eos = rewards(pm, [with_eos[:2]], [[1, 1]])
    assert batched[0].item() == pytest.approx(alone.item(), abs=1e-5)
    assert alone.item() != pytest.approx(cut_at_first_eos.item(), abs=1e-4)


def test_the_eoc_token_is_added_once_and_is_the_last_id_of_every_encoded_sequence(
    pm_and_tokenizer,
):
    pm, tokenizer = pm_and_tokenizer
    eoc = tokenizer.convert_tokens_to_ids(EOC_TOKEN)
    assert len(tokenizer) == 258  # 256 bytes + end-of-text + EOC
    assert add_eoc_token(tokenizer) == eoc and len(tokenizer) == 258  # adding again: no-op
    assert tokenizer(EOC_TOKEN, add_special_tokens=False)["input_ids"] == [eoc]  # never split
    assert pm.lm.get_input_embeddings().weight.shape[0] == 258
    group = encode_responses(tokenizer, CONTEXT, ["Yes.", "", "A longer reply."], max_length=512)
    assert [seq[-1] for seq in group.sequences] == [eoc, eoc, eoc]
    assert all(seq.count(eoc) == 1 for seq in group.sequences)


def test_the_context_is_a_true_prefix_of_both_encoded_sequences_and_replies_follow_it(
    pm_and_tokenizer,
):
    _, tokenizer = pm_and_tokenizer
    group = encode_responses(tokenizer, CONTEXT, ["Lake Tahoe.", "No."], max_length=512)
    context_ids = tokenizer(prompt_transcript(CONTEXT), add_special_tokens=False)["input_ids"]
    assert group.context_length == len(context_ids) and not group.truncated
    for seq, reply in zip(group.sequences, ["Lake Tahoe.", "No."], strict=True):
        assert seq[: len(context_ids)] == context_ids
        assert (
            seq[len(context_ids) : -1]
            == tokenizer(" " + reply, add_special_tokens=False)["input_ids"]
        )
        assert tokenizer.decode(seq[:-1]) == prompt_transcript(CONTEXT) + " " + reply


def test_score_responses_gives_the_rewards_of_the_training_encoding(pm_and_tokenizer):
    pm, tokenizer = pm_and_tokenizer
    replies = ["Lake Tahoe is lovely.", "No.", "Try a park by the water."]
    scores = score_responses(pm, tokenizer, CONTEXT, replies, batch_size=2)
    group = encode_responses(tokenizer, CONTEXT, replies, max_length=512)
    batch = pad_right(group.sequences, pad_id=tokenizer.pad_token_id)
    with torch.no_grad():
        expected = pm(batch["input_ids"], batch["attention_mask"])
    assert scores == pytest.approx(expected.tolist(), abs=1e-5)
    assert len(set(scores)) == 3  # different replies, different rewards


def test_a_saved_preference_model_loads_back_with_the_same_rewards_and_its_config(tmp_path):
    pm, tokenizer = preference_model_from_spec("tiny-random", device="cpu")
    with torch.no_grad():
        pm.value_head.bias.fill_(0.25)  # a head that is not the fresh init
    config = {"model": "tiny-random", "lr": 0.001, "note": "round trip"}
    save_preference_model(pm, tokenizer, tmp_path / "pm", config=config)
    assert is_preference_model_dir(tmp_path / "pm") and not is_preference_model_dir(tmp_path)
    saved = json.loads((tmp_path / "pm" / CONFIG_FILE).read_text())
    assert saved["config"] == config and saved["eoc_token"] == EOC_TOKEN

    replies = ["Lake Tahoe.", "No."]
    before = score_responses(pm, tokenizer, CONTEXT, replies)
    loaded, loaded_tokenizer = load_preference_model(tmp_path / "pm", device="cpu")
    assert len(loaded_tokenizer) == len(tokenizer)
    assert score_responses(loaded, loaded_tokenizer, CONTEXT, replies) == pytest.approx(
        before, abs=1e-5
    )
    via_spec, _ = preference_model_from_spec(str(tmp_path / "pm"), device="cpu")
    assert torch.equal(via_spec.value_head.bias, loaded.value_head.bias)

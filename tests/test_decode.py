"""A decoding step's logits through the transposed output layer equal the plain forward's."""

from __future__ import annotations

import torch
from transformers import DynamicCache

from models_backend.decode import _plain_head, prepare_for_decoding, step_logits
from tests.tiny_models import chaotic_tiny_lm


def _cached_rows(model, rows: int):
    """A cache of a 5-token prompt copied to ``rows`` rows, and the next tokens [rows, 1]."""
    cache = DynamicCache(config=model.config)
    model(input_ids=torch.tensor([[5, 9, 14, 3, 7]]), past_key_values=cache, use_cache=True)
    cache.batch_repeat_interleave(rows)
    return cache, torch.tensor([[11], [22], [33]][:rows])


def test_step_logits_equal_the_plain_forward_for_one_and_several_rows():
    lm = chaotic_tiny_lm(seed=3)
    assert _plain_head(lm.model) is not None  # the fast path is the one under test
    with torch.inference_mode():
        _check_rows(lm, 1)
        _check_rows(lm, 3)


def _check_rows(lm, rows: int) -> None:
    cache, ids = _cached_rows(lm.model, rows)
    plain_cache, _ = _cached_rows(lm.model, rows)
    fast = step_logits(lm.model, ids, past_key_values=cache, use_cache=True)
    plain = lm.model(input_ids=ids, past_key_values=plain_cache, use_cache=True).logits
    assert fast.shape == (rows, lm.model.config.vocab_size)
    torch.testing.assert_close(fast, plain[:, -1, :], rtol=0, atol=1e-5)


@torch.no_grad()
def test_a_changed_output_layer_is_read_again_not_served_from_the_old_copy():
    lm = chaotic_tiny_lm(seed=4)
    cache, ids = _cached_rows(lm.model, 2)
    before = step_logits(lm.model, ids, past_key_values=cache, use_cache=True)
    lm.model.get_output_embeddings().weight.mul_(2)  # tied: the embedding changes too
    cache, ids = _cached_rows(lm.model, 2)
    plain_cache, _ = _cached_rows(lm.model, 2)
    after = step_logits(lm.model, ids, past_key_values=cache, use_cache=True)
    plain = lm.model(input_ids=ids, past_key_values=plain_cache, use_cache=True).logits[:, -1]
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, plain, rtol=0, atol=1e-5)


def test_logit_soft_capping_keeps_the_plain_forward():
    lm = chaotic_tiny_lm(seed=5)
    lm.model.config.final_logit_softcapping = 30.0
    assert _plain_head(lm.model) is None


def test_weights_stored_transposed_give_the_same_logits_and_stay_transposed():
    lm = chaotic_tiny_lm(seed=6)
    ids = torch.tensor([[5, 9, 14, 3, 7], [8, 1, 2, 40, 41]])
    with torch.inference_mode():
        before = lm.model(input_ids=ids).logits
    prepare_for_decoding(lm.model)
    prepare_for_decoding(lm.model)  # a second call changes nothing
    linears = [m for m in lm.model.modules() if isinstance(m, torch.nn.Linear)]
    head = lm.model.get_output_embeddings()
    assert all(
        not m.weight.is_contiguous() and m.weight.t().is_contiguous()
        for m in linears
        if m is not head
    )
    assert head.weight is lm.model.get_input_embeddings().weight  # the tie is kept
    with torch.inference_mode():
        after = lm.model(input_ids=ids).logits
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)

"""One decoding step's logits, with the output layer in the layout the CPU reads fastest.

A decoding step multiplies a few rows (the k candidates, the concurrent turns) by every
weight matrix. On the CPU, ``F.linear`` with 2 rows against the vocabulary-sized output
layer (SmolLM2: 49,152 x 576, 113 MB) takes about 2.5x the time of 1 row, while the
same product against a contiguous transposed copy (``hidden @ W.T``, copied once) takes
what 1 row does: the layer is read once for all rows. The output layer is the largest
matrix of a small model, so this is most of what makes k rows cost more than one
(``benchmarks/generation_k``). On a GPU, and for models whose logits are more than
``lm_head(hidden)`` (soft-capping, scaling, a bias), the plain forward is used.
"""

from __future__ import annotations

import weakref

import torch

# output layer -> (weight version, weight storage, transposed contiguous copy [H, V])
_TRANSPOSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOGIT_EXTRAS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


def step_logits(model, input_ids: torch.Tensor, **inputs) -> torch.Tensor:
    """Logits [B, V] of the last position of ``input_ids`` [B, T] (the cache etc. in
    ``inputs``), equal to ``model(input_ids, **inputs).logits[:, -1]`` to float rounding."""
    head = _plain_head(model)
    if head is None:
        return model(input_ids=input_ids, **inputs).logits[:, -1, :]
    hidden = model.get_decoder()(input_ids=input_ids, **inputs).last_hidden_state  # [B, T, H]
    return hidden[:, -1, :] @ _transposed(head)  # [B, H] @ [H, V]


def _plain_head(model) -> torch.nn.Linear | None:
    """The output layer, where the logits are exactly ``head(decoder(...))`` on the CPU."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not isinstance(head, torch.nn.Linear) or head.bias is not None:
        return None
    if head.weight.device.type != "cpu" or not hasattr(model, "get_decoder"):
        return None
    config = getattr(model, "config", None)
    if any(getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_EXTRAS):
        return None
    return head


def _transposed(head: torch.nn.Linear) -> torch.Tensor:
    weight = head.weight
    # A weight changed in place makes a new copy (inference tensors keep no version).
    key = (None if weight.is_inference() else weight._version, weight.data_ptr())
    kept = _TRANSPOSED.get(head)
    if kept is None or kept[0] != key:
        with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable anywhere
            kept = (key, weight.detach().t().contiguous())
        _TRANSPOSED[head] = kept
    return kept[1]

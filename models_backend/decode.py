"""Decoding on the CPU with the weights in the layout it reads fastest for a few rows.

A decoding step multiplies a few rows (the k candidates, the concurrent turns) by every
weight matrix, which streams from memory. On the CPU, ``F.linear`` with 2 rows against a
row-major weight [out, in] takes about 2x-2.5x the time of 1 row (SmolLM2's
49,152 x 576 output layer: 2.5x), while the same product against the weight stored
transposed, contiguous [in, out], takes what 1 row does: the weight is read once for all
rows. So:

- ``prepare_for_decoding(model)`` stores every linear layer's weight transposed (the
  parameter becomes a transposed view of a contiguous [in, out] tensor: same values, same
  shape, ``F.linear`` then reads the fast layout; no extra memory). For models that
  serve generation only (workers, the generation server, benchmarks), not ones in training.
- ``step_logits`` computes a decoding step's logits against a transposed copy of the
  output layer, which is usually tied to the input embedding and so cannot be re-laid
  (the embedding lookup wants rows).

On a GPU, and for models whose logits are more than ``lm_head(hidden)`` (soft-capping,
scaling, a bias), both leave the model as it is.
"""

from __future__ import annotations

import weakref

import torch

# output layer -> ((weight version, weight storage pointer), transposed contiguous copy [H, V])
_TRANSPOSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOGIT_EXTRAS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


def prepare_for_decoding(model) -> None:
    """Store the weights of ``model``'s linear layers transposed (CPU only; see above)."""
    head = _output_layer(model)
    with torch.no_grad():
        for module in model.modules():
            if not isinstance(module, torch.nn.Linear) or module is head:
                continue
            weight = module.weight
            if weight.device.type != "cpu" or not weight.is_contiguous():
                continue  # a GPU model, or already re-laid
            module.weight = torch.nn.Parameter(
                weight.detach().t().contiguous().t(), requires_grad=weight.requires_grad
            )


def step_logits(model, input_ids: torch.Tensor, **inputs) -> torch.Tensor:
    """Logits [B, V] of the last position of ``input_ids`` [B, T] (the cache etc. in
    ``inputs``), equal to ``model(input_ids, **inputs).logits[:, -1]`` to float rounding."""
    head = _plain_head(model)
    if head is None:
        return model(input_ids=input_ids, **inputs).logits[:, -1, :]
    hidden = model.get_decoder()(input_ids=input_ids, **inputs).last_hidden_state  # [B, T, H]
    return hidden[:, -1, :] @ _transposed(head)  # [B, H] @ [H, V]


def _output_layer(model):
    return model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None


def _plain_head(model) -> torch.nn.Linear | None:
    """The output layer, where the logits are exactly ``head(decoder(...))`` on the CPU."""
    head = _output_layer(model)
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

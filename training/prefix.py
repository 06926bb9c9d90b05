"""A shared prefix (a prompt) whose KV cache is computed once and reused under many rows.

``prefill`` runs the prefix once; a caller expands ``Prefix.kv`` over its batch rows and
passes a 4-D mask (``attention_mask``) that lets every row see the whole prefix. The HHH
evaluation scores answers after it; context distillation runs the teacher after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from models_backend.generation import forward_kwargs


class TooLong(ValueError):
    """A prefix + context + answer longer than the model's positions (nothing is truncated)."""


@dataclass(frozen=True)
class Prefix:
    ids: list[int]  # ids before every group's context (may be empty)
    kv: tuple[tuple[torch.Tensor, torch.Tensor], ...]  # per layer (keys, values): [1, H, P, D]


@torch.inference_mode()
def prefill(model, ids: list[int], *, after: Prefix | None = None) -> Prefix:
    """Run ``ids`` once and keep their KV cache, to reuse for every batch scored after them.

    With ``after``, only ``ids`` are run, on top of (a copy of) that prefix's cache: the
    result is the prefix ``after.ids + ids``, and ``after`` is left as it was.
    """
    before = after or Prefix(ids=[], kv=())
    if not ids:
        return before
    cache_kwarg, keep_kwarg = forward_kwargs(model)
    # the first update of each layer concatenates onto an empty tensor: a copy, not a view
    cache = DynamicCache(ddp_cache_data=before.kv or None, config=model.config)
    kwargs = {
        cache_kwarg: cache,
        "use_cache": True,
        **({"logits_to_keep": 1} if keep_kwarg else {}),
    }
    device = model.get_input_embeddings().weight.device
    model(input_ids=torch.tensor([ids], device=device), **kwargs)
    if any(getattr(cache, "is_sliding", ())):
        raise ValueError("models with sliding-window attention are not supported here")
    return Prefix(ids=before.ids + list(ids), kv=tuple((k, v) for k, v, *_ in cache))


def check_fits(model, length: int) -> None:
    """Fail before any work if a sequence is longer than the model's positions."""
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if limit and length > limit:
        raise TooLong(f"a scored sequence is {length} tokens long; this model reads {limit}")


def attention_mask(model, allowed: torch.Tensor) -> torch.Tensor:
    """SDPA takes the boolean mask (True: may attend); eager attention adds a float mask."""
    implementation = getattr(model.config, "_attn_implementation", "eager")
    if implementation == "sdpa":
        return allowed
    if implementation == "eager":
        dtype = model.get_input_embeddings().weight.dtype
        return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    raise ValueError(f"scoring needs sdpa or eager attention, not {implementation}")

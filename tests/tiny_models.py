"""Tiny models for tests that need varied greedy output."""

import torch

from models_backend.loading import LoadedLM
from models_backend.tiny import build_tiny_random


def chaotic_tiny_lm(seed: int) -> LoadedLM:
    """A tiny random Llama with its layer weights scaled up.

    The plain tiny model's residual stream is dominated by the tied embedding, so greedy
    decoding repeats the last prompt byte forever; scaled up, greedy output varies from
    token to token, which is what the cache and stop-string tests need to mean anything.
    """
    model, tokenizer = build_tiny_random(seed=seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "proj" in name:
                parameter.mul_(10)
    return LoadedLM("tiny-chaotic", model, tokenizer, torch.device("cpu"))

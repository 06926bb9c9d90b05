"""Simulated annotators: given the context and the responses in display order, an order of
display positions, best first, under the question "which is better?" (the worker module
turns it around for "more harmful")."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from models_backend.dialogue import Message

Annotator = Callable[[Sequence[Message], Sequence[str]], list[int]]


def random_annotator(rng: random.Random) -> Annotator:
    def answer(context, texts):
        order = list(range(len(texts)))
        rng.shuffle(order)
        return order

    return answer


def length_annotator(rng: random.Random) -> Annotator:
    """Prefers the longer response (the bias a lazy worker shows); equal lengths at random."""

    def answer(context, texts):
        return sorted(range(len(texts)), key=lambda p: (-len(texts[p]), rng.random()))

    return answer


def pm_annotator(spec: str) -> Annotator:
    """A preference model as the oracle: responses by its reward, highest first. ``spec``:
    a saved preference model directory, or any model spec (a fresh value head). One model,
    shared by the workers' threads (scoring under a lock: one forward pass at a time)."""
    import threading

    # torch only when asked for: the simulator's other annotators need none.
    from models_backend.reward import preference_model_from_spec, score_responses

    pm, tokenizer = preference_model_from_spec(spec)
    lock = threading.Lock()

    def answer(context, texts):
        with lock:
            rewards = score_responses(pm, tokenizer, list(context), list(texts))
        return sorted(range(len(texts)), key=lambda p: -rewards[p])

    return answer


def with_noise(annotator: Annotator, noise: float, rng: random.Random) -> Annotator:
    """With probability ``noise`` the answer is a random order instead (label noise)."""
    if noise <= 0:
        return annotator
    fallback = random_annotator(rng)

    def answer(context, texts):
        return fallback(context, texts) if rng.random() < noise else annotator(context, texts)

    return answer


def make_annotator(
    name: str, *, noise: float, rng: random.Random, oracle: Annotator | None = None
) -> Annotator:
    """``random``, ``length`` or ``pm:SPEC`` (``oracle``: the preference model's annotator,
    loaded once for the whole crowd), with label noise."""
    if name == "random":
        base = random_annotator(rng)
    elif name == "length":
        base = length_annotator(rng)
    elif name.startswith("pm:") and len(name) > 3:
        base = oracle if oracle is not None else pm_annotator(name[3:])
    else:
        raise ValueError(f"unknown annotator {name!r}: use random, length or pm:SPEC")
    return with_noise(base, noise, rng)

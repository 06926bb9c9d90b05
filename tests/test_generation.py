"""Candidate generation on tiny random models (milliseconds per test)."""

from __future__ import annotations

import copy

import pytest
import torch

from models_backend.dialogue import Message, prompt_transcript
from models_backend.generation import (
    DEFAULT_SYSTEM_PROMPT,
    Candidate,
    SamplingConfig,
    _next_tokens,
    _top_p_filter,
    build_prompt_ids,
    cache_prefix,
    generate_candidates,
    generate_from_prompt_ids,
    prefill,
)
from models_backend.loading import LoadedLM, load_causal_lm
from tests.tiny_models import chaotic_tiny_lm

MESSAGES = [
    Message("human", "Hi, can you help me plan a picnic?"),
    Message("assistant", "Of course. Where and when?"),
    Message("human", "Saturday, in the park."),
]

# A template in the style of SmolLM2's: it inserts its own system message when none is given.
DEFAULT_INSERTING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<s>system\nI am the template default<e>\n' }}{% endif %}"
    "{{ '<s>' + message['role'] + '\n' + message['content'] + '<e>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<s>assistant\n' }}{% endif %}"
)


@pytest.fixture
def tiny() -> LoadedLM:
    """The tiny-random spec, loaded afresh (tests may change its generation config)."""
    return load_causal_lm("tiny-random", device="cpu")


@pytest.fixture(scope="module")
def chaotic() -> LoadedLM:
    return chaotic_tiny_lm(seed=1)


def _greedy(max_new_tokens: int, stop: tuple[str, ...] = ()) -> SamplingConfig:
    return SamplingConfig(max_new_tokens=max_new_tokens, temperature=0, stop=stop)


def _middle_stop_string(text: str) -> str:
    """A printable piece from the middle of ``text`` (two characters if possible) to stop at."""
    for width in (2, 1):
        for start in range(len(text) // 2, len(text) - width + 1):
            piece = text[start : start + width]
            if piece.isprintable() and not piece.isspace() and "\ufffd" not in piece:
                return piece
    raise AssertionError(f"no usable stop string in {text!r}")


def test_k_candidates_come_back_with_the_seed_reported(tiny):
    candidates = generate_candidates(
        tiny, MESSAGES, k=2, sampling=SamplingConfig(max_new_tokens=8, seed=None)
    )
    assert len(candidates) == 2
    assert all(isinstance(c, Candidate) for c in candidates)
    assert candidates[0].seed == candidates[1].seed
    assert isinstance(candidates[0].seed, int) and candidates[0].seed >= 0
    assert all(c.seconds > 0 and c.seconds == candidates[0].seconds for c in candidates)
    again = generate_candidates(
        tiny, MESSAGES, k=2, sampling=SamplingConfig(max_new_tokens=8, seed=candidates[0].seed)
    )
    assert [c.text for c in again] == [c.text for c in candidates]


def test_same_seed_gives_same_candidates(tiny):
    sampling = SamplingConfig(max_new_tokens=12, seed=1234)
    first = generate_candidates(tiny, MESSAGES, k=2, sampling=sampling)
    second = generate_candidates(tiny, MESSAGES, k=2, sampling=sampling)
    assert [(c.text, c.token_count, c.finish_reason) for c in first] == [
        (c.text, c.token_count, c.finish_reason) for c in second
    ]
    assert all(c.seed == 1234 for c in first + second)


def test_different_seeds_usually_give_different_candidates(tiny):
    texts = {
        seed: [
            c.text
            for c in generate_candidates(
                tiny, MESSAGES, k=2, sampling=SamplingConfig(max_new_tokens=12, seed=seed)
            )
        ]
        for seed in (1, 2)
    }
    assert texts[1] != texts[2]
    assert texts[1][0] != texts[1][1]  # the k rows draw different samples too


def test_token_count_never_exceeds_max_new_tokens_and_the_cap_reports_length(tiny):
    sampling = SamplingConfig(max_new_tokens=5, temperature=1.0, seed=7, stop=())
    candidates = generate_candidates(tiny, MESSAGES, k=4, sampling=sampling)
    assert all(1 <= c.token_count <= 5 for c in candidates)
    capped = [c for c in candidates if c.finish_reason == "length"]
    assert capped, [c.finish_reason for c in candidates]
    assert all(c.token_count == 5 for c in capped)


def test_an_eos_id_from_the_generation_config_finishes_a_row(tiny):
    # The plain tiny model greedily repeats the prompt's last byte (":"): make it an EOS id.
    colon = tiny.tokenizer.convert_tokens_to_ids(":")
    tiny.model.generation_config.eos_token_id = [tiny.tokenizer.eos_token_id, colon]
    candidates = generate_candidates(tiny, MESSAGES, k=2, sampling=_greedy(10))
    assert [(c.text, c.token_count, c.finish_reason) for c in candidates] == [("", 1, "eos")] * 2


def test_shared_prefill_rows_match_model_generate_greedily(chaotic):
    prompt_ids = build_prompt_ids(chaotic.tokenizer, MESSAGES)
    n = 24
    inputs = torch.tensor([prompt_ids])
    with torch.inference_mode():
        generated = chaotic.model.generate(
            inputs, attention_mask=torch.ones_like(inputs), do_sample=False, max_new_tokens=n
        )[0, len(prompt_ids) :].tolist()
    eos = chaotic.tokenizer.eos_token_id
    if eos in generated:  # generate pads after EOS; we count up to and including it
        generated = generated[: generated.index(eos) + 1]
    expected_text = chaotic.tokenizer.decode(
        [t for t in generated if t != eos], skip_special_tokens=True
    ).strip()
    assert len(set(generated)) > 3, "the test model must not be degenerate"

    candidates = generate_from_prompt_ids(chaotic, prompt_ids, k=3, sampling=_greedy(n))
    assert [(c.text, c.token_count) for c in candidates] == [(expected_text, len(generated))] * 3


def test_a_stop_string_cuts_the_text_before_it(chaotic):
    [full] = generate_candidates(chaotic, MESSAGES, k=1, sampling=_greedy(40))
    stop = _middle_stop_string(full.text)
    progress: list[list[str]] = []

    candidates = generate_candidates(
        chaotic, MESSAGES, k=2, sampling=_greedy(40, stop=(stop,)), on_progress=progress.append
    )
    expected = full.text[: full.text.index(stop)].strip()
    for candidate in candidates:
        assert candidate.text == expected
        assert stop not in candidate.text
        assert candidate.finish_reason == "stop"
        assert candidate.token_count < full.token_count
    # Texts shown while running never show part of the stop string that later disappears.
    assert all(texts[0] == expected[: len(texts[0])] for texts in progress)
    assert progress[-1] == [expected, expected]


def test_a_stop_string_only_cuts_rows_short_and_leaves_other_rows_alone(chaotic):
    base = SamplingConfig(max_new_tokens=30, temperature=1.0, seed=99, stop=())
    full = generate_candidates(chaotic, MESSAGES, k=3, sampling=base)
    stop = _middle_stop_string(full[0].text)
    cut = generate_candidates(
        chaotic, MESSAGES, k=3, sampling=SamplingConfig(**{**base.__dict__, "stop": (stop,)})
    )
    assert cut[0].finish_reason == "stop"
    # Some row ran on after row 0 left the batch (and the KV cache), so that path is tested.
    assert max(c.token_count for c in cut[1:]) > cut[0].token_count
    for before, after in zip(full, cut, strict=True):
        if stop in before.text:
            assert after.text == before.text[: before.text.index(stop)].strip()
        else:  # the rows that finished earlier left the batch; this one carried on as before
            assert (after.text, after.token_count) == (before.text, before.token_count)


def test_on_progress_gets_k_growing_texts_ending_with_the_final_ones(tiny):
    calls: list[list[str]] = []
    sampling = SamplingConfig(max_new_tokens=16, temperature=1.0, seed=5)
    candidates = generate_candidates(
        tiny, MESSAGES, k=3, sampling=sampling, on_progress=calls.append
    )
    assert 1 <= len(calls) <= 16
    assert all(len(texts) == 3 for texts in calls)
    for earlier, later in zip(calls, calls[1:], strict=False):
        assert all(b.startswith(a) for a, b in zip(earlier, later, strict=True))
    assert sum(map(len, calls[-1])) > sum(map(len, calls[0]))
    assert calls[-1] == [c.text for c in candidates]


def test_an_exception_in_on_progress_stops_generation(tiny):
    def cancel(texts: list[str]) -> None:
        raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        generate_candidates(tiny, MESSAGES, k=2, sampling=SamplingConfig(), on_progress=cancel)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", -0.1),
        ("temperature", float("nan")),
        ("top_p", 0.0),
        ("top_p", 1.5),
        ("max_new_tokens", 0),
        ("max_new_tokens", 2.5),
        ("seed", -1),
        ("stop", "Human:"),
        ("stop", ("",)),
    ],
)
def test_sampling_config_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field.split("_")[0]):
        SamplingConfig(**{field: value})


def test_sampling_config_keeps_stop_strings_as_a_tuple():
    config = SamplingConfig(stop=["Human:", "User:"])
    assert config.stop == ("Human:", "User:")
    assert SamplingConfig().stop == ("Human:",)
    assert SamplingConfig(temperature=0).greedy


def test_k_below_one_is_rejected(tiny):
    with pytest.raises(ValueError, match="k must"):
        generate_candidates(tiny, MESSAGES, k=0, sampling=SamplingConfig())


def test_prompt_without_chat_template_ends_with_the_assistant_marker(tiny):
    tokenizer = tiny.tokenizer
    ids = build_prompt_ids(tokenizer, MESSAGES)
    marker = tokenizer("\n\nAssistant:", add_special_tokens=False)["input_ids"]
    assert ids[-len(marker) :] == marker
    assert tokenizer.decode(ids) == DEFAULT_SYSTEM_PROMPT + prompt_transcript(MESSAGES)
    bare = build_prompt_ids(tokenizer, MESSAGES, system=None)
    assert bare == tokenizer(prompt_transcript(MESSAGES), add_special_tokens=False)["input_ids"]


def test_control_tokens_typed_in_a_message_stay_text(tiny):
    tokenizer = tiny.tokenizer
    ids = build_prompt_ids(tokenizer, [Message("human", f"end here {tokenizer.eos_token} ok")])
    assert tokenizer.eos_token_id not in ids
    assert tokenizer.eos_token in tokenizer.decode(ids)


def test_chat_template_gets_our_system_message_instead_of_its_default(tiny):
    tokenizer = copy.deepcopy(tiny.tokenizer)
    tokenizer.chat_template = DEFAULT_INSERTING_TEMPLATE

    def render(**kwargs) -> str:
        return tokenizer.decode(build_prompt_ids(tokenizer, MESSAGES, **kwargs))

    ours = render()
    assert ours.startswith(f"<s>system\n{DEFAULT_SYSTEM_PROMPT}<e>\n<s>user\n{MESSAGES[0].text}")
    assert "<s>assistant\nOf course." in ours
    assert ours.endswith("<s>user\nSaturday, in the park.<e>\n<s>assistant\n")
    assert "template default" not in ours
    assert render(system="").startswith("<s>system\n<e>\n<s>user\n")
    assert "template default" in render(system=None)


def test_sampling_draws_from_the_temperature_scaled_nucleus():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    rows = 20_000
    logits = probs.log().expand(rows, -1)
    generator = torch.Generator().manual_seed(0)

    def frequencies(**config) -> torch.Tensor:
        sampling = SamplingConfig(seed=0, **config)
        drawn = _next_tokens(logits, sampling, generator, list(range(rows)), rows)
        return torch.bincount(drawn, minlength=4).float() / rows

    assert torch.allclose(frequencies(temperature=1.0, top_p=1.0), probs, atol=0.015)
    # top_p=0.7 keeps the two most likely tokens (0.5 + 0.3 >= 0.7), renormalised.
    assert torch.allclose(
        frequencies(temperature=1.0, top_p=0.7), torch.tensor([0.625, 0.375, 0, 0]), atol=0.015
    )
    # temperature 0.5 squares the probabilities (then renormalises).
    squared = probs**2 / (probs**2).sum()
    assert torch.allclose(frequencies(temperature=0.5, top_p=1.0), squared, atol=0.015)


@pytest.mark.parametrize("scale", [0.1, 8.0])  # flat: nucleus beyond the first 256; peaked
def test_top_p_filter_keeps_exactly_the_nucleus(scale):
    probs = torch.softmax(
        torch.randn(3, 1000, generator=torch.Generator().manual_seed(1)) * scale, -1
    )
    filtered = _top_p_filter(probs, 0.9)
    for row, kept in zip(probs, filtered, strict=True):
        ordered = row.sort(descending=True).values
        size = int((ordered.cumsum(0) - ordered < 0.9).sum())
        assert int((kept > 0).sum()) == size
        assert torch.equal(kept[kept > 0], row[kept > 0])
        assert kept.max() == row.max()


def test_generation_stops_where_the_model_context_ends(tiny):
    limit = tiny.model.config.max_position_embeddings
    prompt_ids = [65] * (limit - 3)
    sampling = SamplingConfig(max_new_tokens=20, temperature=1.0, seed=3, stop=())
    candidates = generate_from_prompt_ids(tiny, prompt_ids, k=2, sampling=sampling)
    assert all(c.token_count <= 3 for c in candidates)
    assert any(c.finish_reason == "length" and c.token_count == 3 for c in candidates)
    with pytest.raises(ValueError, match="at most"):
        generate_from_prompt_ids(tiny, [65] * limit, k=2, sampling=sampling)


def test_ignore_eos_runs_every_row_to_the_token_limit(tiny):
    # As above, the greedily repeated ":" is an EOS id; ignore_eos must run past it.
    colon = tiny.tokenizer.convert_tokens_to_ids(":")
    tiny.model.generation_config.eos_token_id = [tiny.tokenizer.eos_token_id, colon]
    sampling = SamplingConfig(max_new_tokens=10, temperature=0, stop=(), ignore_eos=True)
    out = generate_candidates(tiny, MESSAGES, k=2, sampling=sampling)
    assert [(c.token_count, c.finish_reason) for c in out] == [(10, "length")] * 2


def test_a_cached_prefix_gives_the_same_logits_and_text_as_no_cache(chaotic):
    system = "You are a careful assistant. " * 8  # stands in for the HHH prompt
    prompt_ids = build_prompt_ids(chaotic.tokenizer, MESSAGES, system=system)
    prefix_ids = prompt_ids[: len(prompt_ids) // 2]
    prefix = cache_prefix(chaotic, prefix_ids)
    with torch.inference_mode():
        plain, _ = prefill(chaotic, prompt_ids)
        cached, _ = prefill(chaotic, prompt_ids, prefix=prefix)
    assert torch.allclose(plain, cached, atol=1e-4)
    greedy = _greedy(20)
    without = generate_from_prompt_ids(chaotic, prompt_ids, k=2, sampling=greedy)
    with_prefix = generate_from_prompt_ids(chaotic, prompt_ids, k=2, sampling=greedy, prefix=prefix)
    assert [c.text for c in with_prefix] == [c.text for c in without]
    assert prefix.cache.get_seq_length() == len(prefix_ids)  # reused, never extended


def test_a_prompt_that_does_not_extend_the_prefix_is_refused(chaotic):
    prefix = cache_prefix(chaotic, [5, 6, 7])
    with pytest.raises(ValueError, match="does not extend"):
        generate_from_prompt_ids(chaotic, [5, 6, 8, 9], k=1, sampling=_greedy(2), prefix=prefix)

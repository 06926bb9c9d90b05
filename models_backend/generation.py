"""Sample k candidate replies for one assistant turn.

The prompt is encoded once (``build_prompt_ids``), run through the model once (the
*prefill*, batch 1), and its KV cache is copied to k rows. A plain sampling loop then
extends all k rows together, one token per step, so k candidates cost one prefill plus
``max_new_tokens`` small forward passes on a batch of at most k rows. Rows that finish
are dropped from the batch (and from the cache), so a long candidate does not make the
finished ones keep computing.

Reproducibility: a ``torch.Generator`` seeded from ``SamplingConfig.seed`` drives all the
randomness. Noise is drawn for all k rows at every step, whether a row is still running
or not, so row i's tokens depend only on the seed, the step and its own history: the same
seed on the same device, model and dtype gives the same texts, and a stop string only cuts
a row short, never changes what came before it. (CPU and GPU generators differ, so the
same seed gives different texts on different devices.)

Text handed out (``Candidate.text`` and the texts given to ``on_progress``) is decoded
from the row's token ids without special tokens, cut before the first stop string and
stripped of leading and trailing whitespace. While a row is running, its progress text
also holds back a trailing partial character (a multi-byte character split over tokens)
and a trailing partial stop string (``"Hum"`` might become ``"Human:"``), so every
progress text is a prefix of that row's final text and the last ``on_progress`` call
carries exactly the final texts.
"""

from __future__ import annotations

import copy
import inspect
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from models_backend.decode import step_logits
from models_backend.dialogue import ASSISTANT, HUMAN, STOP_STRING, Message, prompt_transcript
from models_backend.loading import LoadedLM

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful, honest and harmless assistant. Answer clearly and kindly, "
    "say so when you are not sure, and do not help anyone cause harm."
)

SEED_BITS = 31  # drawn seeds fit a 32-bit signed database column and a JavaScript number
_MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed accepts 0 .. 2**64 - 1
_CHAT_ROLES = {HUMAN: "user", ASSISTANT: "assistant"}
_NUCLEUS_WIDTH = 256  # top-p looks among this many tokens before sorting the vocabulary
_REPLACEMENT_CHAR = "\ufffd"  # what a decoder shows for an incomplete multi-byte character

FINISH_STOP = "stop"
FINISH_EOS = "eos"
FINISH_LENGTH = "length"


@dataclass(frozen=True)
class SamplingConfig:
    # Most tokens generated per candidate; a row that reaches it finishes with "length".
    max_new_tokens: int = 128
    # Softmax temperature; 0 means greedy decoding (argmax, top_p and seed are then unused).
    temperature: float = 0.8
    # Nucleus sampling: sample from the smallest set of tokens whose probabilities sum to at
    # least top_p (the most likely token is always kept); 1.0 turns it off.
    top_p: float = 0.95
    # Seed of the torch.Generator; None draws a fresh random seed, reported on each Candidate.
    seed: int | None = None
    # A row stops when its decoded text contains one of these; the text is cut before it.
    # Any iterable of non-empty strings is accepted and stored as a tuple.
    stop: tuple[str, ...] = (STOP_STRING,)
    # Keep generating past EOS (benchmarks: every row then runs to max_new_tokens).
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if (
            not _is_number(self.temperature)
            or not math.isfinite(self.temperature)
            or self.temperature < 0
        ):
            raise ValueError(
                "temperature must be a finite number >= 0 (0 means greedy), "
                f"got {self.temperature!r}"
            )
        if not _is_number(self.top_p) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be a number in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (not _is_int(self.seed) or not 0 <= self.seed <= _MAX_SEED):
            raise ValueError(
                f"seed must be None or an integer in [0, 2**64 - 1], got {self.seed!r}"
            )
        if isinstance(self.stop, str) or not isinstance(self.stop, Iterable):
            raise ValueError(f"stop must be a tuple of strings, got {self.stop!r}")
        stop = tuple(self.stop)
        if not all(isinstance(s, str) and s for s in stop):
            raise ValueError(f"stop strings must be non-empty strings, got {stop!r}")
        object.__setattr__(self, "stop", stop)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass
class Candidate:
    text: str  # the reply, cut before any stop string, stripped of surrounding whitespace
    token_count: int  # tokens generated for this row, including the one that finished it
    finish_reason: str  # "stop" (a stop string) | "eos" (an end-of-sequence id) | "length"
    seconds: float  # wall time of the whole generate_candidates call (shared by all k)
    seed: int  # the generator seed: pass it back in SamplingConfig to get the same texts


def build_prompt_ids(
    tokenizer, messages: list[Message], *, system: str | None = DEFAULT_SYSTEM_PROMPT
) -> list[int]:
    """The token ids an assistant reply is generated after.

    Tokenizers with a chat template: the template applied to ``[system] + messages``
    (roles ``user``/``assistant``) with the generation prompt appended. An explicit system
    message always comes first when ``system`` is a string, even ``""``, so a template's
    own default system message (SmolLM2 names itself "SmolLM") never appears; with
    ``system=None`` we add none and the template does what it does by default.

    Tokenizers without one (tiny-random, base or context-distilled models): the plain
    ``Human:``/``Assistant:`` transcript of the paper, ``system + prompt_transcript(messages)``,
    i.e. ``"<system>\\n\\nHuman: …\\n\\nAssistant:"`` (the transcript starts with a blank
    line, which separates it from the system text; without a system text this is exactly
    the hh-rlhf context). It is encoded without added special tokens, except that a BOS id
    is put first where the tokenizer adds one by default (Llama-style base models expect it).

    Either way, control tokens typed inside a message (``<|im_end|>``, ``<|endoftext|>``)
    are encoded as ordinary text, so a person cannot end a turn or forge one by typing them.
    """
    if getattr(tokenizer, "chat_template", None):
        conversation = [] if system is None else [{"role": "system", "content": system}]
        conversation += [{"role": _CHAT_ROLES[m.role], "content": m.text} for m in messages]
        kwargs = {"add_generation_prompt": True, "tokenize": True, "return_dict": False}
        if _accepts(tokenizer.apply_chat_template, "sanitize_control_tokens"):
            kwargs["sanitize_control_tokens"] = True
        ids = tokenizer.apply_chat_template(conversation, **kwargs)
        if isinstance(ids, dict) or hasattr(ids, "input_ids"):  # a BatchEncoding after all
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    text = (system or "") + prompt_transcript(messages)
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None and (not ids or ids[0] != bos):
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        if probe and probe[0] == bos:
            ids = [bos, *ids]
    return list(ids)


def generate_candidates(
    lm: LoadedLM,
    messages: list[Message],
    *,
    k: int,
    sampling: SamplingConfig,
    system: str | None = DEFAULT_SYSTEM_PROMPT,
    on_progress: Callable[[list[str]], None] | None = None,
    prefix: CachedPrefix | None = None,
) -> list[Candidate]:
    """k sampled replies to ``messages`` (see the module docstring for the details).

    ``on_progress``, if given, is called after every step with the k current texts (see
    the module docstring: each is a prefix of its row's final text, and the last call
    carries the final texts). It runs in the generating thread, so the caller throttles
    its own writes; an exception it raises stops generation and propagates (a way to
    cancel).
    """
    prompt_ids = build_prompt_ids(lm.tokenizer, messages, system=system)
    return generate_from_prompt_ids(
        lm, prompt_ids, k=k, sampling=sampling, on_progress=on_progress, prefix=prefix
    )


@dataclass(frozen=True)
class CachedPrefix:
    """Token ids every request starts with (the HHH prompt) and their KV cache, computed
    once per process. Requests continue from a copy, so the cache itself never changes."""

    ids: tuple[int, ...]
    cache: DynamicCache


@torch.inference_mode()
def cache_prefix(lm: LoadedLM, ids: list[int]) -> CachedPrefix:
    _, cache = prefill(lm, ids)
    return CachedPrefix(tuple(ids), cache)


@torch.inference_mode()
def prefill(
    lm: LoadedLM, prompt_ids: list[int], *, prefix: CachedPrefix | None = None
) -> tuple[torch.Tensor, DynamicCache]:
    """Run the prompt (or, with ``prefix``, only what follows it) and return the last
    position's logits (1, vocab) and a batch-1 cache holding the whole prompt."""
    model = lm.model
    cache_kwarg, keep_kwarg = forward_kwargs(model)
    if prefix is None:
        cache, new_ids = DynamicCache(config=model.config), list(prompt_ids)
    else:
        n = len(prefix.ids)
        if len(prompt_ids) <= n or tuple(prompt_ids[:n]) != prefix.ids:
            raise ValueError("the prompt does not extend the cached prefix")
        cache, new_ids = copy.deepcopy(prefix.cache), list(prompt_ids[n:])
    inputs = {cache_kwarg: cache, "use_cache": True}
    if keep_kwarg:
        inputs["logits_to_keep"] = 1
    ids = torch.tensor([new_ids], dtype=torch.long, device=lm.device)
    return model(input_ids=ids, **inputs).logits[:, -1, :], cache


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    text: str = ""  # what is shown: held back while running, final once finished
    finish_reason: str | None = None


def generate_from_prompt_ids(
    lm: LoadedLM,
    prompt_ids: list[int],
    *,
    k: int,
    sampling: SamplingConfig,
    on_progress: Callable[[list[str]], None] | None = None,
    prefix: CachedPrefix | None = None,
) -> list[Candidate]:
    """``generate_candidates`` for a prompt that is already token ids. With ``prefix``,
    the prompt must start with its ids, and only the rest is run through the model."""
    progress = None if on_progress is None else lambda texts: on_progress(texts[0])
    return generate_batch(
        lm, [prompt_ids], ks=[k], sampling=sampling, on_progress=progress, prefix=prefix
    )[0]


@torch.inference_mode()
def generate_batch(
    lm: LoadedLM,
    prompts: list[list[int]],
    *,
    ks: list[int],
    sampling: SamplingConfig,
    on_progress: Callable[[list[list[str]]], None] | None = None,
    prefix: CachedPrefix | None = None,
) -> list[list[Candidate]]:
    """``ks[i]`` candidates for each of several prompts (concurrent turns), in one batch.

    The prompts (what follows ``prefix``) are left-padded to one length and prefilled
    together, one row each; row i's cache is then copied to ``ks[i]`` rows and all rows
    are decoded together. Padding is masked and position ids skip it, so a row computes
    what it would alone (to float rounding). One prompt needs no padding and passes no
    mask: the plain path. ``on_progress`` gets the texts so far, per prompt.
    """
    started = time.perf_counter()
    if not prompts or len(ks) != len(prompts):
        raise ValueError("give one k per prompt, and at least one prompt")
    if not all(_is_int(k) and k >= 1 for k in ks):
        raise ValueError(f"k must be an integer >= 1, got {ks!r}")
    if not all(prompts):
        raise ValueError("the prompt is empty")
    model, tokenizer, device = lm.model, lm.tokenizer, lm.device
    max_new_tokens = _room_left(model, max(map(len, prompts)), sampling.max_new_tokens)
    seed = sampling.seed if sampling.seed is not None else secrets.randbits(SEED_BITS)
    eos_ids = frozenset() if sampling.ignore_eos else _eos_ids(lm)
    generator = None if sampling.greedy else torch.Generator(device=device).manual_seed(seed)
    cache_kwarg, _ = forward_kwargs(model)

    logits, cache, mask, positions = _prefill_batch(lm, prompts, prefix)  # [P, V] …
    owner = [i for i, k in enumerate(ks) for _ in range(k)]  # prompt of each row
    total = len(owner)
    index = torch.tensor(owner, device=device)
    if total != len(prompts):
        cache.batch_select_indices(index)  # row i's cache copied to ks[i] rows
    logits = logits[index]
    if mask is not None:
        mask, positions = mask[index], positions[index]
    log.debug(
        "prefill: %d prompts in %.3fs, ks=%s, seed=%d", len(prompts), _since(started), ks, seed
    )

    rows = [_Row() for _ in range(total)]
    active = list(range(total))  # the rows still in the batch, in batch (and cache) order
    for step in range(1, max_new_tokens + 1):
        chosen = _next_tokens(logits, sampling, generator, active, total)
        for row_index, token in zip(active, chosen.tolist(), strict=True):
            rows[row_index].ids.append(token)
        _update_rows(rows, active, tokenizer, eos_ids, sampling.stop, last=step == max_new_tokens)
        if on_progress is not None:
            on_progress(_per_prompt([row.text for row in rows], owner, len(prompts)))
        keep = [i for i, row_index in enumerate(active) if rows[row_index].finish_reason is None]
        if not keep:
            break
        if len(keep) < len(active):
            kept = torch.tensor(keep, device=device)
            cache.batch_select_indices(kept)
            chosen = chosen[keep]
            active = [active[i] for i in keep]
            if mask is not None:
                mask, positions = mask[kept], positions[kept]
        step_inputs = {cache_kwarg: cache, "use_cache": True}
        if mask is not None:  # padded prompts: the mask grows by one, positions move on
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            positions = positions + 1
            step_inputs |= {"attention_mask": mask, "position_ids": positions}
        logits = step_logits(model, chosen.unsqueeze(1), **step_inputs)  # [rows, V]

    seconds = _since(started)
    generated = sum(len(row.ids) for row in rows)
    log.debug(
        "generated %d tokens in %.3fs (%.1f tokens/s), finish reasons %s",
        generated,
        seconds,
        generated / seconds if seconds > 0 else float("inf"),
        [row.finish_reason for row in rows],
    )
    candidates = [
        Candidate(
            text=row.text,
            token_count=len(row.ids),
            finish_reason=row.finish_reason or FINISH_LENGTH,
            seconds=seconds,
            seed=seed,
        )
        for row in rows
    ]
    return _per_prompt(candidates, owner, len(prompts))


def _since(started: float) -> float:
    return time.perf_counter() - started


def _per_prompt(items: list, owner: list[int], prompts: int) -> list[list]:
    grouped: list[list] = [[] for _ in range(prompts)]
    for item, prompt in zip(items, owner, strict=True):
        grouped[prompt].append(item)
    return grouped


def _prefill_batch(lm: LoadedLM, prompts: list[list[int]], prefix: CachedPrefix | None):
    """Logits of each prompt's last token [P, V], a cache with one row per prompt, and, for
    prompts of different lengths, the attention mask [P, past] and last position ids [P, 1]
    the decoding steps continue from (None for one prompt, or equal lengths)."""
    if len(prompts) == 1:
        logits, cache = prefill(lm, prompts[0], prefix=prefix)
        return logits, cache, None, None
    model, device = lm.model, lm.device
    past = 0 if prefix is None else len(prefix.ids)
    for ids in prompts:
        if prefix is not None and (len(ids) <= past or tuple(ids[:past]) != prefix.ids):
            raise ValueError("the prompt does not extend the cached prefix")
    news = [ids[past:] for ids in prompts]
    width = max(map(len, news))
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.tensor([[pad] * (width - len(n)) + n for n in news], device=device)  # [P, W]
    new_mask = torch.tensor([[0] * (width - len(n)) + [1] * len(n) for n in news], device=device)
    mask = torch.cat([new_mask.new_ones((len(news), past)), new_mask], dim=1)  # [P, past + W]
    positions = (past + new_mask.cumsum(-1) - 1).clamp(min=past)  # [P, W]; pads: unused
    cache_kwarg, keep_kwarg = forward_kwargs(model)
    if prefix is None:
        cache = DynamicCache(config=model.config)
    else:
        cache = copy.deepcopy(prefix.cache)
        cache.batch_repeat_interleave(len(news))
    inputs = {cache_kwarg: cache, "use_cache": True, "attention_mask": mask}
    if keep_kwarg:
        inputs["logits_to_keep"] = 1
    out = model(input_ids=ids, position_ids=positions, **inputs)
    return out.logits[:, -1, :], cache, mask, positions[:, -1:]


def _next_tokens(
    logits: torch.Tensor,
    sampling: SamplingConfig,
    generator: torch.Generator | None,
    active: list[int],
    k: int,
) -> torch.Tensor:
    """One token id per active row: argmax when greedy, else temperature + top-p sampling.

    Sampling uses the exponential-race form of a categorical draw, ``argmax(p / E)`` with
    ``E ~ Exp(1)`` (what ``torch.multinomial`` does for one sample), with noise drawn for
    all k rows so that each row's draws do not depend on which rows are still running.
    """
    logits = logits.float()
    if sampling.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1:
        probs = _top_p_filter(probs, sampling.top_p)
    noise = torch.empty((k, probs.shape[-1]), device=probs.device, dtype=torch.float32)
    noise.exponential_(generator=generator)
    if len(active) < k:
        noise = noise[torch.tensor(active, device=probs.device)]
    return (probs / noise).argmax(dim=-1)


def _top_p_filter(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """Zero every token outside each row's nucleus (the most likely tokens up to mass top_p).

    Exact, but cheaper than sorting the whole vocabulary: the nucleus is looked for among
    the ``_NUCLEUS_WIDTH`` most likely tokens first, and only a row whose nucleus does not
    fit there makes us sort everything.
    """
    vocab = probs.shape[-1]
    width = min(vocab, _NUCLEUS_WIDTH)
    top, order = probs.topk(width, dim=-1)  # sorted, most likely first
    if width < vocab and not bool((top.sum(dim=-1) >= top_p).all()):
        top, order = probs.sort(dim=-1, descending=True)
    before = top.cumsum(dim=-1) - top  # the mass of the tokens ranked above each one
    top = top.masked_fill(before >= top_p, 0.0)  # the most likely token always stays
    return torch.zeros_like(probs).scatter_(-1, order, top)


def _update_rows(
    rows: list[_Row],
    active: list[int],
    tokenizer,
    eos_ids: frozenset[int],
    stops: tuple[str, ...],
    *,
    last: bool,
) -> None:
    """Decode the active rows, detect finishes and set each row's visible text."""
    bodies = [rows[i].ids[:-1] if rows[i].ids[-1] in eos_ids else rows[i].ids for i in active]
    texts = tokenizer.batch_decode(
        bodies, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )
    for row_index, text in zip(active, texts, strict=True):
        row = rows[row_index]
        cut = _first_stop(text, stops)
        if cut is not None:
            row.finish_reason, text = FINISH_STOP, text[:cut]
        elif row.ids[-1] in eos_ids:
            row.finish_reason = FINISH_EOS
        elif last:  # the cap may fall inside a multi-byte character: drop its first bytes
            row.finish_reason, text = FINISH_LENGTH, text.rstrip(_REPLACEMENT_CHAR)
        else:
            text = _hold_back(text, stops)
        row.text = text.strip()


def _first_stop(text: str, stops: tuple[str, ...]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _hold_back(text: str, stops: tuple[str, ...]) -> str:
    """``text`` without a trailing partial character or a trailing start of a stop string."""
    text = text.rstrip(_REPLACEMENT_CHAR)
    longest = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:n]):
                longest = n
                break
    return text[: len(text) - longest]


def _room_left(model, prompt_length: int, max_new_tokens: int) -> int:
    """``max_new_tokens``, or fewer where the model's context would overflow (then "length")."""
    limit = getattr(model.config.get_text_config(), "max_position_embeddings", None)
    if not limit:
        return max_new_tokens
    if prompt_length >= limit:
        raise ValueError(
            f"the prompt is {prompt_length} tokens long; this model reads at most {limit}"
        )
    if prompt_length + max_new_tokens > limit:
        log.debug("only room for %d new tokens before %d", limit - prompt_length, limit)
    return min(max_new_tokens, limit - prompt_length)


def _eos_ids(lm: LoadedLM) -> frozenset[int]:
    """The tokenizer's EOS id and every id in the model's generation config."""
    ids: set[int] = set()
    if lm.tokenizer.eos_token_id is not None:
        ids.add(int(lm.tokenizer.eos_token_id))
    config = getattr(lm.model, "generation_config", None)
    configured = getattr(config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured is not None:
        ids.update(int(i) for i in configured)
    return frozenset(ids)


def forward_kwargs(model) -> tuple[str, bool]:
    """The model's name for the KV-cache argument, and whether it takes ``logits_to_keep``.

    transformers 5 renamed ``past_key_values`` to ``cache`` during the 5.x series; we ask
    the signature rather than trip the deprecation shim (or miss it in older 5.x).
    """
    parameters = inspect.signature(model.forward).parameters
    cache_kwarg = "cache" if "cache" in parameters else "past_key_values"
    return cache_kwarg, "logits_to_keep" in parameters


def _accepts(function, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

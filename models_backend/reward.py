"""The preference model (PM): a causal LM with a scalar value head read at an end-of-context token.

A scored sequence is ``context ids + response ids + [EOC]``: the dialogue so far
(``prompt_transcript``, ending in ``"\\n\\nAssistant:"``), then ``" " + reply``, each
tokenised separately so the shared context is an exact prefix of every response's sequence,
then the end-of-context token, at whose final hidden state the value head reads the reward.

No special tokens (BOS) are added: the dialogue format is plain text, the tiny test model
has no BOS, and the default model's "BOS" is its chat-turn marker ``<|im_start|>``, which
does not belong in a ``Human:``/``Assistant:`` transcript.

Training (``training.preference``) and serving (best-of-n with ``score_responses``) share
``encode_responses`` so a PM is always scored the way it was trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from models_backend.dialogue import Message, prompt_transcript
from models_backend.loading import load_causal_lm

EOC_TOKEN = "<|end_of_context|>"  # appended after every sequence; the reward is read there
VALUE_HEAD_FILE = "value_head.safetensors"
CONFIG_FILE = "preference_config.json"
FORMAT_VERSION = 1


class PreferenceModel(torch.nn.Module):
    """A causal LM kept whole (a later LM loss for PMP needs its head) plus a scalar value head."""

    def __init__(self, lm: torch.nn.Module):
        super().__init__()
        self.lm = lm
        hidden_size = lm.config.get_text_config().hidden_size
        weight = lm.get_input_embeddings().weight
        self.value_head = torch.nn.Linear(hidden_size, 1, device=weight.device, dtype=weight.dtype)
        # Rewards start at about unit scale whatever the width (as in OpenAI's
        # lm-human-preferences reward head), so the first losses are near log 2.
        torch.nn.init.normal_(self.value_head.weight, std=1 / math.sqrt(hidden_size + 1))
        torch.nn.init.zeros_(self.value_head.bias)

    @property
    def trunk(self) -> torch.nn.Module:
        """The decoder without its LM head: no full-vocabulary logits are computed."""
        return getattr(self.lm, self.lm.base_model_prefix)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # input_ids, attention_mask: [B, T], padded on either side; every row has a real token
        mask = attention_mask.long()
        # Positions count real tokens only, so a left-padded row sees the same positions as
        # the row alone would (RoPE is shift-invariant only up to rounding).
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
        hidden = self.trunk(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
        ).last_hidden_state  # [B, T, H]
        last = last_real_index(mask)  # [B]
        final = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # [B, H]
        return self.value_head(final.to(self.value_head.weight.dtype)).squeeze(-1).float()  # [B]


def last_real_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last position whose mask is 1, per row: [B, T] -> [B].

    Found from the mask, never by searching for the pad id (pad == EOS for many models, and
    an EOS inside a sequence is a real token).
    """
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)  # [T]
    return (positions * attention_mask.long()).argmax(-1)  # [B]


def add_eoc_token(tokenizer) -> int:
    """Add the end-of-context token as a special token unless present; return its id."""
    if EOC_TOKEN not in tokenizer.get_vocab():
        # Keep any existing extra special tokens: v5 replaces the list by default.
        tokenizer.add_special_tokens(
            {"extra_special_tokens": [EOC_TOKEN]}, replace_extra_special_tokens=False
        )
    return tokenizer.convert_tokens_to_ids(EOC_TOKEN)


def eoc_id(tokenizer) -> int:
    if EOC_TOKEN not in tokenizer.get_vocab():
        raise ValueError(f"the tokenizer has no {EOC_TOKEN} token: is this a preference model?")
    return tokenizer.convert_tokens_to_ids(EOC_TOKEN)


def preference_model_from_spec(
    spec: str, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[PreferenceModel, object]:
    """A saved PM directory loads whole; any other model spec gets the EOC token and a fresh head.

    ``dtype`` defaults to the loader's choice (bf16 on CUDA); training passes fp32 and lets
    mixed precision cast.
    """
    if is_preference_model_dir(spec):
        return load_preference_model(spec, device=device, dtype=dtype)
    loaded = load_causal_lm(spec, device=device, dtype=dtype)
    tokenizer, lm = loaded.tokenizer, loaded.model
    add_eoc_token(tokenizer)
    if len(tokenizer) > lm.get_input_embeddings().weight.shape[0]:
        lm.resize_token_embeddings(len(tokenizer))  # new rows from the old rows' mean/covariance
    pm = PreferenceModel(lm)
    pm.eval()
    return pm, tokenizer


def save_preference_model(pm: PreferenceModel, tokenizer, out_dir, *, config: dict) -> None:
    """Write the LM, tokenizer, value head and ``preference_config.json`` (the full config)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pm.lm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    head = {k: v.detach().contiguous().cpu() for k, v in pm.value_head.state_dict().items()}
    save_file(head, out / VALUE_HEAD_FILE)
    meta = {"format_version": FORMAT_VERSION, "eoc_token": EOC_TOKEN, "config": config}
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def is_preference_model_dir(path) -> bool:
    path = Path(path).expanduser()
    return (path / CONFIG_FILE).is_file() and (path / VALUE_HEAD_FILE).is_file()


def load_preference_model(
    path, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> tuple[PreferenceModel, object]:
    path = Path(path).expanduser()
    if not is_preference_model_dir(path):
        raise FileNotFoundError(f"{path} is not a saved preference model directory")
    meta = json.loads((path / CONFIG_FILE).read_text())
    if meta.get("eoc_token") != EOC_TOKEN:
        raise ValueError(f"{path}: saved with EOC token {meta.get('eoc_token')!r}, not {EOC_TOKEN}")
    loaded = load_causal_lm(str(path), device=device, dtype=dtype)
    eoc_id(loaded.tokenizer)  # fails loudly if the tokenizer lost the token
    pm = PreferenceModel(loaded.model)
    pm.value_head.load_state_dict(load_file(path / VALUE_HEAD_FILE))
    pm.eval()
    return pm, loaded.tokenizer


@dataclass(frozen=True)
class EncodedGroup:
    sequences: list[list[int]]  # one per response: context ids + response ids + [EOC id]
    context_length: int  # how many leading ids of every sequence are the (shared) context
    truncated: bool  # whether anything was cut to fit max_length


def encode_responses(
    tokenizer, context: list[Message], responses: list[str], *, max_length: int
) -> EncodedGroup:
    """Encode responses to one context, each sequence at most ``max_length`` ids.

    Too long: the context is cut from the LEFT by the same amount for every response (it
    stays a shared prefix; the end of the dialogue matters most). Only if a response plus
    EOC alone exceeds ``max_length`` is the context dropped and that response cut from the
    right, with EOC kept last.
    """
    if max_length < 2:
        raise ValueError("max_length must be at least 2 (one response token and EOC)")
    eoc = eoc_id(tokenizer)
    context_ids = tokenizer(prompt_transcript(context), add_special_tokens=False)["input_ids"]
    response_ids = [tokenizer(" " + r, add_special_tokens=False)["input_ids"] for r in responses]
    longest = max((len(r) for r in response_ids), default=0)
    room = max_length - 1 - longest  # ids left for the context
    if room >= len(context_ids):
        kept, truncated = context_ids, False
    else:
        kept, truncated = context_ids[len(context_ids) - max(room, 0) :], True
    sequences = [kept + r[: max_length - 1 - len(kept)] + [eoc] for r in response_ids]
    return EncodedGroup(sequences=sequences, context_length=len(kept), truncated=truncated)


def pad_right(sequences: list[list[int]], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad id lists into ``input_ids`` and ``attention_mask``, both [N, T] long."""
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # [N, T]
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)  # [N, T]
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


@torch.no_grad()
def score_responses(
    pm: PreferenceModel,
    tokenizer,
    context: list[Message],
    responses: list[str],
    *,
    max_length: int = 512,
    batch_size: int = 16,
) -> list[float]:
    """Rewards for responses to one context (best-of-n), encoded exactly as in training."""
    if not responses:
        return []
    group = encode_responses(tokenizer, context, responses, max_length=max_length)
    device = pm.value_head.weight.device
    was_training = pm.training
    pm.eval()
    try:
        rewards: list[float] = []
        for start in range(0, len(group.sequences), batch_size):
            batch = pad_right(group.sequences[start : start + batch_size], pad_id=pad_id(tokenizer))
            batch = {k: v.to(device) for k, v in batch.items()}
            rewards.extend(pm(**batch).tolist())
        return rewards
    finally:
        pm.train(was_training)


def pad_id(tokenizer) -> int:
    """The pad id (the loader sets pad = EOS where a tokenizer has none); padding is masked."""
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token")
    return tokenizer.pad_token_id

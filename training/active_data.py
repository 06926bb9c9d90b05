"""Cached inputs of the active-selection experiment: frozen features and generated candidates.

A response's feature is the hidden state a preference model's value head reads: the final
hidden state at the end-of-context token after ``context + response`` (``models_backend.
reward``), here of a model spec's trunk, packed one context per row (``training.packing``,
exact). A linear head on these features trained with the PM loss is a preference model
whose trunk is frozen, so it retrains in milliseconds between selection rounds.

Features land in ``cache_dir`` as ``.npy`` files named by the spec and a hash of what
they depend on (spec, ``max_length``, every context and response, ``FEATURES_VERSION``):
a second run over the same data and model reads them instead of running the model.
Generated candidates are cached the same way (``generated_candidates``), keyed by the
assistant spec, the sampling settings (seed included) and the contexts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from models_backend.dialogue import Message
from models_backend.generation import SamplingConfig
from models_backend.reward import VALUE_HEAD_FILE, pad_id, preference_model_from_spec
from training.comparisons import Ranking
from training.objectives import build_units, pack_units
from training.packing import packed_hidden

log = logging.getLogger(__name__)

FEATURES_VERSION = 1  # bump when the way features are computed changes: old files then miss
# A base model gets a new end-of-context embedding drawn at random (``resize_token_embeddings``):
# drawn under this seed, so the same spec gives the same features in every run.
EOC_SEED = 0


def response_features(
    spec: str,
    groups: list[Ranking],
    *,
    max_length: int,
    batch_size: int,
    cache_dir: Path,
    device: str | None = None,
) -> np.ndarray:
    """[R, H] float32: one row per response of ``groups``, in order (group by group)."""
    key = _key([FEATURES_VERSION, spec, max_length], groups)
    path = Path(cache_dir) / f"features-{_slug(spec)}-{key}.npy"
    if path.is_file():
        log.info("features of %d groups from %s", len(groups), path)
        return np.load(path)
    features = compute_features(
        spec, groups, max_length=max_length, batch_size=batch_size, device=device
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}")
    with open(staging, "wb") as handle:
        np.save(handle, features)
    staging.rename(path)  # a crash never leaves a half-written cache file
    return features


@torch.inference_mode()
def compute_features(
    spec: str, groups: list[Ranking], *, max_length: int, batch_size: int, device: str | None
) -> np.ndarray:
    """Run the model: every group (a context and its responses) packed into one row."""
    from tqdm import tqdm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(EOC_SEED)
        pm, tokenizer = preference_model_from_spec(spec, device=device, dtype=torch.float32)
    units, truncated = build_units(tokenizer, groups, objective="ranked", max_length=max_length)
    log.info("features of %d groups with %s (%d contexts cut to fit)", len(units), spec, truncated)
    starts = np.cumsum([0] + [len(u.responses) for u in units])
    width = pm.lm.config.get_text_config().hidden_size
    out = np.zeros((starts[-1], width), dtype=np.float32)
    order = sorted(range(len(units)), key=lambda i: units[i].size)  # similar lengths together
    device_of = pm.value_head.weight.device
    for at in tqdm(range(0, len(order), batch_size), unit="batch"):
        chunk = order[at : at + batch_size]
        batch = pack_units([units[i] for i in chunk], pad=pad_id(tokenizer)).to(device_of)
        hidden = packed_hidden(pm, batch)  # [B, T, H]
        final = hidden[batch.reward_at[:, 0], batch.reward_at[:, 1]].float().cpu().numpy()  # [N, H]
        row = 0
        for i in chunk:  # the batch's rewards come unit by unit, responses in order
            size = len(units[i].responses)
            out[starts[i] : starts[i] + size] = final[row : row + size]
            row += size
    return out


def value_head_rewards(spec: str, features: np.ndarray) -> np.ndarray:
    """[R] rewards of a saved preference model from its own trunk's features (``spec``'s)."""
    head = load_file(Path(spec).expanduser() / VALUE_HEAD_FILE)
    weight, bias = head["weight"].float().numpy(), head["bias"].float().numpy()  # [1, H], [1]
    return (features @ weight.T + bias)[:, 0]


def generated_candidates(
    spec: str,
    contexts: list[tuple[Message, ...]],
    *,
    k: int,
    sampling: SamplingConfig,
    batch_size: int,
    cache_dir: Path,
    device: str | None = None,
) -> list[list[str]]:
    """``k`` replies of assistant ``spec`` (raw, no prompt) to each context, generated once:
    ``batch_size`` contexts per batch, batch i sampled with seed ``sampling.seed + i``."""
    settings = dataclasses.asdict(sampling)
    groups = [Ranking(tuple(context), ("", "")) for context in contexts]  # the key's contexts
    path = Path(cache_dir) / f"generated-{_slug(spec)}-{_key([spec, k, settings], groups)}.json"
    if path.is_file():
        log.info("candidates for %d contexts from %s", len(contexts), path)
        return json.loads(path.read_text())
    from tqdm import tqdm

    from models_backend.assistants import build_assistant
    from models_backend.loading import load_causal_lm

    assistant = build_assistant(load_causal_lm(spec, device=device))
    texts: list[list[str]] = []
    for at in tqdm(range(0, len(contexts), batch_size), unit="batch"):
        chunk = [list(context) for context in contexts[at : at + batch_size]]
        seeded = dataclasses.replace(sampling, seed=sampling.seed + at // batch_size)
        results = assistant.generate_many(chunk, ks=[k] * len(chunk), sampling=seeded)
        texts += [[candidate.text for candidate in group] for group in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}")
    staging.write_text(json.dumps(texts) + "\n")
    staging.rename(path)
    return texts


def _key(settings: list, groups: list[Ranking]) -> str:
    """A hash of the settings and every context and response of ``groups``."""
    digest = hashlib.sha256(json.dumps(settings).encode())
    for group in groups:
        contexts = [[m.role, m.text] for m in group.context]
        digest.update(json.dumps([contexts, list(group.responses)]).encode())
    return digest.hexdigest()[:20]


def _slug(spec: str) -> str:
    """A file-name-safe form of a spec (a directory spec by its last part)."""
    name = Path(spec.rstrip("/")).name or spec
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)[:60]

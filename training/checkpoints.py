"""A training run's output directory: settings, checkpoints, resume, and the finished model.

Layout of ``out``: ``<run file>`` (the full config, and the results once finished),
``checkpoints/step-N`` (the newest only: a model directory plus ``trainer.pt`` holding
the step, optimizer and scheduler state), and at the end the finished model itself. The
finished model's *marker* file (``config.json`` for an LM, ``preference_config.json`` for
a PM) is moved in last, so until the run has finished ``out`` is not a loadable model, and
a crash never leaves one half-written.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
TRAINER_STATE = "trainer.pt"

SaveModel = Callable[[Path], None]  # writes a model into the given (empty) directory


def prepare(out: Path, config: dict, *, run_file: str, marker: str, resume: bool) -> dict | None:
    """Check ``out`` before any work. A fresh run needs it missing or empty; ``resume``
    needs the same settings as the saved ones and returns the newest checkpoint's state
    (``checkpoint``: its directory), or None where no checkpoint was written yet."""
    if (out / marker).exists():
        raise FileExistsError(f"{out} already holds a finished model (choose a new --out)")
    if not resume:
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} already exists (choose a new --out, or --resume)")
        return None
    saved = out / run_file
    if not saved.exists():
        raise FileNotFoundError(f"{out}: nothing to resume (no {run_file})")
    before = json.loads(saved.read_text())["config"]
    changed = [k for k, v in config.items() if before.get(k) != v]
    if changed:
        raise ValueError(f"--resume needs the same settings; these differ: {', '.join(changed)}")
    found = sorted((out / CHECKPOINTS).glob("step-*"), key=lambda p: int(p.name[5:]))
    if not found:
        log.info("%s: no checkpoint yet; starting from step 0", out)
        return None
    state = torch.load(found[-1] / TRAINER_STATE, weights_only=True)
    log.info("resuming from %s (step %d)", found[-1], state["step"])
    return {**state, "checkpoint": str(found[-1])}


def write_run_file(out: Path, run_file: str, config: dict, result: dict | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    staging = out / f".{run_file}.tmp"
    staging.write_text(json.dumps({"config": config, "result": result}, indent=2) + "\n")
    staging.replace(out / run_file)


def save_checkpoint(out: Path, step: int, save_model: SaveModel, state: dict) -> None:
    """``out/checkpoints/step-N``: written beside, renamed into place, older ones removed."""
    folder = out / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".step-", dir=folder))
    try:
        save_model(staging)
        torch.save({**state, "step": step}, staging / TRAINER_STATE)
        staging.rename(folder / f"step-{step}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for old in folder.glob("step-*"):
        if old.name != f"step-{step}":
            shutil.rmtree(old, ignore_errors=True)
    log.info("checkpoint saved at step %d", step)


def finish(out: Path, save_model: SaveModel, *, marker: str) -> None:
    """Move the finished model into ``out`` (its marker file last); drop the checkpoints."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".final-", dir=out))
    try:
        save_model(staging)
        for file in sorted(staging.iterdir(), key=lambda p: p.name == marker):
            file.replace(out / file.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)

"""Ranked preference model training: a scalar reward per response, the better one pushed higher.

Loss per pair ``log(1 + exp(r_bad - r_good))`` (softplus), mean over the batch; AdamW with
the learning rate decayed linearly to zero. ``accelerate`` places the model and data, so
the same code runs on the CPU (fp32), one GPU (bf16 mixed precision) or many
(``accelerate launch -m training.preference …``).

    python -m training.preference --train train.jsonl --eval test.jsonl \\
        --model smollm2-135m-instruct --out var/runs/pm-1

The last stdout line is one JSON object with the results; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from models_backend import specs
from models_backend.dialogue import Pair
from models_backend.loading import pick_device
from models_backend.reward import (
    PreferenceModel,
    pad_id,
    preference_model_from_spec,
    save_preference_model,
)
from training.data import DataError, PairCollator, encode_pairs, read_hh_rlhf

log = logging.getLogger(__name__)

Progress = Callable[[float, dict], None]


@dataclass
class PreferenceConfig:
    model: str = specs.DEFAULT_SPEC  # model spec to start from, or a saved PM directory
    max_length: int = 512  # ids per sequence incl. EOC; longer contexts are cut from the left
    batch_size: int = 8  # pairs per micro-batch (2× sequences through the model)
    epochs: int = 1  # passes over the training pairs
    lr: float = 1e-5  # peak AdamW learning rate (fine-tuning), decayed linearly to 0
    weight_decay: float = 0.0  # decoupled AdamW decay on matrices; none on biases and norms
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None: no clipping
    max_train: int | None = None  # use only the first N training pairs
    max_eval: int | None = None  # use only the first N evaluation pairs
    seed: int = 0  # seeds the value head, the new EOC embedding and the shuffling
    out: str | None = None  # directory to save the PM in (must not exist); None: do not save
    device: str | None = None  # "cpu" or "cuda"; None: $LAB_DEVICE, else cuda where present

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty spec")
        _at_least("max_length", self.max_length, 2)
        for name in ("batch_size", "epochs", "grad_accum_steps"):
            _at_least(name, getattr(self, name), 1)
        for name in ("max_train", "max_eval"):
            if getattr(self, name) is not None:
                _at_least(name, getattr(self, name), 1)
        _at_least("seed", self.seed, 0)
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0 or None, got {self.max_grad_norm}")
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f'device must be "cpu", "cuda" or None, got {self.device!r}')
        if self.out is not None:
            self.out = str(self.out)  # a Path is fine too; stored as str so the config is JSON
            _check_out_free(Path(self.out))


def _at_least(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _check_out_free(out: Path) -> None:
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise FileExistsError(f"{out} already exists (choose a new --out directory)")


def pair_loss(rewards: torch.Tensor) -> torch.Tensor:
    """rewards [2B] (chosen rows first) -> mean over pairs of log(1 + exp(r_bad - r_good))."""
    good, bad = rewards.chunk(2)  # [B], [B]
    return F.softplus(bad - good).mean()


def fit(
    config: PreferenceConfig,
    train_pairs: list[Pair],
    eval_pairs: list[Pair],
    *,
    progress: Progress | None = None,
) -> dict:
    """Train a PM on ``train_pairs``, evaluate on ``eval_pairs``, save to ``config.out``."""
    train_pairs = train_pairs[: config.max_train]
    eval_pairs = eval_pairs[: config.max_eval]
    if not train_pairs or not eval_pairs:
        raise ValueError("fit needs at least one training pair and one evaluation pair")
    if config.out is not None:
        _check_out_free(Path(config.out))  # fail now, not after hours of training
    accelerator = _make_accelerator(config)
    set_seed(config.seed)
    # fp32 master weights everywhere: on a GPU, mixed precision casts to bf16 inside forward.
    pm, tokenizer = preference_model_from_spec(
        config.model, device=accelerator.device, dtype=torch.float32
    )
    train_set, train_truncated = encode_pairs(tokenizer, train_pairs, max_length=config.max_length)
    start = time.perf_counter()
    # `pm` stays the plain module (what we evaluate and save); _train prepares its own wrapper.
    losses = _train(config, accelerator, pm, train_set, pad_id(tokenizer), progress)
    train_seconds = time.perf_counter() - start
    metrics = evaluate(
        pm,
        tokenizer,
        eval_pairs,
        max_length=config.max_length,
        batch_size=config.batch_size,
        accelerator=accelerator,
    )
    result = {
        "model": config.model,
        "device": str(accelerator.device),
        "train_pairs": len(train_pairs),
        "eval_pairs": metrics["pairs"],
        "epochs": config.epochs,
        "steps": len(losses),
        "train_seconds": round(train_seconds, 3),
        "pairs_per_second": round(len(train_pairs) * config.epochs / train_seconds, 3),
        "truncated_pairs": train_truncated + metrics["truncated"],
        "train_truncated_pairs": train_truncated,
        "eval_truncated_pairs": metrics["truncated"],
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "eval_accuracy": metrics["accuracy"],
        "eval_loss": metrics["loss"],
        "out": config.out,
    }
    if config.out is not None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _save_atomically(pm, tokenizer, Path(config.out), config=config, result=result)
    accelerator.free_memory()
    return result


def _make_accelerator(config: PreferenceConfig) -> Accelerator:
    on_cpu = pick_device(config.device).type == "cpu" or not torch.cuda.is_available()
    bf16 = not on_cpu and torch.cuda.is_bf16_supported()
    return Accelerator(
        cpu=on_cpu,
        mixed_precision="bf16" if bf16 else "no",  # fp32 on the CPU, where bf16 is slow
        gradient_accumulation_steps=config.grad_accum_steps,
    )


def _train(
    config: PreferenceConfig,
    accelerator: Accelerator,
    pm: PreferenceModel,
    train_set: list,
    pad: int,
    progress: Progress | None,
) -> list[float]:
    """The optimisation loop; returns the mean loss of each optimizer step."""
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=PairCollator(pad),
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimizer = torch.optim.AdamW(
        _param_groups(pm, config.weight_decay),
        lr=config.lr,
        fused=accelerator.device.type in ("cpu", "cuda"),  # one kernel: ~2× faster steps on CPU
    )
    pm, optimizer, loader = accelerator.prepare(pm, optimizer, loader)
    # Counted after prepare: with several processes each sees a shard of the loader.
    total_steps = math.ceil(len(loader) / config.grad_accum_steps) * config.epochs
    # Not prepared: accelerate would step a prepared scheduler once per process.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / total_steps)
    log.info(
        "training %d pairs, %d optimizer steps on %s",
        len(train_set),
        total_steps,
        accelerator.device,
    )
    pm.train()
    losses: list[float] = []
    window: list[torch.Tensor] = []  # micro-batch losses of the current optimizer step
    for epoch in range(config.epochs):
        for batch in loader:
            with accelerator.accumulate(pm):
                loss = pair_loss(pm(**batch))  # batch: input_ids, attention_mask [2B, T]
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(pm.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            window.append(loss.detach())
            if accelerator.sync_gradients:
                scheduler.step()
                step_loss = accelerator.reduce(torch.stack(window).mean(), "mean").item()
                losses.append(step_loss)
                window.clear()
                if progress is not None and accelerator.is_main_process:
                    info = {
                        "loss": step_loss,
                        "step": len(losses),
                        "total_steps": total_steps,
                        "epoch": epoch,
                    }
                    progress(len(losses) / total_steps, info)
    pm.eval()
    return losses


def _param_groups(pm: PreferenceModel, weight_decay: float) -> list[dict]:
    lm = pm.lm
    output = lm.get_output_embeddings()
    if output is not None and output.weight is not lm.get_input_embeddings().weight:
        # An untied LM head gets no gradient from the PM loss: freeze it so DDP does not
        # wait for it and the optimizer keeps no state for it (PMP's LM loss will unfreeze).
        output.requires_grad_(False)
    params = [p for p in pm.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


@torch.no_grad()
def evaluate(
    pm: PreferenceModel,
    tokenizer,
    pairs: list[Pair],
    *,
    max_length: int,
    batch_size: int,
    accelerator: Accelerator | None = None,
) -> dict:
    """Accuracy (r_chosen > r_rejected, ties count as wrong), mean pair loss, pairs, truncated."""
    encoded, truncated = encode_pairs(tokenizer, pairs, max_length=max_length)
    loader = DataLoader(encoded, batch_size=batch_size, collate_fn=PairCollator(pad_id(tokenizer)))
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    device = pm.value_head.weight.device
    was_training = pm.training
    pm.eval()
    margins = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        if accelerator is not None:
            with accelerator.autocast():
                good, bad = pm(**batch).chunk(2)  # [B], [B]
            margins.append(accelerator.gather_for_metrics(good - bad))
        else:
            good, bad = pm(**batch).chunk(2)  # [B], [B]
            margins.append(good - bad)
    pm.train(was_training)
    margin = torch.cat(margins).float()  # [N] r_chosen - r_rejected
    return {
        "accuracy": (margin > 0).float().mean().item(),
        "loss": F.softplus(-margin).mean().item(),
        "pairs": margin.numel(),
        "truncated": truncated,
    }


def _save_atomically(pm, tokenizer, out: Path, *, config: PreferenceConfig, result: dict) -> None:
    """Write into a temporary sibling, then rename: a crash leaves no half-written PM."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it owner-only; the saved model is for others to read
    try:
        saved = {"training": dataclasses.asdict(config), "result": result}
        save_preference_model(pm, tokenizer, staging, config=saved)
        staging.rename(out)  # onto a missing or empty directory: atomic on POSIX
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit status 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m training.preference", description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, help="hh-rlhf JSONL of training comparisons")
    p.add_argument("--eval", required=True, help="hh-rlhf JSONL of held-out comparisons")
    p.add_argument(
        "--model", default=PreferenceConfig.model, help="model spec or saved PM directory"
    )
    p.add_argument("--out", help="directory to save the trained PM in (must not exist)")
    p.add_argument("--max-length", type=int, default=PreferenceConfig.max_length)
    p.add_argument("--batch-size", type=int, default=PreferenceConfig.batch_size)
    p.add_argument("--epochs", type=int, default=PreferenceConfig.epochs)
    p.add_argument("--lr", type=float, default=PreferenceConfig.lr)
    p.add_argument("--weight-decay", type=float, default=PreferenceConfig.weight_decay)
    p.add_argument("--grad-accum", type=int, default=PreferenceConfig.grad_accum_steps)
    p.add_argument("--max-train", type=int, help="use only the first N training pairs")
    p.add_argument("--max-eval", type=int, help="use only the first N evaluation pairs")
    p.add_argument("--seed", type=int, default=PreferenceConfig.seed)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        config = PreferenceConfig(
            model=args.model,
            max_length=args.max_length,
            batch_size=args.batch_size,
            epochs=args.epochs,
            lr=args.lr,
            weight_decay=args.weight_decay,
            grad_accum_steps=args.grad_accum,
            max_train=args.max_train,
            max_eval=args.max_eval,
            seed=args.seed,
            out=args.out,
            device=args.device,
        )
        specs.resolve(config.model)  # a missing model directory fails before any data is read
        train_pairs = read_hh_rlhf(args.train, limit=config.max_train)
        eval_pairs = read_hh_rlhf(args.eval, limit=config.max_eval)
        if not train_pairs or not eval_pairs:
            raise DataError(f"{args.train if not train_pairs else args.eval}: no comparisons")
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # DataError is a ValueError
        parser.error(str(exc))
    result = fit(config, train_pairs, eval_pairs, progress=_progress_bar())
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _progress_bar() -> Progress:
    from tqdm import tqdm

    bars = []  # made on the first report, when the number of steps is known

    def update(fraction: float, info: dict) -> None:
        if not bars:
            bars.append(tqdm(total=info["total_steps"], unit="step", file=sys.stderr))
        bar = bars[0]
        bar.update(info["step"] - bar.n)
        bar.set_postfix(loss=f"{info['loss']:.4f}")
        if info["step"] == info["total_steps"]:
            bar.close()

    return update


if __name__ == "__main__":
    sys.exit(main())

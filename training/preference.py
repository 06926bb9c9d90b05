"""Preference model training: ranked PM, binary discrimination or imitation learning, and PMP.

Objectives and PMP: ``training.objectives``. Every context runs once with all of its
responses packed into one row (``training.packing``, exact); batches group units of
similar length. AdamW with the learning rate decayed linearly to zero, gradient
accumulation, checkpoints with the full config and ``--resume``; ``accelerate`` places
the model and data, so the same code runs on the CPU (fp32), one GPU (bf16 mixed
precision) or many (``accelerate launch -m training.preference …``).

    python -m training.preference --train train.jsonl --eval test.jsonl \\
        --model smollm2-135m-instruct --out var/runs/pm-1 [--objective ranked|binary|imitation]
    python -m training.preference --train harmless-base.jsonl …   # holds out every 10th row
    python -m training.preference --format bigbench --train DIR … --pmp        # pre-training
    python -m training.preference --init-from var/runs/pmp … --train small.jsonl  # fine-tune

Evaluation reports pairwise accuracy, the score gap, calibration (ECE; a reliability
diagram PNG in ``--out``) and, beside every accuracy, the length baseline ("the longer
response wins"). Without ``--eval``, every 10th comparison of ``--train`` is held out
(``training.pairs.split_holdout``) before ``--max-train`` / ``--max-eval`` apply. The last
stdout line is one JSON object with the results, for hh-rlhf data with ``row_kinds``: the
rows of each kind (regular, diverged_early, repeated_role) in the WHOLE ``--train`` file,
whatever ``--max-train`` uses; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from models_backend import specs
from models_backend.loading import pick_device
from models_backend.reward import (
    CONFIG_FILE,
    PreferenceModel,
    is_preference_model_dir,
    pad_id,
    preference_model_from_spec,
    save_preference_model,
)
from training import checkpoints
from training.cli import Parser, at_least, check_device, check_optimizer, log_to_stderr
from training.comparisons import Ranking, from_pairs
from training.data import DataError
from training.loaders import FORMATS, hh_rlhf_rankings, load_rankings
from training.objectives import (
    OBJECTIVES,
    PackedScorer,
    Unit,
    build_units,
    pack_units,
    pair_margins,
    score_batch,
)
from training.pairs import split_holdout
from training.pm_metrics import plot_reliability, summarize_pairs

log = logging.getLogger(__name__)

Progress = Callable[[float, dict], None]
RUN_FILE = "training.json"  # the full config (and the results, once finished) of a run
RELIABILITY_PNG = "reliability.png"
PRECISIONS = ("auto", "fp32", "bf16")
_LENGTH_GROUP = 64  # batches per length-sorted group: similar sizes, little padding
HOLDOUT_EVERY = 10  # without --eval, every 10th comparison of --train is held out


@dataclass
class PreferenceConfig:
    model: str = specs.DEFAULT_SPEC  # model spec to start from, or a saved PM directory
    objective: str = "ranked"  # "ranked", "binary" or "imitation" (training.objectives)
    pmp: bool = False  # binarized PMP data (GOOD:/BAD:) plus the LM loss on good sequences
    max_length: int = 512  # ids per sequence incl. EOC; longer contexts are cut from the left
    batch_size: int = 8  # units (contexts with their responses) per micro-batch
    epochs: int = 1  # passes over the training data
    lr: float = 1e-5  # peak AdamW learning rate (fine-tuning), decayed linearly to 0
    weight_decay: float = 0.0  # decoupled AdamW decay on matrices; none on biases and norms
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None: no clipping
    max_train: int | None = None  # use only the first N training rankings
    max_eval: int | None = None  # use only the first N evaluation rankings
    save_every: int = 0  # optimizer steps between checkpoints in ``out``; 0: none
    seed: int = 0  # seeds the value head, the new EOC embedding and the batch order
    out: str | None = None  # directory to save the PM in (new or empty); None: do not save
    device: str | None = None  # "cpu" or "cuda"; None: $LAB_DEVICE, else cuda where present
    # "bf16": bf16 autocast over fp32 master weights; "fp32": none; "auto": bf16 on a GPU
    # that supports it, fp32 on the CPU (where bf16 matmuls are slow)
    precision: str = "auto"

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty spec")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}")
        if self.pmp and self.objective == "imitation":
            raise ValueError("PMP trains a preference model: use it with ranked or binary")
        at_least("max_length", self.max_length, 2)
        for name in ("batch_size", "epochs", "grad_accum_steps"):
            at_least(name, getattr(self, name), 1)
        for name in ("max_train", "max_eval"):
            if getattr(self, name) is not None:
                at_least(name, getattr(self, name), 1)
        at_least("save_every", self.save_every, 0)
        at_least("seed", self.seed, 0)
        check_optimizer(self.lr, self.weight_decay, self.max_grad_norm)
        check_device(self.device)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}")
        if self.out is not None:
            self.out = str(self.out)  # a Path is fine too; stored as str so the config is JSON
            out = Path(self.out)
            if out.exists() and not (out / RUN_FILE).exists() and any(out.iterdir()):
                raise FileExistsError(f"{out} already exists (choose a new --out directory)")


def fit(
    config: PreferenceConfig,
    train: list,
    held_out: list,
    *,
    progress: Progress | None = None,
    resume: bool = False,
) -> dict:
    """Train on ``train``, evaluate on ``held_out`` (rankings, or hh-rlhf pairs), save to
    ``config.out``; with ``resume``, continue the run there from its newest checkpoint."""
    train_rankings = _rankings(train)[: config.max_train]
    eval_rankings = _rankings(held_out)[: config.max_eval]
    if not train_rankings or not eval_rankings:
        raise ValueError("fit needs at least one training and one evaluation comparison")
    out = Path(config.out) if config.out is not None else None
    state = None
    if out is not None:  # fail now, not after hours of training
        state = checkpoints.prepare(
            out, dataclasses.asdict(config), run_file=RUN_FILE, marker=CONFIG_FILE, resume=resume
        )
    accelerator = _make_accelerator(config)
    if out is not None and accelerator.is_main_process:
        checkpoints.write_run_file(out, RUN_FILE, dataclasses.asdict(config), None)
    bf16 = _uses_bf16(config, accelerator.device)
    set_seed(config.seed)
    # fp32 master weights everywhere: on a GPU, mixed precision casts to bf16 inside forward.
    start_from = state["checkpoint"] if state else config.model
    pm, tokenizer = preference_model_from_spec(
        start_from, device=accelerator.device, dtype=torch.float32
    )
    units, train_truncated = build_units(
        tokenizer,
        train_rankings,
        objective=config.objective,
        pmp=config.pmp,
        max_length=config.max_length,
    )
    started = time.perf_counter()
    # `pm` stays the plain module (what we evaluate and save); _train prepares its own wrapper.
    losses = _train(config, accelerator, bf16, pm, tokenizer, units, state, out, progress)
    train_seconds = time.perf_counter() - started
    metrics = evaluate(
        pm,
        tokenizer,
        eval_rankings,
        objective=config.objective,
        max_length=config.max_length,
        batch_size=config.batch_size,
        bf16=bf16,
    )
    pairs = sum(len(u.pairs) for u in units)
    result = {
        "model": config.model,
        "objective": config.objective,
        "pmp": config.pmp,
        "device": str(accelerator.device),
        "mixed_precision": "bf16" if bf16 else "no",
        "train_rankings": len(units),
        "train_pairs": pairs,
        "eval_pairs": metrics["pairs"],
        "epochs": config.epochs,
        "steps": len(losses),
        "resumed_from_step": state["step"] if state else 0,
        "train_seconds": round(train_seconds, 3),
        "pairs_per_second": round(pairs * config.epochs / train_seconds, 3),
        "truncated_pairs": train_truncated + metrics["truncated"],
        "train_truncated_pairs": train_truncated,
        "eval_truncated_pairs": metrics["truncated"],
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "eval_accuracy": metrics["accuracy"],
        "eval_weighted_accuracy": metrics["weighted_accuracy"],
        "eval_loss": metrics["loss"],
        "eval_score_gap": metrics["score_gap"],
        "eval_ece": metrics["ece"],
        "length_baseline_accuracy": metrics["length_baseline_accuracy"],
        "eval_reliability": metrics["reliability"],  # bins of the reliability diagram
        "out": config.out,
    }
    if out is not None:
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _save_final(pm, tokenizer, out, config, result)
    accelerator.free_memory()
    return result


def _rankings(items: list) -> list[Ranking]:
    return [r for r in items if isinstance(r, Ranking)] or from_pairs(items)


def _make_accelerator(config: PreferenceConfig) -> Accelerator:
    on_cpu = pick_device(config.device).type == "cpu" or not torch.cuda.is_available()
    # Mixed precision is our own autocast (``_autocast``), not accelerate's: its setting lives
    # in a process-wide singleton, so a second run in one process could not change it.
    return Accelerator(cpu=on_cpu, gradient_accumulation_steps=config.grad_accum_steps)


def _uses_bf16(config: PreferenceConfig, device: torch.device) -> bool:
    if config.precision == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return config.precision == "bf16"


def _autocast(device: torch.device, bf16: bool):
    """bf16 autocast over the fp32 master weights, or nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def length_grouped_batches(units: list[Unit], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of unit indices: shuffled, then sorted by size within groups of
    ``_LENGTH_GROUP`` batches (so a batch holds similar lengths), batch order shuffled."""
    rng = random.Random(seed)
    order = list(range(len(units)))
    rng.shuffle(order)
    span = batch_size * _LENGTH_GROUP
    batches = []
    for start in range(0, len(order), span):
        group = sorted(order[start : start + span], key=lambda i: units[i].size)
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def _train(config, accelerator, bf16, pm, tokenizer, units, state, out, progress) -> list[float]:
    """The optimisation loop; returns the mean loss of each optimizer step it ran."""
    optimizer = torch.optim.AdamW(
        _param_groups(
            pm,
            config.weight_decay,
            lm_loss=config.pmp or config.objective == "imitation",
            pm_loss=config.objective != "imitation",
        ),
        lr=config.lr,
        fused=accelerator.device.type in ("cpu", "cuda"),  # one kernel: ~2× faster steps on CPU
    )
    scorer = PackedScorer(pm, objective=config.objective, pmp=config.pmp)
    model, optimizer = accelerator.prepare(scorer, optimizer)
    per_epoch = math.ceil(len(units) / config.batch_size / accelerator.num_processes)
    steps_per_epoch = math.ceil(per_epoch / config.grad_accum_steps)
    total_steps = steps_per_epoch * config.epochs
    # Not prepared: accelerate would step a prepared scheduler once per process.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / total_steps)
    step = 0
    if state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
    log.info(
        "training on %d units: %d optimizer steps on %s",
        len(units),
        total_steps,
        accelerator.device,
    )
    pad = pad_id(tokenizer)
    model.train()
    losses: list[float] = []
    window: list[torch.Tensor] = []  # micro-batch losses of the current optimizer step
    for epoch in range(step // steps_per_epoch, config.epochs):
        batches = length_grouped_batches(units, config.batch_size, config.seed + epoch)
        done = (
            (step - epoch * steps_per_epoch) * config.grad_accum_steps * accelerator.num_processes
        )
        loader = DataLoader(units, batch_sampler=batches[done:], collate_fn=list)
        for chunk in accelerator.prepare_data_loader(loader, device_placement=False):
            with accelerator.accumulate(model):
                batch = pack_units(chunk, pad=pad).to(accelerator.device)
                with _autocast(accelerator.device, bf16):
                    scored = model(batch, chunk)
                accelerator.backward(scored.loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            window.append(scored.loss.detach())
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            losses.append(accelerator.reduce(torch.stack(window).mean(), "mean").item())
            window.clear()
            if (
                out is not None
                and config.save_every
                and step % config.save_every == 0
                and step < total_steps
            ):
                _save_checkpoint(
                    accelerator, pm, tokenizer, optimizer, scheduler, out, config, step
                )
            if progress is not None and accelerator.is_main_process:
                info = {
                    "loss": losses[-1],
                    "step": step,
                    "total_steps": total_steps,
                    "epoch": epoch,
                }
                progress(step / total_steps, info)
    pm.eval()
    return losses


def _param_groups(
    pm: PreferenceModel, weight_decay: float, *, lm_loss: bool, pm_loss: bool
) -> list[dict]:
    lm = pm.lm
    if not pm_loss:  # imitation learning: the value head is unused (DDP would wait for it)
        pm.value_head.requires_grad_(False)
    output = lm.get_output_embeddings()
    if not lm_loss and output is not None and output.weight is not lm.get_input_embeddings().weight:
        # An untied LM head gets no gradient from the PM loss: freeze it so DDP does not
        # wait for it and the optimizer keeps no state for it (an LM loss needs it).
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
    held_out: list,
    *,
    max_length: int,
    batch_size: int,
    objective: str = "ranked",
    bf16: bool = False,
) -> dict:
    """Pairwise accuracy (ties count as wrong), loss, score gap, calibration and the length
    baseline on every ordered pair of the held-out rankings; ``objective`` "imitation"
    compares responses by mean per-token log-prob, the others by reward."""
    scoring = "imitation" if objective == "imitation" else "ranked"
    units, truncated = build_units(
        tokenizer, _rankings(held_out), objective="ranked", max_length=max_length
    )
    device = pm.value_head.weight.device
    was_training = pm.training
    pm.eval()
    scores: list[torch.Tensor] = []
    for start in range(0, len(units), batch_size):
        chunk = units[start : start + batch_size]
        batch = pack_units(chunk, pad=pad_id(tokenizer)).to(device)
        with _autocast(device, bf16):
            values = (
                score_batch(pm, batch, chunk, objective=scoring, pmp=False).scores.float().cpu()
            )
        at = 0
        for unit in chunk:
            scores.append(values[at : at + len(unit.responses)])
            at += len(unit.responses)
    pm.train(was_training)
    return {**summarize_pairs(pair_margins(units, scores)), "truncated": truncated}


def _save_checkpoint(accelerator, pm, tokenizer, optimizer, scheduler, out, config, step) -> None:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    saved = {"training": dataclasses.asdict(config), "result": None}
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    checkpoints.save_checkpoint(
        out, step, lambda d: save_preference_model(pm, tokenizer, d, config=saved), state
    )


def _save_final(pm, tokenizer, out: Path, config, result: dict) -> None:
    """The PM into ``out`` (``preference_config.json`` last), its run file and diagram."""
    saved = {"training": dataclasses.asdict(config), "result": result}
    checkpoints.finish(
        out, lambda d: save_preference_model(pm, tokenizer, d, config=saved), marker=CONFIG_FILE
    )
    checkpoints.write_run_file(out, RUN_FILE, dataclasses.asdict(config), result)
    plot_reliability(result["eval_reliability"], out / RELIABILITY_PNG)


def build_parser() -> argparse.ArgumentParser:
    d = PreferenceConfig
    p = Parser(prog="python -m training.preference", description=__doc__.split("\n")[0])
    p.add_argument("--train", required=True, help="training comparisons (file or BIG-bench folder)")
    p.add_argument(
        "--eval",
        help=f"held-out comparisons, same format; without it every {HOLDOUT_EVERY}th comparison "
        "of --train is held out (deterministic) and not trained on",
    )
    p.add_argument("--format", choices=FORMATS, default="hh-rlhf", help="data format of both")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--model", default=d.model, help="model spec or saved PM directory")
    start.add_argument("--init-from", help="fine-tune this saved PM (e.g. a PMP checkpoint)")
    p.add_argument("--objective", choices=OBJECTIVES, default=d.objective)
    p.add_argument("--pmp", action="store_true", help="binarized PMP data + LM loss")
    p.add_argument("--out", help="directory to save the trained PM in (new or empty)")
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum_steps)
    p.add_argument("--max-train", type=int, help="use only the first N training comparisons")
    p.add_argument("--max-eval", type=int, help="use only the first N evaluation comparisons")
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    p.add_argument("--precision", choices=PRECISIONS, default=d.precision)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        if args.init_from and not is_preference_model_dir(args.init_from):
            raise ValueError(f"--init-from {args.init_from}: not a saved preference model")
        if args.threads is not None and args.threads < 1:
            raise ValueError("--threads must be at least 1")
        config = PreferenceConfig(
            model=args.init_from or args.model,
            objective=args.objective,
            pmp=args.pmp,
            max_length=args.max_length,
            batch_size=args.batch_size,
            epochs=args.epochs,
            lr=args.lr,
            weight_decay=args.weight_decay,
            grad_accum_steps=args.grad_accum,
            max_train=args.max_train,
            max_eval=args.max_eval,
            save_every=args.save_every,
            seed=args.seed,
            out=args.out,
            device=args.device,
            precision=args.precision,
        )
        specs.resolve(config.model)  # a missing model directory fails before any data is read
        train, held_out, kinds = load_data(args.train, args.eval, fmt=args.format, config=config)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # DataError is a ValueError
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = fit(config, train, held_out, progress=progress_bar(), resume=args.resume)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:
        parser.error(str(exc))
    if kinds is not None:
        result["row_kinds"] = kinds
    if PartialState().is_main_process:  # under DDP every process finishes with the same result
        sys.stdout.write(json.dumps(result) + "\n")
    return 0


def load_data(
    train_path, eval_path, *, fmt: str, config: PreferenceConfig
) -> tuple[list[Ranking], list[Ranking], dict[str, int] | None]:
    """Training and held-out rankings, and for hh-rlhf the ``row_kinds`` of the whole training
    file (None for other formats). Without ``eval_path`` every ``HOLDOUT_EVERY``-th
    comparison of the whole training file is held out; ``fit`` then applies the limits."""
    limit = config.max_train if eval_path is not None else None
    if fmt == "hh-rlhf":
        train, kinds = hh_rlhf_rankings(train_path, limit=limit)
    else:
        train, kinds = load_rankings(train_path, fmt, limit=limit), None
    if not train:
        raise DataError(f"{train_path}: no comparisons")
    if eval_path is None:
        train, held_out = split_holdout(train, every=HOLDOUT_EVERY)
        log.info("no --eval: %d comparisons of %s held out", len(held_out), train_path)
    else:
        held_out = load_rankings(eval_path, fmt, limit=config.max_eval)
        if not held_out:
            raise DataError(f"{eval_path}: no comparisons")
    return train, held_out, kinds


def progress_bar() -> Progress:
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

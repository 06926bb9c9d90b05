"""Context distillation: train the model without the HHH prompt to predict as it does with it.

Objective (Askell et al. 2021; DESIGN §3): minimise KL( p0(X | C) ‖ pθ(X) ) at every
position of each distillation text X, where C is the HHH prompt, the teacher p0 is the
frozen starting model reading C then X, and the student pθ (a trainable copy) reads X
alone. The teacher's KV cache of C is computed once and expanded over every batch, so the
teacher runs only X. Loss over the teacher's top-k tokens plus one bucket (``--top-k``,
default 50, the paper's) or over the full vocabulary (``--full-vocab``). AdamW with the
learning rate decayed linearly to zero, gradient accumulation, and ``accelerate``: the same
command runs on the CPU (fp32), a GPU (bf16 mixed precision) or several
(``accelerate launch -m training.distill …``).

    python -m training.distill --model smollm2-135m-instruct --data texts.jsonl --out DIR
    python -m training.distill --model smollm2-135m-instruct --sample 2000 --out DIR

``DIR`` ends up a model directory (a model spec a campaign can use) with ``distill.json``
(the full config and the results). Checkpoints go to ``DIR/checkpoints/step-N`` (each one
a loadable model directory too); ``--resume`` continues the newest after an interruption.
The last stdout line is one JSON object with the results; progress and logs go to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from models_backend import specs
from models_backend.loading import load_causal_lm, pick_device
from training import checkpoints, distill_data
from training.cli import Parser, at_least, check_device, check_optimizer, log_to_stderr
from training.data import DataError
from training.distill_loss import distill_kl, teacher_targets
from training.prefix import Prefix, TooLong, attention_mask, check_fits, prefill

log = logging.getLogger(__name__)

Progress = Callable[[float, dict], None]
CONFIG_FILE = "distill.json"
TEXTS_FILE = "texts.jsonl"  # sampled texts are kept here, so a resumed run reads the same X
MARKER = "config.json"  # a finished distilled model is a model directory


@dataclass
class DistillConfig:
    model: str = specs.DEFAULT_SPEC  # the teacher, and the student's starting weights
    out: str = ""  # directory for checkpoints and the distilled model (required)
    data: str | None = None  # JSONL of {"text": X}; None: sample ``sample`` texts instead
    sample: int = 0  # texts to sample from the prompted model when ``data`` is None
    sample_tokens: int = 192  # most tokens per sampled text
    prompt_file: str | None = None  # the context C as plain text; None: the packaged HHH prompt
    max_length: int = 256  # tokens of X per text; longer texts are cut at the end (counted)
    max_texts: int | None = None  # use only the first N texts
    top_k: int | None = 50  # teacher tokens kept per position, the rest one bucket; None: full
    batch_size: int = 8  # texts per micro-batch
    grad_accum_steps: int = 1  # micro-batches per optimizer step
    epochs: int = 1  # passes over the texts
    lr: float = 5e-5  # peak AdamW learning rate, decayed linearly to 0 (fine-tuning scale)
    weight_decay: float = 0.0  # decoupled AdamW decay on matrices
    max_grad_norm: float | None = 1.0  # clip the global gradient norm; None: no clipping
    save_every: int = 50  # optimizer steps between checkpoints; 0: none before the end
    seed: int = 0  # seeds sampling and the order of texts
    device: str | None = None  # "cpu" or "cuda"; None: $LAB_DEVICE, else cuda where present

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("model must be a non-empty spec")
        if not self.out:
            raise ValueError("out must name a directory")
        self.out = str(self.out)
        if (self.data is None) == (self.sample < 1):
            raise ValueError("give either data (a text file) or sample (a number of texts >= 1)")
        for name in ("sample_tokens", "max_length", "batch_size", "grad_accum_steps", "epochs"):
            at_least(name, getattr(self, name), 1)
        for name in ("max_texts", "top_k"):
            if getattr(self, name) is not None:
                at_least(name, getattr(self, name), 1)
        at_least("save_every", self.save_every, 0)
        at_least("seed", self.seed, 0)
        check_optimizer(self.lr, self.weight_decay, self.max_grad_norm)
        check_device(self.device)


@dataclass
class _Run:
    """What a run trains on, built once: the teacher, its prompt cache and the encoded texts."""

    teacher: torch.nn.Module
    tokenizer: object  # saved beside every checkpoint, so each one is a loadable model
    prefix: Prefix  # the prompt's KV cache, batch 1
    bos: list[int]  # what the student reads before X (a BOS id, or nothing)
    texts: list[list[int]]  # X as ids, each at most max_length
    truncated: int  # texts cut to max_length


def fit(config: DistillConfig, *, resume: bool = False, progress: Progress | None = None) -> dict:
    """Distil the prompt into a copy of ``config.model``; save it to ``config.out``."""
    out = Path(config.out)
    state = _prepare_out(out, config, resume)
    accelerator = _make_accelerator(config)
    if accelerator.is_main_process:
        _write_config(out, config, None)  # what --resume checks its settings against
    set_seed(config.seed)
    # fp32 master weights; on a GPU mixed precision casts to bf16 inside forward.
    teacher_lm = load_causal_lm(config.model, device=accelerator.device, dtype=torch.float32)
    teacher_lm.model.requires_grad_(False)
    tokenizer = teacher_lm.tokenizer
    start_from = state["checkpoint"] if state else config.model
    student = load_causal_lm(start_from, device=accelerator.device, dtype=torch.float32).model
    texts = _texts(config, teacher_lm, out, accelerator)
    prompt_ids = distill_data.encode_plain(tokenizer, _prompt_text(config), bos=True)
    encoded = [distill_data.encode_plain(tokenizer, t) for t in texts]
    truncated = sum(len(ids) > config.max_length for ids in encoded)
    encoded = [ids[: config.max_length] for ids in encoded if ids]
    check_fits(teacher_lm.model, len(prompt_ids) + max(map(len, encoded)))
    started = time.perf_counter()
    with accelerator.autocast():
        prefix = prefill(teacher_lm.model, prompt_ids)  # the prompt's KV: computed once
    log.info("teacher prompt: %d tokens, cached in %.1fs", len(prompt_ids), _since(started))
    run = _Run(teacher_lm.model, tokenizer, prefix, _bos_of(tokenizer), encoded, truncated)
    started = time.perf_counter()
    losses, tokens = _train(config, accelerator, student, run, state, out, progress)
    seconds = _since(started)
    result = {
        "model": config.model,
        "device": str(accelerator.device),
        "prompt_tokens": len(prompt_ids),
        "texts": len(encoded),
        "truncated_texts": truncated,
        "epochs": config.epochs,
        "steps": len(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_seconds": round(seconds, 3),
        "tokens_per_second": round(tokens / seconds, 2) if seconds > 0 else None,
        "resumed_from_step": state["step"] if state else 0,
        "out": config.out,
    }
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _save_final(accelerator.unwrap_model(student), tokenizer, out, config, result)
    accelerator.free_memory()
    return result


def _since(started: float) -> float:
    return time.perf_counter() - started


def _bos_of(tokenizer) -> list[int]:
    return distill_data.encode_plain(tokenizer, "", bos=True)


def _prompt_text(config: DistillConfig) -> str:
    if config.prompt_file:
        try:
            return Path(config.prompt_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"{config.prompt_file}: cannot read the prompt ({exc})") from exc
    from models_backend.prompt import load_hhh_prompt

    return load_hhh_prompt().transcript()


def _texts(config: DistillConfig, teacher_lm, out: Path, accelerator: Accelerator) -> list[str]:
    """The texts X: read from ``config.data``, or sampled once and kept in ``out``."""
    if config.data is not None:
        return distill_data.read_texts(config.data, limit=config.max_texts)
    kept = out / TEXTS_FILE
    if not kept.exists() and accelerator.is_main_process:
        log.info("sampling %d distillation texts from the prompted model", config.sample)
        with accelerator.autocast():
            texts = distill_data.sample_texts(
                teacher_lm,
                _prompt_text(config),
                count=config.sample,
                max_new_tokens=config.sample_tokens,
                seed=config.seed,
            )
        distill_data.write_texts(kept, texts)
    accelerator.wait_for_everyone()
    return distill_data.read_texts(kept, limit=config.max_texts)


def _make_accelerator(config: DistillConfig) -> Accelerator:
    on_cpu = pick_device(config.device).type == "cpu" or not torch.cuda.is_available()
    bf16 = not on_cpu and torch.cuda.is_bf16_supported()
    return Accelerator(
        cpu=on_cpu,
        mixed_precision="bf16" if bf16 else "no",  # fp32 on the CPU, where bf16 is slow
        gradient_accumulation_steps=config.grad_accum_steps,
    )


def _train(config, accelerator, student, run: _Run, state, out: Path, progress) -> tuple:
    """The optimisation loop; returns (mean loss of each optimizer step run, tokens of X)."""
    optimizer = torch.optim.AdamW(
        _param_groups(student, config.weight_decay),
        lr=config.lr,
        fused=accelerator.device.type in ("cpu", "cuda"),
    )
    student, optimizer = accelerator.prepare(student, optimizer)
    per_epoch = math.ceil(len(run.texts) / config.batch_size / accelerator.num_processes)
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
        "distilling on %d texts: %d optimizer steps on %s",
        len(run.texts),
        total_steps,
        accelerator.device,
    )
    student.train()
    losses: list[float] = []
    window: list[torch.Tensor] = []
    tokens, started = 0, time.perf_counter()
    for epoch in range(step // steps_per_epoch, config.epochs):
        done = (
            (step - epoch * steps_per_epoch) * config.grad_accum_steps * accelerator.num_processes
        )
        for batch in _loader(config, run.texts, epoch, skip=done, accelerator=accelerator):
            with accelerator.accumulate(student):
                loss = _batch_loss(config, accelerator, student, run, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm is not None:
                    accelerator.clip_grad_norm_(student.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad()
            window.append(loss.detach())
            tokens += int(batch["lengths"].sum())
            if not accelerator.sync_gradients:
                continue
            scheduler.step()
            step += 1
            losses.append(accelerator.reduce(torch.stack(window).mean(), "mean").item())
            window.clear()
            if config.save_every and step % config.save_every == 0 and step < total_steps:
                _save_checkpoint(accelerator, student, optimizer, scheduler, run, out, config, step)
            if progress is not None and accelerator.is_main_process:
                seconds = _since(started)
                info = {
                    "step": step,
                    "total_steps": total_steps,
                    "loss": losses[-1],
                    "epoch": epoch,
                }
                progress(step / total_steps, info | {"tokens_per_second": tokens / seconds})
    student.eval()
    return losses, tokens


def _loader(config, texts, epoch: int, *, skip: int, accelerator) -> DataLoader:
    """The epoch's micro-batches in a seeded order, the first ``skip`` left out (resume)."""
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(config.seed + epoch))
    batches = [
        order[i : i + config.batch_size].tolist() for i in range(0, len(texts), config.batch_size)
    ]
    loader = DataLoader(texts, batch_sampler=batches[skip:], collate_fn=_collate)
    return accelerator.prepare_data_loader(loader)


def _collate(texts: list[list[int]]) -> dict:
    lengths = torch.tensor([len(t) for t in texts])  # [B]
    ids = torch.zeros((len(texts), int(lengths.max())), dtype=torch.long)  # [B, T]; 0 pads
    for row, t in enumerate(texts):
        ids[row, : len(t)] = torch.tensor(t)
    return {"ids": ids, "lengths": lengths}


def _batch_loss(config, accelerator, student, run: _Run, batch: dict) -> torch.Tensor:
    ids, lengths = batch["ids"], batch["lengths"]  # [B, T], [B]
    rows, width = ids.shape
    real = torch.arange(width, device=ids.device)[None, :] < lengths[:, None]  # [B, T]
    with torch.no_grad(), accelerator.autocast():
        teacher = teacher_logits(run.teacher, run.prefix, ids, real)  # [B, T, V]
        targets = teacher_targets(teacher[real], config.top_k)  # over the N real positions
        del teacher
    bos = torch.tensor(run.bos, dtype=torch.long, device=ids.device).expand(rows, -1)  # [B, b]
    student_ids = torch.cat([bos, ids], dim=1)  # [B, b + T]
    mask = torch.cat([torch.ones_like(bos, dtype=torch.bool), real], dim=1).long()
    with accelerator.autocast():
        logits = student(input_ids=student_ids, attention_mask=mask, use_cache=False).logits
    return distill_kl(logits[:, len(run.bos) :][real], targets)


def teacher_logits(model, prefix: Prefix, ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Logits [B, T, V] of X (ids [B, T], right-padded; real [B, T]) after the cached prefix.

    The prefix's KV (batch 1) is expanded over the rows, not copied per row by hand; a 4-D
    mask lets every position see the whole prefix and the real tokens of X before it.
    """
    rows, width = ids.shape
    past = len(prefix.ids)
    causal = torch.ones((width, width), dtype=torch.bool, device=ids.device).tril()  # [T, T]
    own = causal[None] & real[:, None, :]  # [B, T, T] query, key
    allowed = torch.cat(
        [torch.ones((rows, width, past), dtype=torch.bool, device=ids.device), own], -1
    )
    positions = (past + torch.arange(width, device=ids.device)).expand(rows, -1)  # [B, T]
    kwargs = {"use_cache": bool(prefix.kv)}
    if prefix.kv:
        from transformers import DynamicCache

        from models_backend.generation import forward_kwargs

        expanded = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix.kv]
        kwargs[forward_kwargs(model)[0]] = DynamicCache(
            ddp_cache_data=expanded, config=model.config
        )
    return model(
        input_ids=ids,
        attention_mask=attention_mask(model, allowed[:, None]).to(ids.device),  # [B,1,T,P+T]
        position_ids=positions,
        **kwargs,
    ).logits


def _param_groups(model, weight_decay: float) -> list[dict]:
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


# -- checkpoints ---------------------------------------------------------------------------


def _prepare_out(out: Path, config: DistillConfig, resume: bool) -> dict | None:
    """Check ``out`` before any work; with ``resume``, the newest checkpoint's state."""
    return checkpoints.prepare(
        out, dataclasses.asdict(config), run_file=CONFIG_FILE, marker=MARKER, resume=resume
    )


def _save_checkpoint(accelerator, student, optimizer, scheduler, run, out, config, step) -> None:
    """The student (a loadable model directory, tokenizer included) and the trainer state."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    model = accelerator.unwrap_model(student)

    def save(folder: Path) -> None:
        model.save_pretrained(folder)
        run.tokenizer.save_pretrained(folder)

    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    checkpoints.save_checkpoint(out, step, save, state)


def _write_config(out: Path, config: DistillConfig, result: dict | None) -> None:
    checkpoints.write_run_file(out, CONFIG_FILE, dataclasses.asdict(config), result)


def _save_final(student, tokenizer, out: Path, config: DistillConfig, result: dict) -> None:
    """The distilled model into ``out`` itself, ``config.json`` last."""

    def save(folder: Path) -> None:
        student.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    checkpoints.finish(out, save, marker=MARKER)
    _write_config(out, config, result)


# -- command line --------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    d = DistillConfig
    p = Parser(prog="python -m training.distill", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=d.model, help="model spec of the teacher and student")
    p.add_argument("--out", required=True, help="directory for the distilled model")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help='JSONL of {"text": …} distillation texts')
    source.add_argument("--sample", type=int, help="sample N texts from the prompted model")
    p.add_argument("--sample-tokens", type=int, default=d.sample_tokens)
    p.add_argument("--prompt-file", help="the context C (default: the packaged HHH prompt)")
    p.add_argument("--max-length", type=int, default=d.max_length)
    p.add_argument("--max-texts", type=int, help="use only the first N texts")
    vocab = p.add_mutually_exclusive_group()
    vocab.add_argument("--top-k", type=int, default=d.top_k, help="teacher tokens kept (50)")
    vocab.add_argument("--full-vocab", action="store_true", help="KL over the full vocabulary")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--grad-accum", type=int, default=d.grad_accum_steps)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--save-every", type=int, default=d.save_every, help="steps; 0: only the end")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        config = DistillConfig(
            model=args.model,
            out=args.out,
            data=args.data,
            sample=args.sample or 0,
            sample_tokens=args.sample_tokens,
            prompt_file=args.prompt_file,
            max_length=args.max_length,
            max_texts=args.max_texts,
            top_k=None if args.full_vocab else args.top_k,
            batch_size=args.batch_size,
            grad_accum_steps=args.grad_accum,
            epochs=args.epochs,
            lr=args.lr,
            weight_decay=args.weight_decay,
            save_every=args.save_every,
            seed=args.seed,
            device=args.device,
        )
        specs.resolve(config.model)  # a missing model directory fails before any work
        if config.data is not None:
            distill_data.read_texts(config.data, limit=config.max_texts)  # bad lines fail now
        _prompt_text(config)
        if args.threads is not None and args.threads < 1:
            raise ValueError("--threads must be at least 1")
    except (ValueError, FileNotFoundError) as exc:  # DataError is a ValueError
        parser.error(str(exc))
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = fit(config, resume=args.resume, progress=_progress_bar())
    except (TooLong, DataError, FileExistsError, FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _progress_bar() -> Progress:
    from tqdm import tqdm

    bars = []  # made on the first report, when the number of steps is known

    def update(fraction: float, info: dict) -> None:
        if not bars:
            bars.append(tqdm(total=info["total_steps"], unit="step", file=sys.stderr))
            bars[0].update(info["step"] - 1)
        bar = bars[0]
        bar.update(info["step"] - bar.n)
        bar.set_postfix(loss=f"{info['loss']:.4f}", tok_s=f"{info['tokens_per_second']:.0f}")
        if info["step"] == info["total_steps"]:
            bar.close()

    return update


if __name__ == "__main__":
    sys.exit(main())

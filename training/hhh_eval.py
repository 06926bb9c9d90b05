"""Helpers for the HHH evaluation: BIG-bench task files, and log-probs of answers after a context.

Task files (``load_tasks``). A path is one BIG-bench JSON task file, or a folder searched
recursively for files named ``task.json`` (BIG-bench's name for them). A task's category is
the name of the folder its file is in (``helpful``, ``honest``, ``harmless``, ``other`` for
``hhh_alignment``). BIG-bench splits a task into subtasks by putting one ``task.json`` per
subfolder under a parent ``task.json`` that describes the whole; the parent's examples, if it
has any, are the subtasks' again (or a second copy). So a ``task.json`` with another
``task.json`` anywhere below its folder is an *aggregate* and only its subtasks are read:
no example is counted twice. A bad file raises ``DataError`` naming the file (and the example).

Scoring (``score_groups``). A *group* is a shared context and the answers to score after it.
All ids before the groups' contexts (BOS, a prompt) form a ``Prefix`` whose KV cache is
computed once (``prefill``) and reused for every batch. A batch is one row per group,
``[context, answer_1, …, answer_K]``, right-padded, with a 4-D mask that lets each answer see
the prefix, the context and itself only, and position ids that restart after the context
for each answer: exactly the positions and attention of ``prefix + context + answer_k``
run alone, so the shared context is computed once per group and the scores match separate
full forward passes (to float rounding).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import DynamicCache

from models_backend.generation import forward_kwargs
from training.data import DataError
from training.prefix import Prefix, attention_mask, check_fits

log = logging.getLogger(__name__)

TASK_FILE = "task.json"
_SLICE = 512  # answer tokens whose log-softmax is taken at once


@dataclass(frozen=True)
class Example:
    input: str  # the question (for HHH: the person's message, maybe with earlier turns)
    choices: tuple[str, ...]  # the answers, in file order
    target_scores: tuple[float, ...]  # one per choice; the highest score marks a correct choice

    @property
    def correct(self) -> tuple[int, ...]:
        best = max(self.target_scores)
        return tuple(i for i, score in enumerate(self.target_scores) if score == best)


@dataclass(frozen=True)
class Task:
    name: str  # the file's "name" field, else its folder name
    category: str  # the name of the folder the task file is in
    path: str  # the task file
    examples: tuple[Example, ...]


def load_tasks(path) -> list[Task]:
    """The leaf tasks under ``path`` (see the module docstring), in path order."""
    root = Path(path)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        found = sorted(root.rglob(TASK_FILE))
        folders = {f.parent for f in found}
        aggregates = {
            f for f in found if any(d != f.parent and f.parent in d.parents for d in folders)
        }
        for file in sorted(aggregates):
            _read_json(file)  # still a bad file if it does not parse
            log.info(
                "%s: aggregate of the task files below it; its own examples are not read", file
            )
        files = [f for f in found if f not in aggregates]
        if not files:
            raise DataError(f"{root}: no {TASK_FILE} found")
    else:
        raise DataError(f"{root}: no such file or folder")
    return [_read_task(file) for file in files]


def _read_json(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{file}: not a readable JSON file ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(f"{file}: a task file must hold a JSON object")
    return data


def _read_task(file: Path) -> Task:
    data = _read_json(file)
    raw = data.get("examples")
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{file}: 'examples' must be a non-empty list")
    examples = tuple(_read_example(file, index, item) for index, item in enumerate(raw))
    name = data.get("name") if isinstance(data.get("name"), str) else file.parent.name
    return Task(name=name, category=file.parent.name, path=str(file), examples=examples)


def _read_example(file: Path, index: int, item) -> Example:
    where = f"{file}: examples[{index}]"
    if not isinstance(item, dict):
        raise DataError(f"{where}: must be an object")
    if not isinstance(item.get("input"), str):
        raise DataError(f"{where}: 'input' must be a string")
    scores = item.get("target_scores")
    if not isinstance(scores, dict) or len(scores) < 2:
        raise DataError(f"{where}: 'target_scores' must map at least two choices to scores")
    for choice, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise DataError(f"{where}: the score of {choice[:40]!r} is not a number")
    return Example(item["input"], tuple(scores), tuple(float(s) for s in scores.values()))


@dataclass(frozen=True)
class Group:
    context: list[int]  # ids every answer is scored after (at least one)
    answers: list[list[int]]  # the answers' ids (each at least one)


@torch.inference_mode()
def score_groups(
    model,
    prefix: Prefix,
    groups: list[Group],
    *,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Sum of log-probs of each answer given prefix + its group's context: [group][answer].

    Groups are batched longest first (little padding); ``on_batch(n)`` is told how many
    groups each finished batch held.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    check_fits(model, longest_sequence(prefix, groups))
    sums: list[list[float] | None] = [None] * len(groups)
    order = sorted(range(len(groups)), key=lambda i: -_row_length(groups[i]))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        batch = [groups[i] for i in chosen]
        for i, result in zip(chosen, _score_batch(model, prefix, batch), strict=True):
            sums[i] = result
        if on_batch is not None:
            on_batch(len(batch))
    return sums


def longest_sequence(prefix: Prefix | int, groups: list[Group]) -> int:
    """The most ids any scored sequence (prefix + context + one answer) holds."""
    before = prefix if isinstance(prefix, int) else len(prefix.ids)
    return before + max((len(g.context) + max(map(len, g.answers)) for g in groups), default=0)


def _row_length(group: Group) -> int:
    return len(group.context) + sum(len(a) for a in group.answers)


def _score_batch(model, prefix: Prefix, batch: list[Group]) -> list[list[float]]:
    device = model.get_input_embeddings().weight.device
    past, rows, width = len(prefix.ids), len(batch), max(_row_length(g) for g in batch)
    ids = torch.zeros((rows, width), dtype=torch.long)  # [B, T]; pads are id 0, never read
    segment = torch.full((rows, width), -1, dtype=torch.long)  # [B, T] 0 context, k+1 answer k
    positions = torch.full((rows, width), past, dtype=torch.long)  # [B, T]
    predictor, target, owner = [], [], []  # per answer token: (row, position) before it, its id
    for row, group in enumerate(batch):
        n = len(group.context)
        ids[row, :n] = torch.tensor(group.context)
        segment[row, :n] = 0
        positions[row, :n] = past + torch.arange(n)
        at = n
        for k, answer in enumerate(group.answers):
            size = len(answer)
            ids[row, at : at + size] = torch.tensor(answer)
            segment[row, at : at + size] = k + 1
            positions[row, at : at + size] = past + n + torch.arange(size)
            # answer token t is predicted at the context's last token (t = 0), else at t - 1
            predictor += [(row, n - 1)] + [(row, at + t) for t in range(size - 1)]
            target += answer
            owner += [(row, k)] * size
            at += size
    causal = torch.ones((width, width), dtype=torch.bool).tril()  # [T, T] query, key
    seen = (segment[:, :, None] == segment[:, None, :]) | (segment[:, None, :] == 0)  # [B, T, T]
    allowed = torch.cat([torch.ones((rows, width, past), dtype=torch.bool), causal & seen], -1)
    at_row, at_position = torch.tensor(predictor, dtype=torch.long).unbind(-1)  # [N], [N]
    keep = torch.zeros((rows, width), dtype=torch.bool)  # [B, T] positions whose logits we need
    keep[at_row, at_position] = True
    index = (keep.flatten().cumsum(0) - 1).view(rows, width)[at_row, at_position]  # [N]

    cache_kwarg, keep_kwarg = forward_kwargs(model)
    kwargs = {"use_cache": bool(prefix.kv)}
    if prefix.kv:
        expanded = [(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1)) for k, v in prefix.kv]
        kwargs[cache_kwarg] = DynamicCache(ddp_cache_data=expanded, config=model.config)
    if keep_kwarg:
        kwargs["logits_to_keep"] = keep.to(device)
    logits = model(
        input_ids=ids.to(device),
        attention_mask=attention_mask(model, allowed[:, None]).to(device),  # [B, 1, T, P + T]
        position_ids=positions.to(device),
        **kwargs,
    ).logits
    if not keep_kwarg:
        logits = logits[keep.to(device)]
    # logits: [kept, V], in row-major order of ``keep``; log_softmax a slice at a time, so
    # no second [kept, V] tensor is made (a batch of long answers has thousands of rows)
    index, target = index.to(device), torch.tensor(target, device=device)  # [N], [N]
    token = []
    for first in range(0, len(index), _SLICE):
        rows_here = logits[index[first : first + _SLICE]].float().log_softmax(-1)  # [n, V]
        token += rows_here.gather(1, target[first : first + _SLICE, None])[:, 0].cpu().tolist()
    sums = [[0.0] * len(group.answers) for group in batch]
    for (row, k), value in zip(owner, token, strict=True):
        sums[row][k] += value
    return sums

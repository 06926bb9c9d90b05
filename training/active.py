"""Active selection: a preference model's held-out accuracy against the number of labels, for
random and for uncertainty selection. The intended run (on 2 CPU cores, tens of minutes
go to the pool's features and to generating the candidates, both cached in ``--cache`` so a
rerun reads them; the simulation itself takes seconds):

    python -m training.experiments active \\
        --pool hh-rlhf ../shared/data/hh-rlhf/harmless-base-1812.jsonl --generated \\
        --model smollm2-135m-instruct --assistant smollm2-135m-instruct \\
        --out var/experiments/active-1

Two settings, each simulated by ``training.active_sim`` for every seed and both strategies:

- ``pool``: the real comparisons of ``--pool`` as a labelled pool. A ``--held-out``
  fraction of them is split off first (``--split-seed``) and never selected from; the
  learner sees the others as unordered pairs (which side is "A" drawn with the seed) and
  reads a label only by selecting its pair. Held-out accuracy: against the real labels.
- ``generated`` (``--generated``): at most ``--prompts`` contexts of the pool's training
  part, each with ``--candidates`` replies of ``--assistant`` (generated once, cached);
  every pair of one context's replies is a pair (identical texts left out), contexts
  split into pool and held-out ones. An oracle scores every reply: ``pool-head`` (the
  default) is a head fitted to ALL real comparisons of ``--pool`` on the same features,
  i.e. a Bradley–Terry model of the real labels; or a saved preference model directory.
  A pool pair's label is drawn once per seed, A preferred with P = σ(β (r_A − r_B))
  (``--beta``: 1 keeps the noise the fit predicts for real labels; ``inf``: none). The
  learner reads the same features, so it can in principle match the oracle exactly.
  Held-out accuracy: against the oracle's noiseless order (sign of r_A − r_B).

The learner is a linear head on frozen features of ``--model`` (``training.active_data``).
Budgets, seeds, rounds and ``--l2`` are fixed in the parser before any run; nothing is
chosen on the held-out part (``--validate`` scores a validation part of the training part
instead, for choosing settings). Per budget and strategy: mean ± standard deviation over
the seeds, and how many labels random selection needs to reach uncertainty's mean
accuracy (``active_sim.labels_to_reach``), i.e. the label saving 1 − labels / random's.
``--out`` gets ``results.json``, ``results.md`` (the table, also printed) and
``results.png``.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

import numpy as np
from scipy.special import expit

from models_backend import specs
from models_backend.generation import SamplingConfig
from training.active_data import generated_candidates, response_features, value_head_rewards
from training.active_report import summarise
from training.active_sim import (
    STRATEGIES,
    LabelOracle,
    Pairs,
    Task,
    fit_head,
    simulate,
    standardise,
)
from training.comparisons import Ranking
from training.loaders import FORMATS, load_rankings

log = logging.getLogger(__name__)

POOL_HEAD = "pool-head"  # the default oracle: a head fitted to all the pool's real labels


def run(args) -> dict:
    check(args)
    fmt, path = args.pool
    if fmt not in FORMATS:
        raise ValueError(f"--pool format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    rankings = load_rankings(path, fmt)
    if any(len(r.responses) != 2 for r in rankings):
        raise ValueError(f"{path}: the pool must hold pairs (two responses per comparison)")
    features = _features(args.model, rankings, args)  # [2N, H]: chosen, rejected of each
    train, test = _split(len(rankings), args)
    settings = {"pool": _pool_setting(features, train, test, args)}
    if args.generated:
        settings["generated"] = _generated_setting(rankings, features, train, args)
    config = {k: v for k, v in vars(args).items() if k != "command"}
    return {"experiment": "active", "config": config, "settings": settings}


def _features(spec: str, groups: list[Ranking], args) -> np.ndarray:
    return response_features(
        spec,
        groups,
        max_length=args.max_length,
        batch_size=args.batch_size,
        cache_dir=Path(args.cache),
        device=args.device,
    )


def _split(n: int, args) -> tuple[np.ndarray, np.ndarray]:
    """(train, evaluated) indices: a seeded shuffle, the last ``--held-out`` fraction held
    out; with ``--validate`` a validation part of the training part instead."""

    def cut(indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        order = np.random.default_rng(seed).permutation(indices)
        keep = len(order) - max(1, round(args.held_out * len(order)))
        return order[:keep], order[keep:]

    train, held_out = cut(np.arange(n), args.split_seed)
    return cut(train, args.split_seed + 1) if args.validate else (train, held_out)


def _oriented(rows: np.ndarray, rng) -> tuple[Pairs, np.ndarray]:
    """Pairs of feature rows [n, 2] with a random side shown as "A"; and whether the
    second row became "A" (``flipped``)."""
    flipped = rng.random(len(rows)) < 0.5  # [n]
    return Pairs(
        np.where(flipped, rows[:, 1], rows[:, 0]), np.where(flipped, rows[:, 0], rows[:, 1])
    ), flipped


def _pool_setting(features: np.ndarray, train: np.ndarray, test: np.ndarray, args) -> dict:
    standard = standardise(features, features[np.concatenate([2 * train, 2 * train + 1])])
    pool_rows, test_rows = (np.stack([2 * i, 2 * i + 1], 1) for i in (train, test))  # chosen first

    def make_task(seed: int) -> Task:
        rng = np.random.default_rng([seed, 1])  # apart from the selection's stream
        pool, flipped = _oriented(pool_rows, rng)
        test, test_flipped = _oriented(test_rows, rng)
        return Task(standard, pool, LabelOracle(~flipped), test, LabelOracle(~test_flipped))

    return _experiment(make_task, len(train), len(test), args)


def _generated_setting(rankings: list, features: np.ndarray, train: np.ndarray, args) -> dict:
    contexts = list(dict.fromkeys(rankings[i].context for i in train))[: args.prompts]
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, seed=args.generation_seed)
    texts = generated_candidates(
        args.assistant,
        contexts,
        k=args.candidates,
        sampling=sampling,
        batch_size=args.batch_size,
        cache_dir=Path(args.cache),
        device=args.device,
    )
    groups = [Ranking(context, tuple(t)) for context, t in zip(contexts, texts, strict=True)]
    generated = _features(args.model, groups, args)  # [P * k, H]
    rewards = _oracle_rewards(groups, generated, features, args)  # [P * k]
    k = args.candidates
    prompts_train, prompts_test = _split(len(groups), args)
    pool_rows, test_rows = (
        _context_pairs(p, texts, rewards, k) for p in (prompts_train, prompts_test)
    )
    replies = (prompts_train[:, None] * k + np.arange(k)).ravel()  # the pool contexts' replies
    standard = standardise(generated, generated[replies])
    noise_rates: list[float] = []  # per task: pool labels against the oracle's noiseless order

    def make_task(seed: int) -> Task:
        rng = np.random.default_rng([seed, 2])
        pool, _ = _oriented(pool_rows, rng)
        margin = rewards[pool.a] - rewards[pool.b]
        with np.errstate(invalid="ignore"):  # β = inf: σ(±inf) is 1 or 0
            labels = rng.random(len(pool)) < expit(args.beta * margin)
        noise_rates.append(float(np.mean(labels != (margin > 0))))
        test, _ = _oriented(test_rows, rng)
        truth = rewards[test.a] > rewards[test.b]
        return Task(standard, pool, LabelOracle(labels), test, LabelOracle(truth))

    result = _experiment(make_task, len(pool_rows), len(test_rows), args)
    return result | {"contexts": len(groups), "label_noise": round(float(np.mean(noise_rates)), 4)}


def _oracle_rewards(
    groups: list, generated: np.ndarray, pool_features: np.ndarray, args
) -> np.ndarray:
    """Every generated reply's oracle reward: a head fitted to all the pool's real labels
    (on ``--model``'s features, standardised by all pool responses), or a saved PM's."""
    if args.oracle != POOL_HEAD:
        return value_head_rewards(args.oracle, _features(args.oracle, groups, args))
    standard = standardise(pool_features, pool_features)
    w = fit_head(standard[0::2] - standard[1::2], np.ones(len(standard) // 2, bool), args.l2)
    return standardise(generated, pool_features) @ w


def _context_pairs(prompts: np.ndarray, texts: list, rewards: np.ndarray, k: int) -> np.ndarray:
    """[n, 2] feature rows of every pair of one context's replies, both texts different (and
    so their rewards, which the held-out order needs)."""
    pairs = [
        (p * k + i, p * k + j)
        for p in prompts
        for i in range(k)
        for j in range(i + 1, k)
        if texts[p][i] != texts[p][j] and rewards[p * k + i] != rewards[p * k + j]
    ]
    return np.asarray(pairs, dtype=int).reshape(-1, 2)


def _experiment(make_task, pool_size: int, test_size: int, args) -> dict:
    """Every seed and strategy simulated on a fresh task (its own oracles); the summary."""
    budgets = [b for b in args.budgets if b <= pool_size]
    if not budgets:
        raise ValueError(f"the pool has {pool_size} pairs: fewer than the smallest budget")
    if len(budgets) < len(args.budgets):
        log.warning("budgets above the pool's %d pairs left out: %s", pool_size, budgets)
    runs: dict[str, list[list[float]]] = {strategy: [] for strategy in STRATEGIES}
    for seed in args.seeds:
        for strategy in STRATEGIES:
            result = simulate(
                make_task(seed), strategy, budgets, seed=seed, batch=args.batch, l2=args.l2
            )
            runs[strategy].append(result.accuracies)
            log.info("seed %d, %s: %s", seed, strategy, [round(a, 3) for a in result.accuracies])
    return {
        "pool_pairs": pool_size,
        "test_pairs": test_size,
        "budgets": budgets,
        "runs": runs,
        "rows": summarise(budgets, runs),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--pool",
        nargs=2,
        metavar=("FORMAT", "FILE"),
        required=True,
        help="comparisons (pairs) to select from, e.g. hh-rlhf FILE",
    )
    p.add_argument(
        "--generated",
        action="store_true",
        help="also the generated setting: an oracle labels generated pairs",
    )
    p.add_argument(
        "--model", default=specs.DEFAULT_SPEC, help="the frozen trunk whose features the head reads"
    )
    p.add_argument(
        "--assistant", default=specs.DEFAULT_SPEC, help="model spec writing the candidates"
    )
    p.add_argument(
        "--prompts", type=_positive, default=200, help="contexts to generate for (at most)"
    )
    p.add_argument("--candidates", type=_positive, default=4, help="replies per context")
    p.add_argument("--max-new-tokens", type=_positive, default=64, help="per generated reply")
    p.add_argument(
        "--generation-seed", type=int, default=0, help="seed of the first batch's sampling"
    )
    p.add_argument(
        "--oracle", default=POOL_HEAD, help=f"{POOL_HEAD} or a saved preference model directory"
    )
    p.add_argument(
        "--beta",
        type=float,
        default=1.0,
        help="oracle label noise: P(A) = σ(β (r_A − r_B)); inf: none",
    )
    p.add_argument(
        "--budgets", type=_integers, default=[25, 50, 100, 200, 400, 800], help="label budgets"
    )
    p.add_argument("--seeds", type=_integers, default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--batch", type=_positive, default=25, help="labels per round of uncertainty selection"
    )
    p.add_argument("--l2", type=float, default=1.0, help="L2 penalty (prior precision) of the head")
    p.add_argument("--held-out", type=float, default=0.2, help="fraction held out")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the held-out split")
    p.add_argument(
        "--validate",
        action="store_true",
        help="score a validation part of the training part, not the held-out part",
    )
    p.add_argument("--max-length", type=_positive, default=256, help="ids per scored sequence")
    p.add_argument("--batch-size", type=_positive, default=8, help="contexts per forward pass")
    p.add_argument(
        "--cache",
        default=str(Path("var") / "cache" / "active"),
        help="feature and generation cache",
    )
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--out", required=True, help="directory for results.json/.md/.png")


def check(args) -> None:
    """What the parser's types cannot say."""
    if args.budgets[0] < 1:
        raise ValueError("--budgets must be at least 1")
    if args.candidates < 2:
        raise ValueError("--candidates must be at least 2")
    if not (math.isfinite(args.l2) and args.l2 > 0):
        raise ValueError("--l2 must be a positive number")
    if not args.beta > 0:
        raise ValueError("--beta must be positive (inf: no label noise)")
    if args.oracle != POOL_HEAD and not Path(args.oracle).is_dir():
        raise ValueError(f"--oracle {args.oracle}: neither {POOL_HEAD} nor a directory")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def _integers(text: str) -> list[int]:
    try:
        values = sorted({int(s) for s in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated integers: {text!r}") from None
    if not values or values[0] < 0:
        raise argparse.ArgumentTypeError(f"non-negative integers: {text!r}")
    return values

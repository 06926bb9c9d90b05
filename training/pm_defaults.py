"""Choosing the scheduled retrain's defaults on real human comparisons.

The rows of an hh-rlhf file are shuffled once with ``--seed`` and cut into three parts:
``--test`` rows held out (no choice is ever made on them), ``--val`` rows to choose on, and
at most ``--train`` rows to train on. Every candidate in ``GRID`` (fixed before any run)
trains on the same training rows and is scored on the validation rows; the best by
validation accuracy (ties: the faster) is the choice. Only then are the chosen settings and
today's defaults scored on the held-out rows: accuracy with its 95% Wilson interval, ECE
and the length baseline, on the same pairs.

Each candidate's model and result stay in ``--out/NAME`` and a rerun skips finished ones
(a run stopped midway resumes from its last checkpoint), so the grid can be spread over
several sittings:

    python -m training.pm_defaults --data ../shared/data/hh-rlhf/harmless-base-1812.jsonl \\
        --out runs/pm-defaults                      # the grid (validation only)
    python -m training.pm_defaults ... --final      # then the choice, on held-out rows

The last stdout line is one JSON object; a markdown table goes to stdout before it.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from training.loaders import hh_rlhf_rankings
from training.pm_metrics import wilson

TODAY = "today"  # the defaults before this experiment (hhh/settings.py LAB_TRAIN_*)
# The candidates, fixed before the first run. Each trains SmolLM2-135M-Instruct (the lab's
# default base) on the first ``pairs`` rows of the training part. This CPU trains a 135M
# model at roughly 50 tokens/s and a pair here is ~230 tokens (context shared), so a run
# under 50 minutes holds ~600 full-length pairs, or 1,000 with contexts cut to 160 tokens.
GRID: dict[str, dict] = {
    TODAY: {"lr": 1e-5, "max_length": 512, "epochs": 1, "batch_size": 8, "pairs": 600},
    "lr3e-5": {"lr": 3e-5, "max_length": 512, "epochs": 1, "batch_size": 8, "pairs": 600},
    "lr6e-5": {"lr": 6e-5, "max_length": 512, "epochs": 1, "batch_size": 8, "pairs": 600},
    "lr3e-5-len160-1000": {
        "lr": 3e-5,
        "max_length": 160,
        "epochs": 1,
        "batch_size": 8,
        "pairs": 1000,
    },
    # A second round, added after the four above were scored on validation (lr 6e-5 best,
    # runs ~12 minutes once the CPU was free): the best rate with all 1,000 pairs.
    "lr6e-5-1000": {"lr": 6e-5, "max_length": 512, "epochs": 1, "batch_size": 8, "pairs": 1000},
}
RESULT = "result.json"  # a finished candidate's figures, in its folder


def split(rankings: list, *, train: int, val: int, test: int, seed: int):
    """Held-out, validation and training parts of one shuffle (disjoint, fixed by seed)."""
    if test + val >= len(rankings):
        raise ValueError(f"{len(rankings)} rows cannot give {test} held-out and {val} validation")
    order = list(range(len(rankings)))
    random.Random(seed).shuffle(order)
    rows = [rankings[i] for i in order]
    return rows[test + val :][:train], rows[test : test + val], rows[:test]


def run_candidate(name: str, settings: dict, train: list, val: list, args) -> dict:
    """Train one candidate (or read its finished result) and score it on ``val``."""
    from training.preference import PreferenceConfig, fit

    folder = Path(args.out) / name
    done = folder / RESULT
    if done.exists():
        return json.loads(done.read_text())
    training = {key: value for key, value in settings.items() if key != "pairs"}
    config = PreferenceConfig(
        model=args.model,
        out=str(folder / "model"),
        save_every=args.save_every,
        seed=args.seed,
        device="cpu" if args.cpu else None,
        **training,
    )
    resume = (folder / "model").exists()
    pairs = train[: settings["pairs"]]
    result = fit(config, pairs, val, progress=_progress(name), resume=resume)
    result |= {"name": name, "settings": settings, "val_pairs": result["eval_pairs"]}
    folder.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result, indent=2))
    return result


def choose(results: list[dict]) -> dict:
    """The best validation accuracy; on a tie the one that trained faster."""
    return max(results, key=lambda r: (r["eval_accuracy"], -r["train_seconds"]))


def score_held_out(result: dict, test: list, args) -> dict:
    """A finished candidate's saved model on the held-out rows."""
    from models_backend.reward import load_preference_model
    from training.preference import evaluate

    pm, tokenizer = load_preference_model(Path(args.out) / result["name"] / "model", device="cpu")
    settings = result["settings"]
    metrics = evaluate(
        pm,
        tokenizer,
        test,
        max_length=settings["max_length"],
        batch_size=settings["batch_size"],
    )
    correct = round(metrics["accuracy"] * metrics["pairs"])
    return {
        "name": result["name"],
        "settings": settings,
        "pairs": metrics["pairs"],
        "accuracy": round(metrics["accuracy"], 4),
        "interval_95": [round(x, 4) for x in wilson(correct, metrics["pairs"])],
        "ece": round(metrics["ece"], 4),
        "length_baseline_accuracy": round(metrics["length_baseline_accuracy"], 4),
        "truncated_pairs": metrics["truncated"],
    }


def table(results: list[dict]) -> str:
    lines = [
        "| candidate | lr | length | epochs | batch | train pairs | minutes | val accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r["settings"]
        lines.append(
            f"| {r['name']} | {s['lr']:g} | {s['max_length']} | {s['epochs']} | "
            f"{s['batch_size']} | {r['train_pairs']} | {r['train_seconds'] / 60:.1f} | "
            f"{r['eval_accuracy']:.3f} |"
        )
    return "\n".join(lines)


def _progress(name: str):
    def report(fraction: float, info: dict) -> None:
        loss = info.get("loss")
        shown = f" loss {loss:.3f}" if isinstance(loss, float) else ""
        print(f"{name}: {fraction:.0%}{shown}", file=sys.stderr, flush=True)

    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.pm_defaults", description=__doc__)
    parser.add_argument("--data", required=True, help="An hh-rlhf JSONL file of real comparisons.")
    parser.add_argument("--out", required=True, help="Folder for every candidate's model.")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="The base to train.")
    parser.add_argument(
        "--train", type=int, default=1000, help="The training part (a candidate takes ≤ this)."
    )
    parser.add_argument("--val", type=int, default=300, help="Validation pairs (the choice).")
    parser.add_argument("--test", type=int, default=500, help="Held-out pairs (never chosen on).")
    parser.add_argument("--seed", type=int, default=0, help="The shuffle and the training seed.")
    parser.add_argument(
        "--only", nargs="*", choices=list(GRID), help="Run only these candidates now."
    )
    parser.add_argument("--save-every", type=int, default=25, help="Checkpoint every N steps.")
    parser.add_argument("--cpu", action="store_true", help="Train on the CPU even with a GPU.")
    parser.add_argument(
        "--final",
        action="store_true",
        help="Finish the whole grid, then score the choice and today's defaults on the "
        "held-out rows.",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("train", "val", "test"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be at least 1")
    rankings, _kinds = hh_rlhf_rankings(args.data)
    train, val, test = split(
        rankings, train=args.train, val=args.val, test=args.test, seed=args.seed
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    names = args.only or list(GRID)
    if args.final:  # the choice is made on the whole grid (unfinished candidates run first)
        names = list(GRID)
    results = [run_candidate(n, GRID[n], train, val, args) for n in names]
    print(table(results))
    summary: dict = {"validation": results}
    if args.final:
        chosen = choose(results)
        today = next(r for r in results if r["name"] == TODAY)
        summary["chosen"] = chosen["name"]
        summary["held_out"] = [score_held_out(r, test, args) for r in (chosen, today)]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

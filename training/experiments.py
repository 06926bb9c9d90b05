"""Small-scale reproductions of the paper's preference-modelling findings: table + PNG plot.

    python -m training.experiments objectives --ranked DATA --binary DATA \\
        --models tiny-random@2x64,tiny-random@4x128 --out DIR
    python -m training.experiments pmp --pmp-data DATA --finetune DATA --sizes 16,64,256 \\
        --model smollm2-135m-instruct --out DIR
    python -m training.experiments active --pool hh-rlhf DATA [--generated] --out DIR

``objectives``: the three objectives (ranked PM, binary discrimination, imitation learning)
trained on ranked data and on binary data, for each model size; the held-out pairwise
accuracy of each, beside the length baseline. ``pmp``: fine-tuning accuracy against the
number of fine-tuning comparisons, starting from the base model and from a PMP checkpoint
(binarized PMP on ``--pmp-data``). ``active``: held-out accuracy against the number of
labels, random against uncertainty selection (``training.active`` documents it). Data is
any ``training.loaders`` format (``--*-format``; BIG-bench folders by default); each set is
split into train and held-out parts with a fixed seed, so no held-out item is ever trained
on; ``--validate`` carves a validation part out of the training part the same way and
evaluates on it instead, for choosing settings without reading the held-out part.
Everything lands in ``--out``: ``results.json``, ``results.md`` (the table) and
``results.png`` (the plot); the last stdout line is the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

from models_backend.reward import load_preference_model
from training import active, active_report
from training.cli import Parser, log_to_stderr
from training.comparisons import Ranking
from training.loaders import FORMATS, load_rankings
from training.objectives import OBJECTIVES
from training.preference import PreferenceConfig, evaluate, fit, progress_bar

log = logging.getLogger(__name__)


def split(rankings: list[Ranking], held_out: float, seed: int) -> tuple[list, list]:
    """(train, held-out): a seeded shuffle, the last ``held_out`` fraction held out."""
    order = list(rankings)
    random.Random(seed).shuffle(order)
    cut = len(order) - max(1, round(held_out * len(order)))
    return order[:cut], order[cut:]


def train_and_eval(rankings: list[Ranking], args) -> tuple[list, list]:
    """The training part and the part to evaluate on: held-out, or with ``--validate`` a
    validation part of the training part (the held-out part is then never touched)."""
    train, held_out = split(rankings, args.held_out, args.seed)
    if args.validate:
        train, held_out = split(train, args.held_out, args.seed + 1)
    return train, held_out


def _train_settings(args) -> dict:
    return {
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "lr": args.lr,
        "seed": args.seed,
        "device": args.device,
    }


def objectives(args) -> dict:
    rows = []
    for kind, path, fmt in (
        ("ranked", args.ranked, args.ranked_format),
        ("binary", args.binary, args.binary_format),
    ):
        if path is None:
            continue
        train, held_out = train_and_eval(load_rankings(path, fmt), args)
        train, held_out = train[: args.max_train], held_out[: args.max_eval]
        for model in args.models:
            for objective in args.objectives:
                config = PreferenceConfig(model=model, objective=objective, **_train_settings(args))
                result = fit(config, train, held_out, progress=progress_bar())
                rows.append(_row(kind, model, objective, result))
                log.info(
                    "%s data, %s, %s: accuracy %.3f",
                    kind,
                    model,
                    objective,
                    result["eval_accuracy"],
                )
    return {"experiment": "objectives", "rows": rows}


def _row(data: str, model: str, objective: str, result: dict, **extra) -> dict:
    return {
        "data": data,
        "model": model,
        "objective": objective,
        **extra,
        "train_pairs": result["train_pairs"],
        "eval_pairs": result["eval_pairs"],
        "accuracy": round(result["eval_accuracy"], 4),
        "length_baseline": round(result["length_baseline_accuracy"], 4),
        "ece": round(result["eval_ece"], 4),
    }


PMP_DATA_FILE = "pmp_data.json"  # in a PMP checkpoint: the sources it was pre-trained on


def pmp(args) -> dict:
    if args.pmp_checkpoint:
        checkpoint = Path(args.pmp_checkpoint)
        try:
            pmp_data = json.loads((checkpoint / PMP_DATA_FILE).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{checkpoint}: not a PMP checkpoint of this command ({exc})") from exc
    else:
        checkpoint = Path(args.out) / "pmp"
        pmp_data = {"sources": [str(s) for s in args.pmp_data], "max_per_source": args.max_pmp}
    _refuse_overlap(pmp_data["sources"], args.finetune)
    train, held_out = train_and_eval(load_rankings(args.finetune, args.finetune_format), args)
    held_out = held_out[: args.max_eval]
    if args.pmp_checkpoint:
        accuracy = _checkpoint_accuracy(checkpoint, held_out, args)
    else:
        accuracy = _pretrain(checkpoint, pmp_data, held_out, args)
    rows = []
    for size in args.sizes:
        subset = train[:size]
        for start, spec in (("base", args.model), ("pmp", str(checkpoint))):
            config = PreferenceConfig(model=spec, **_train_settings(args))
            result = fit(config, subset, held_out, progress=progress_bar())
            rows.append(
                _row("finetune", args.model, "ranked", result, start=start, size=len(subset))
            )
            log.info("%d pairs from %s: accuracy %.3f", len(subset), start, result["eval_accuracy"])
    # "pmp": the PMP checkpoint itself, its accuracy on the held-out part before fine-tuning
    pmp_summary = {"checkpoint": str(checkpoint), **pmp_data, "eval_accuracy": round(accuracy, 4)}
    return {"experiment": "pmp", "pmp": pmp_summary, "rows": rows}


def _pretrain(checkpoint: Path, pmp_data: dict, held_out: list, args) -> float:
    """Binarized PMP on ``pmp_data``'s sources into ``checkpoint`` (which then also holds
    ``pmp_data``, completed with the counts); returns its held-out accuracy."""
    pretrain = [
        ranking
        for source in pmp_data["sources"]
        for ranking in load_rankings(source, args.pmp_format, limit=args.max_pmp)
    ]
    config = PreferenceConfig(
        model=args.model, pmp=True, out=str(checkpoint), **_train_settings(args)
    )
    result = fit(config, pretrain, held_out, progress=progress_bar())
    pmp_data |= {
        "rankings": result["train_rankings"],
        "pairs": result["train_pairs"],
        "train_seconds": result["train_seconds"],
    }
    (checkpoint / PMP_DATA_FILE).write_text(json.dumps(pmp_data, indent=2) + "\n")
    return result["eval_accuracy"]


def _checkpoint_accuracy(checkpoint: Path, held_out: list, args) -> float:
    pm, tokenizer = load_preference_model(checkpoint)
    metrics = evaluate(
        pm, tokenizer, held_out, max_length=args.max_length, batch_size=args.batch_size
    )
    return metrics["accuracy"]


def _refuse_overlap(sources: list[str], finetune: str) -> None:
    target = Path(finetune).resolve()
    for source in sources:
        resolved = Path(source).resolve()
        if resolved in (target, *target.parents) or target in resolved.parents:
            raise ValueError(f"{source}: PMP data must not hold the fine-tuning data")


def write_results(out: Path, results: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    rows = results["rows"]
    columns = list(rows[0])
    table = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    table += ["| " + " | ".join(str(r[c]) for c in columns) + " |" for r in rows]
    (out / "results.md").write_text("\n".join(table) + "\n")
    _plot(out / "results.png", results)


def _plot(path: Path, results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    if results["experiment"] == "objectives":
        kinds = sorted({r["data"] for r in rows})
        fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), dpi=120, squeeze=False)
        for ax, kind in zip(axes[0], kinds, strict=True):
            models = list(dict.fromkeys(r["model"] for r in rows if r["data"] == kind))
            for objective in OBJECTIVES:
                ys = [
                    r["accuracy"]
                    for m in models
                    for r in rows
                    if (r["data"], r["model"], r["objective"]) == (kind, m, objective)
                ]
                if ys:
                    ax.plot(range(len(models)), ys, marker="o", label=objective)
            baseline = [r["length_baseline"] for r in rows if r["data"] == kind][0]
            ax.axhline(baseline, color="0.6", linestyle=":", label="length baseline")
            ax.set_xticks(range(len(models)), models, rotation=15, fontsize=7)
            ax.axhline(0.5, color="0.85", linewidth=0.8)  # chance
            ax.set(title=f"{kind} data", ylabel="held-out pairwise accuracy", ylim=(0, 1))
            ax.legend(fontsize=8)
    else:
        fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
        for start in ("base", "pmp"):
            points = [(r["size"], r["accuracy"]) for r in rows if r["start"] == start]
            ax.plot(*zip(*points, strict=True), marker="o", label=f"from {start}")
        ax.axhline(
            results["pmp"]["eval_accuracy"], color="C1", linestyle="--", label="PMP, no fine-tuning"
        )
        ax.axhline(rows[0]["length_baseline"], color="0.6", linestyle=":", label="length baseline")
        ax.set_xscale("log")
        sizes = sorted({r["size"] for r in rows})
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.minorticks_off()
        ax.axhline(0.5, color="0.85", linewidth=0.8)  # chance
        ax.set(xlabel="fine-tuning comparisons", ylabel="held-out pairwise accuracy", ylim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m training.experiments", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    first = commands.add_parser("objectives", help="ranked vs binary vs imitation, by model size")
    first.add_argument("--ranked", help="ranked comparison data")
    first.add_argument("--ranked-format", choices=FORMATS, default="bigbench")
    first.add_argument("--binary", help="binary (right/wrong label) data")
    first.add_argument("--binary-format", choices=FORMATS, default="bigbench")
    first.add_argument(
        "--models", type=_specs, required=True, help="comma-separated specs, small first"
    )
    first.add_argument(
        "--objectives",
        type=_objectives,
        default=list(OBJECTIVES),
        help=f"comma-separated subset of {','.join(OBJECTIVES)} (default: all)",
    )
    second = commands.add_parser("pmp", help="fine-tuning accuracy vs size, with and without PMP")
    source = second.add_mutually_exclusive_group(required=True)
    source.add_argument("--pmp-data", nargs="+", help="comparisons to pre-train on (one or more)")
    source.add_argument(
        "--pmp-checkpoint", help="reuse the PMP checkpoint (out/pmp) of an earlier pmp run"
    )
    second.add_argument("--pmp-format", choices=FORMATS, default="bigbench")
    second.add_argument("--max-pmp", type=int, help="the first N comparisons of each PMP source")
    second.add_argument("--finetune", required=True, help="comparisons to fine-tune on")
    second.add_argument("--finetune-format", choices=FORMATS, default="bigbench")
    second.add_argument("--sizes", type=_sizes, required=True, help="e.g. 16,64,256")
    second.add_argument("--model", default="smollm2-135m-instruct")
    active.add_arguments(
        commands.add_parser("active", help="accuracy vs labels: random vs uncertainty selection")
    )
    for sub in (first, second):
        sub.add_argument("--out", required=True, help="directory for results.json/.md/.png")
        sub.add_argument("--held-out", type=float, default=0.2, help="fraction held out")
        sub.add_argument(
            "--validate",
            action="store_true",
            help="evaluate on a validation part of the training part, not the held-out part",
        )
        sub.add_argument("--max-train", type=int, help="first N training comparisons")
        sub.add_argument("--max-eval", type=int, default=500, help="first N held-out ones")
        sub.add_argument("--max-length", type=int, default=256)
        sub.add_argument("--batch-size", type=int, default=8)
        sub.add_argument("--epochs", type=int, default=1)
        sub.add_argument("--lr", type=float, default=1e-5)
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--device", choices=["cpu", "cuda"])
    return parser


def _specs(text: str) -> list[str]:
    specs = [s.strip() for s in text.split(",") if s.strip()]
    if not specs:
        raise argparse.ArgumentTypeError("give at least one model spec")
    return specs


def _objectives(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(OBJECTIVES))
    if not chosen or unknown:
        raise argparse.ArgumentTypeError(f"objectives are {', '.join(OBJECTIVES)}: {text!r}")
    return [o for o in OBJECTIVES if o in chosen]


def _sizes(text: str) -> list[int]:
    try:
        sizes = sorted({int(s) for s in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes must be integers: {text!r}") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes must be at least 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log_to_stderr()
    if not 0 < args.held_out < 1:
        parser.error("--held-out must be between 0 and 1")
    if args.command == "objectives" and args.ranked is None and args.binary is None:
        parser.error("give --ranked, --binary or both")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} already exists (choose a new --out)")
    runners = {
        "objectives": (objectives, write_results),
        "pmp": (pmp, write_results),
        "active": (active.run, active_report.write_results),
    }
    experiment, write = runners[args.command]
    try:
        results = experiment(args)
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # DataError is a ValueError
        parser.error(str(exc))
    write(out, results)
    sys.stdout.write(json.dumps(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

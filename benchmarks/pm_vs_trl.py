"""Our preference-model training against TRL's RewardTrainer: same pairs, model and settings.

    pip install -e '.[bench]'       # TRL is a benchmark-only extra, never a runtime need
    python -m benchmarks.pm_vs_trl --data "$LAB_BIGBENCH_DIR/social_support" --format bigbench \\
        --model smollm2-135m-instruct --max-length 512 --batch-size 8 --train-pairs 64

Both train one epoch on the same pairs (``--train-pairs``, every ranking flattened to its
ordered pairs) with the same model, length limit, batch size, learning rate and seed, in
one process, one after the other; both are then evaluated on the same held-out pairs.
TRL gets each pair as text: prompt ``"\\n\\nHuman: …\\n\\nAssistant:"`` and completions
``" " + reply``, exactly what our encoder reads. Prints pairs per second of each (training
time only), the ratio (ours / TRL's) and each one's held-out accuracy.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from models_backend.dialogue import prompt_transcript
from models_backend.loading import load_causal_lm
from training.comparisons import Ranking, weighted_pairs
from training.experiments import split
from training.loaders import FORMATS, load_rankings
from training.preference import PreferenceConfig, fit


def as_pairs(rankings: list[Ranking]) -> list[Ranking]:
    """Every ranking's ordered pairs, each as a ranking of two."""
    return [Ranking(p.context, (p.better, p.worse)) for p in weighted_pairs(rankings)]


def trl_rows(pairs: list[Ranking]) -> list[dict]:
    return [
        {
            "prompt": prompt_transcript(list(p.context)),
            "chosen": " " + p.responses[0],
            "rejected": " " + p.responses[1],
        }
        for p in pairs
    ]


def train_trl(args, train: list[Ranking], held_out: list[Ranking]) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    source = load_causal_lm(args.model, device="cpu")  # resolves and caches the model files
    directory = source.model.name_or_path or args.model
    tokenizer = source.tokenizer
    del source
    model = AutoModelForSequenceClassification.from_pretrained(
        directory, num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    with tempfile.TemporaryDirectory() as out:
        config = RewardConfig(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.lr,
            num_train_epochs=1,
            max_length=args.max_length,
            lr_scheduler_type="linear",
            warmup_steps=0,
            max_grad_norm=1.0,
            seed=args.seed,
            save_strategy="no",
            report_to=[],
            logging_steps=10,
            use_cpu=args.device == "cpu",
            dataloader_num_workers=0,
            # TRL turns both on by default; ours trains in fp32 on the CPU without
            # checkpointing, so the two run the same arithmetic.
            gradient_checkpointing=False,
            bf16=False,
        )
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(trl_rows(train)),
            processing_class=tokenizer,
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        kept = len(trainer.train_dataset)  # TRL drops pairs longer than max_length
    return {
        "train_seconds": seconds,
        "train_pairs": kept,
        "eval_accuracy": trl_accuracy(model, tokenizer, held_out, args),
    }


@torch.no_grad()
def trl_accuracy(model, tokenizer, held_out: list[Ranking], args) -> float:
    model.eval()
    right = 0
    for pair in held_out:
        prompt = prompt_transcript(list(pair.context))
        scores = []
        for reply in pair.responses:
            text = prompt + " " + reply + tokenizer.eos_token  # as TRL trained it: EOS last
            ids = tokenizer(text, truncation=True, max_length=args.max_length)
            out = model(input_ids=torch.tensor([ids["input_ids"]]))
            scores.append(out.logits[0, 0].item())
        right += scores[0] > scores[1]
    return right / len(held_out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="comparison data (any training format)")
    parser.add_argument("--format", choices=FORMATS, default="bigbench")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--train-pairs", type=int, default=64)
    parser.add_argument("--eval-pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    train, held_out = split(load_rankings(args.data, args.format), 0.2, args.seed)
    train = as_pairs(train)[: args.train_pairs]
    held_out = as_pairs(held_out)[: args.eval_pairs]
    config = PreferenceConfig(
        model=args.model,
        max_length=args.max_length,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
    )
    ours = fit(config, train, held_out)
    theirs = train_trl(args, train, held_out)
    ours_rate = len(train) / ours["train_seconds"]
    trl_rate = theirs["train_pairs"] / theirs["train_seconds"]
    print(
        json.dumps(
            {
                "model": args.model,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "max_length": args.max_length,
                "batch_size": args.batch_size,
                "train_pairs": len(train),
                "eval_pairs": len(held_out),
                "truncated_pairs_ours": ours["truncated_pairs"],  # we cut contexts, never drop
                "trl_train_pairs_kept": theirs["train_pairs"],
                "ours_pairs_per_s": round(ours_rate, 3),
                "trl_pairs_per_s": round(trl_rate, 3),
                "speedup_ours_over_trl": round(ours_rate / trl_rate, 2),
                "ours_eval_accuracy": round(ours["eval_accuracy"], 4),
                "trl_eval_accuracy": round(theirs["eval_accuracy"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()

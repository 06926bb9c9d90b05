"""Generation tokens per second: one stream, and concurrent turns decoded in one batch.

    python -m benchmarks.generation_speed --model smollm2-135m-instruct --tokens 64
    python -m benchmarks.generation_speed --device cuda --batches 1,8,32   # on a GPU (bf16)

Each of B different conversations (turns of different crowdworkers) gets one candidate of
exactly ``--tokens`` tokens (EOS ignored, no stop strings) from ``generate_batch``. Prints
tokens per second for every B, and each B's throughput as a ratio of one stream's (the
baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.timing import median_seconds
from models_backend.decode import prepare_for_decoding
from models_backend.dialogue import Message
from models_backend.generation import SamplingConfig, build_prompt_ids, generate_batch
from models_backend.loading import load_causal_lm

QUESTIONS = [
    "What should I plant first on a sunny balcony?",
    "Can you explain what a hash table is?",
    "How do I ask my landlord to fix the heating?",
    "What's a good way to start running again after a long break?",
    "Why is the sky blue?",
    "Could you suggest a name for a grey kitten?",
    "How long should I boil an egg for a soft yolk?",
    "What is the difference between a list and a tuple in Python?",
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per stream")
    parser.add_argument("--batches", default="1,2,4,8", help="numbers of concurrent turns")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where present")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(b) for b in args.batches.split(",")]
    lm = load_causal_lm(args.model, device=args.device)
    prepare_for_decoding(lm.model)  # as workers run it
    sampling = SamplingConfig(max_new_tokens=args.tokens, seed=0, stop=(), ignore_eos=True)
    prompts = [
        build_prompt_ids(lm.tokenizer, [Message("human", QUESTIONS[i % len(QUESTIONS)])])
        for i in range(max(sizes))
    ]

    def run(b: int) -> None:
        out = generate_batch(lm, prompts[:b], ks=[1] * b, sampling=sampling)
        assert all(c.token_count == args.tokens for group in out for c in group)
        if lm.device.type == "cuda":
            torch.cuda.synchronize()

    run(1)  # warm-up
    rates = {b: b * args.tokens / median_seconds(lambda b=b: run(b), args.repeats) for b in sizes}
    one = rates.get(1) or rates[sizes[0]]
    print(
        json.dumps(
            {
                "model": args.model,
                "device": str(lm.device),
                "dtype": str(next(lm.model.parameters()).dtype),
                "threads": torch.get_num_threads(),
                "tokens_per_stream": args.tokens,
                "tokens_per_s": {str(b): round(r, 1) for b, r in rates.items()},
                "throughput_ratio_vs_one_stream": {
                    str(b): round(r / one, 2) for b, r in rates.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()

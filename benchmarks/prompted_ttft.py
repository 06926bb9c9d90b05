"""Prompted assistant: time to first token with the HHH prompt's KV cached vs recomputed.

    python -m benchmarks.prompted_ttft --model smollm2-135m-instruct --repeats 3

For several different conversations, measures the prefill that precedes the first
sampled token: (a) the whole prompted input every request (the baseline), (b) only what
follows the prompt, continuing from a copy of the prompt's cache computed once (the
lab's way; the one-off cost is printed too). Prints medians and the speedup (target ≥ 3).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.timing import median_seconds
from models_backend.assistants import build_assistant
from models_backend.decode import prepare_for_decoding
from models_backend.dialogue import Message
from models_backend.generation import prefill
from models_backend.loading import load_causal_lm

CONVERSATIONS = [
    [Message("human", "What's a quick vegetarian dinner I can make tonight?")],
    [Message("human", "Can you explain what a hash table is?")],
    [
        Message("human", "I have a job interview tomorrow and I'm nervous."),
        Message("assistant", "That's completely normal. What kind of role is it for?"),
        Message("human", "A junior accountant position at a small firm."),
    ],
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_causal_lm(args.model)
    prepare_for_decoding(lm.model)  # as workers run it
    start = time.perf_counter()
    assistant = build_assistant(lm, "hhh")  # computes the prompt's cache once
    cache_seconds = time.perf_counter() - start
    inputs = [assistant.prompt_ids(c) for c in CONVERSATIONS]

    def uncached():
        with torch.inference_mode():
            for ids in inputs:
                prefill(lm, ids)

    def cached():
        with torch.inference_mode():
            for ids in inputs:
                prefill(lm, ids, prefix=assistant.prefix)

    cached()  # warm-up
    full = median_seconds(uncached, args.repeats) / len(inputs)
    reused = median_seconds(cached, args.repeats) / len(inputs)
    print(
        json.dumps(
            {
                "model": args.model,
                "device": str(lm.device),
                "threads": torch.get_num_threads(),
                "prompt_tokens": len(assistant.prefix.ids),
                "mean_request_tokens": round(sum(map(len, inputs)) / len(inputs), 1),
                "prompt_cache_once_s": round(cache_seconds, 3),
                "ttft_recompute_prompt_s": round(full, 4),
                "ttft_cached_prompt_s": round(reused, 4),
                "speedup": round(full / reused, 2),
            }
        )
    )


if __name__ == "__main__":
    main()

"""k candidates from one shared prefill vs separate generations, in one run.

    python -m benchmarks.generation_k --model smollm2-135m-instruct --tokens 64 --repeats 3

Every row generates exactly ``--tokens`` tokens (no stop strings, EOS ignored), so the
three ways do the same amount of decoding. Prints each median time, tokens per second,
and the ratios: k shared / one generation (target ≤ 1.3) and k separate / k shared, with
the weights as workers hold them (``prepare_for_decoding``); and, as the baseline of that
layout, one and k shared with the weights as loaded, measured first in the same run.
"""

from __future__ import annotations

import argparse
import json

import torch

from benchmarks.timing import median_seconds
from models_backend.decode import prepare_for_decoding
from models_backend.dialogue import Message
from models_backend.generation import SamplingConfig, generate_candidates
from models_backend.loading import load_causal_lm

DIALOGUE = [
    Message("human", "I'm planning a small vegetable garden on my balcony."),
    Message("assistant", "That sounds lovely! How much sun does the balcony get each day?"),
    Message("human", "About five hours in the afternoon. What should I grow first?"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--tokens", type=int, default=64, help="tokens generated per row")
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_causal_lm(args.model)
    sampling = SamplingConfig(max_new_tokens=args.tokens, seed=0, stop=(), ignore_eos=True)

    def run(k: int) -> None:
        out = generate_candidates(lm, DIALOGUE, k=k, sampling=sampling)
        assert all(c.token_count == args.tokens for c in out), [c.token_count for c in out]

    run(1)  # warm-up
    one_as_loaded = median_seconds(lambda: run(1), args.repeats)
    shared_as_loaded = median_seconds(lambda: run(args.k), args.repeats)
    prepare_for_decoding(lm.model)  # as workers run it
    run(1)  # warm-up of the new layout
    one = median_seconds(lambda: run(1), args.repeats)
    shared = median_seconds(lambda: run(args.k), args.repeats)
    separate = median_seconds(lambda: [run(1) for _ in range(args.k)], args.repeats)
    result = {
        "model": args.model,
        "device": str(lm.device),
        "threads": torch.get_num_threads(),
        "tokens_per_row": args.tokens,
        "k": args.k,
        "one_generation_s": round(one, 3),
        "k_shared_prefill_s": round(shared, 3),
        "k_separate_s": round(separate, 3),
        "tokens_per_s_one": round(args.tokens / one, 1),
        "tokens_per_s_k_shared": round(args.k * args.tokens / shared, 1),
        "ratio_k_shared_over_one": round(shared / one, 2),
        "speedup_shared_over_separate": round(separate / shared, 2),
        "weights_as_loaded": {
            "one_generation_s": round(one_as_loaded, 3),
            "k_shared_prefill_s": round(shared_as_loaded, 3),
            "ratio_k_shared_over_one": round(shared_as_loaded / one_as_loaded, 2),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()

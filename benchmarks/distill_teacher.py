"""Distillation teacher pass: the HHH prompt's KV computed once and reused vs recomputed.

    python -m benchmarks.distill_teacher --model smollm2-135m-instruct --batch-size 4

The teacher must give p0(X | C) at every position of a batch of texts X. (a) Baseline: one
forward pass over ``C + X`` for every row, the prompt recomputed each batch. (b) The
lab's way (``training.distill.teacher_logits``): the prompt's KV cache computed once (its
one-off cost printed, not counted per batch) and expanded over the rows, so only X runs.
Prints the median time per batch of each, their ratio, and the largest difference between
the two ways' log-probs (they compute the same thing).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.timing import median_seconds
from models_backend.dialogue import to_transcript
from models_backend.loading import load_causal_lm
from models_backend.prompt import load_hhh_prompt
from training.distill import teacher_logits
from training.distill_data import encode_plain
from training.prefix import prefill


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--batch-size", type=int, default=4, help="texts per teacher batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_causal_lm(args.model)
    model, tokenizer = lm.model, lm.tokenizer
    prompt = load_hhh_prompt()
    prompt_ids = encode_plain(tokenizer, prompt.transcript(), bos=True)
    # X: the prompt's own example dialogues (any text will do for timing)
    texts = [encode_plain(tokenizer, to_transcript(list(d)))[:96] for d in prompt.dialogues]
    texts = texts[: args.batch_size]
    width = max(map(len, texts))
    ids = torch.zeros((len(texts), width), dtype=torch.long, device=lm.device)
    for row, t in enumerate(texts):
        ids[row, : len(t)] = torch.tensor(t)
    lengths = torch.tensor([len(t) for t in texts], device=lm.device)
    real = torch.arange(width, device=lm.device)[None] < lengths[:, None]

    @torch.inference_mode()
    def recomputed() -> torch.Tensor:
        full = torch.tensor([prompt_ids] * len(texts), device=lm.device)
        rows = torch.cat([full, ids], dim=1)
        mask = torch.cat([torch.ones_like(full), real.long()], dim=1)
        logits = model(input_ids=rows, attention_mask=mask, use_cache=False).logits
        return logits[:, len(prompt_ids) :]

    start = time.perf_counter()
    prefix = prefill(model, prompt_ids)
    cache_seconds = time.perf_counter() - start

    @torch.inference_mode()
    def reused() -> torch.Tensor:
        return teacher_logits(model, prefix, ids, real)

    a = recomputed()[real].float().log_softmax(-1)
    b = reused()[real].float().log_softmax(-1)
    difference = (a - b).abs().max().item()
    baseline = median_seconds(recomputed, args.repeats)
    cached = median_seconds(reused, args.repeats)
    tokens = int(lengths.sum())
    print(
        json.dumps(
            {
                "model": args.model,
                "device": str(lm.device),
                "threads": torch.get_num_threads(),
                "prompt_tokens": len(prompt_ids),
                "texts": len(texts),
                "text_tokens": tokens,
                "prompt_cache_once_s": round(cache_seconds, 3),
                "recomputed_prompt_s_per_batch": round(baseline, 3),
                "reused_prompt_kv_s_per_batch": round(cached, 3),
                "speedup": round(baseline / cached, 2),
                "text_tokens_per_s_reused": round(tokens / cached, 1),
                "max_abs_logprob_difference": difference,
            }
        )
    )


if __name__ == "__main__":
    main()

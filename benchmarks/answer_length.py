"""How long the default assistant's answers to everyday prompts are, and so how many new
tokens a campaign must allow for answers to end by themselves rather than be cut.

    python -m benchmarks.answer_length [--ceiling 512] [--batch 4]

Each of 40 everyday prompts (written for this script; no evaluation item) gets one turn of
two candidates, sampled as a campaign samples by default (temperature 0.8, top-p 0.95),
with a generous ceiling on new tokens. For each candidate limit the script prints the share
of answers that end by themselves within it, and what the limit costs: the mean time to a
ready pair, estimated from the measured decoding rate (the slower of the pair decides).
The baseline is the old default limit, 96, measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

PROMPTS = [
    "What's a good way to start running if I've never exercised?",
    "How do I get red wine out of a carpet?",
    "Can you suggest a name for a grey kitten?",
    "What should I pack for a weekend camping trip?",
    "How long should I boil an egg for a runny yolk?",
    "Write a short birthday message for my sister.",
    "What's the difference between a virus and bacteria?",
    "How do I politely decline a meeting invitation?",
    "Give me three ideas for a cheap dinner tonight.",
    "Why is the sky blue?",
    "How can I stop procrastinating on my homework?",
    "What's a good houseplant for a dark room?",
    "Explain compound interest simply.",
    "How do I change a flat bicycle tyre?",
    "What are some tips for a job interview?",
    "Translate 'good morning' into French and Spanish.",
    "How many cups are in a litre?",
    "What's a fun thing to do on a rainy day with kids?",
    "How do I make my phone battery last longer?",
    "Can you recommend a classic novel to read?",
    "How should I store fresh herbs?",
    "What's the best way to learn to touch type?",
    "Write a haiku about autumn.",
    "How do I write a polite complaint email?",
    "What causes hiccups and how do I stop them?",
    "Is it better to rent or buy a house?",
    "How do I clean a cast iron pan?",
    "What's a simple stretch for a stiff neck?",
    "Explain what a spreadsheet formula is.",
    "How can I save money on groceries?",
    "What should I do if I lose my passport abroad?",
    "Give me a two-sentence summary of photosynthesis.",
    "How do I help a friend who is feeling down?",
    "What's the capital of Australia?",
    "How do I keep cut flowers fresh longer?",
    "Suggest a warm-up game for a team meeting.",
    "How do I remember people's names better?",
    "What's a healthy snack I can take to work?",
    "How do I unclog a bathroom sink without chemicals?",
    "Tell me a joke about computers.",
]
LIMITS = [96, 128, 192, 256, 384, 512, 640, 768, 1024]
BASELINE = 96  # the campaign default before this measurement


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ceiling", type=int, default=1024, help="new tokens allowed")
    parser.add_argument("--batch", type=int, default=4, help="prompts decoded together")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompt", default="", help="assistant prompt ('' or 'hhh')")
    parser.add_argument("--texts", default="", help="write every answer to this JSONL file")
    args = parser.parse_args(argv)
    if args.ceiling < max(LIMITS) or args.batch < 1:
        parser.error(f"--ceiling must be at least {max(LIMITS)} and --batch at least 1")

    from models_backend.assistants import get_assistant
    from models_backend.dialogue import HUMAN, Message
    from models_backend.generation import SamplingConfig

    assistant = get_assistant(args.model, args.prompt)
    pairs: list[list[tuple[int, str]]] = []  # per prompt: (tokens, finish reason) of A and B
    texts = []
    tokens = seconds = 0.0
    for start in range(0, len(PROMPTS), args.batch):
        chunk = PROMPTS[start : start + args.batch]
        sampling = SamplingConfig(max_new_tokens=args.ceiling, seed=start)
        began = time.perf_counter()
        out = assistant.generate_many(
            [[Message(HUMAN, p)] for p in chunk], ks=[2] * len(chunk), sampling=sampling
        )
        took = time.perf_counter() - began
        # The batch decodes until its longest row ends: the step rate is steps per second.
        steps = max(c.token_count for turn in out for c in turn)
        tokens, seconds = tokens + steps, seconds + took
        pairs += [[(c.token_count, c.finish_reason) for c in turn] for turn in out]
        texts += [
            {"prompt": p, "tokens": c.token_count, "finish": c.finish_reason, "text": c.text}
            for p, turn in zip(chunk, out, strict=True)
            for c in turn
        ]
        print(
            f"prompts {start + 1}-{start + len(chunk)}: {steps} steps in {took:.1f} s", flush=True
        )
    if args.texts:
        with open(args.texts, "w") as out_file:
            out_file.writelines(json.dumps(t) + "\n" for t in texts)
    step_s = seconds / tokens
    rows = []
    for limit in LIMITS:
        answers = [c for pair in pairs for c in pair]
        ended = sum(1 for n, reason in answers if reason != "length" and n <= limit)
        # A turn is ready when the slower of its pair has ended or reached the limit.
        turn_s = statistics.mean(min(max(n for n, _ in pair), limit) * step_s for pair in pairs)
        rows.append({"limit": limit, "ended_share": ended / len(answers), "turn_s": turn_s})
    base = next(r for r in rows if r["limit"] == BASELINE)
    print(f"\n{len(PROMPTS)} prompts x 2 answers, {args.model}, decoding {1 / step_s:.1f} steps/s")
    print(f"{'limit':>6} {'ended by themselves':>20} {'turn ready (est.)':>18} {'vs 96':>7}")
    for r in rows:
        ratio = r["turn_s"] / base["turn_s"]
        print(f"{r['limit']:>6} {r['ended_share']:>19.0%} {r['turn_s']:>16.1f} s {ratio:>6.2f}x")
    enough = next((r for r in rows if r["ended_share"] >= 0.8), None)
    print(json.dumps({"rows": rows, "smallest_limit_80pct": enough and enough["limit"]}))


if __name__ == "__main__":
    main()

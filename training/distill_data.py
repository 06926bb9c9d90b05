"""Distillation text X: read from a JSONL file, sampled from the prompted model, or built.

A distillation text file holds one ``{"text": …}`` object per line; each text is the X the
teacher reads after the prompt and the student reads alone, usually a transcript that
starts with ``"\\n\\nHuman: "``. Bad lines raise ``DataError`` naming ``path:line``.

``python -m training.distill_data bigbench --bigbench DIR --out FILE --count N`` writes the
paper's 50/50 mix from local BIG-bench files (DESIGN §3): generic text placed after
``Human:`` (the Wikipedia passages of ``vitaminc_fact_verification``) and question→answer
pairs made into dialogues (``strategyqa`` questions with their written answers). Neither
task is part of the HHH evaluation; ``hhh_alignment`` is never read.
"""

from __future__ import annotations

import json
import logging
import os
import random
import sys
from pathlib import Path

from models_backend.dialogue import ASSISTANT, HUMAN, Message, to_transcript
from training.cli import Parser, log_to_stderr
from training.data import DataError, jsonl_rows
from training.jsonl import write_jsonl

log = logging.getLogger(__name__)

HUMAN_TURN = "\n\nHuman:"  # what a sampled dialogue starts after (the prompt's next turn)
SAMPLE_STOP = ("-----",)  # the prompt closes each of its dialogues with this line
GENERIC_TASK = "vitaminc_fact_verification/task.json"
QA_TASK = "strategyqa/task.json"
BIGBENCH_ENV = "LAB_BIGBENCH_DIR"


def read_texts(path, *, limit: int | None = None) -> list[str]:
    """The texts of a distillation file (blank lines skipped), at most ``limit``."""
    texts = [_text(row, where) for row, where in jsonl_rows(path, limit)]
    if not texts:
        raise DataError(f"{path}: no texts")
    return texts


def _text(row: dict, where: str) -> str:
    if not isinstance(row.get("text"), str):
        raise DataError(f'{where}: expected an object with a string field "text"')
    if not row["text"].strip():
        raise DataError(f"{where}: the text is empty")
    if "\x00" in row["text"]:
        raise DataError(f"{where}: the text holds a NUL character")
    return row["text"]


def write_texts(path, texts: list[str]) -> None:
    """Write a distillation file atomically (``training.jsonl``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(target, ({"text": text} for text in texts))


def sample_texts(lm, prompt_text: str, *, count: int, max_new_tokens: int, seed: int) -> list[str]:
    """``count`` dialogues the prompted model writes itself, after the prompt and ``Human:``.

    The prompt's KV cache is computed once; rows are sampled 8 at a time from it.
    """
    from models_backend.generation import (
        SamplingConfig,
        cache_prefix,
        generate_from_prompt_ids,
    )

    tokenizer = lm.tokenizer
    head = encode_plain(tokenizer, prompt_text, bos=True)
    prefix = cache_prefix(lm, head)
    prompt_ids = head + encode_plain(tokenizer, HUMAN_TURN)
    texts: list[str] = []
    batch = 0
    while len(texts) < count:
        rows = min(8, count - len(texts))
        sampling = SamplingConfig(
            max_new_tokens=max_new_tokens,
            temperature=1.0,  # the model's own distribution
            top_p=1.0,
            seed=seed + batch,
            stop=SAMPLE_STOP,
        )
        candidates = generate_from_prompt_ids(
            lm, prompt_ids, k=rows, sampling=sampling, prefix=prefix
        )
        texts += [HUMAN_TURN + c.text.rstrip() for c in candidates if c.text.strip()]
        batch += 1
        log.info("sampled %d of %d distillation texts", len(texts), count)
    return texts[:count]


def encode_plain(tokenizer, text: str, *, bos: bool = False) -> list[int]:
    """Ids of ``text`` without special tokens; with ``bos``, a BOS id first where the
    tokenizer adds one by default (the conventions of the HHH evaluation)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not bos:
        return ids
    probe = tokenizer("a")["input_ids"]
    first = tokenizer.bos_token_id
    return ([first] if first is not None and probe and probe[0] == first else []) + ids


def bigbench_mix(folder, *, count: int, seed: int) -> list[str]:
    """Half generic passages after ``Human:``, half question→answer dialogues, shuffled."""
    root = Path(folder)
    passages = sorted({_passage(e["input"]) for e in _examples(root / GENERIC_TASK)})
    qa = [
        to_transcript([Message(HUMAN, e["input"].strip()), Message(ASSISTANT, e["target"].strip())])
        for e in _examples(root / QA_TASK)
        if isinstance(e.get("target"), str) and e["target"].strip()
    ]
    rng = random.Random(seed)
    half = count // 2
    if len(passages) < count - half or len(qa) < half:
        raise DataError(
            f"{root}: too few texts for {count} ({len(passages)} passages, {len(qa)} Q&A)"
        )
    generic = [to_transcript([Message(HUMAN, p)]) for p in rng.sample(passages, count - half)]
    mixed = generic + rng.sample(qa, half)
    rng.shuffle(mixed)
    return mixed


def _examples(path: Path) -> list[dict]:
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a readable BIG-bench task ({exc})") from exc
    return [e for e in examples if isinstance(e, dict) and isinstance(e.get("input"), str)]


def _passage(item: str) -> str:
    """The evidence passage of a vitaminc input ("Title: passage\\nClaim: …"), without the claim."""
    return item.split("\nClaim:", 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m training.distill_data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mix = sub.add_parser("bigbench", help="the 50/50 mix from local BIG-bench task files")
    mix.add_argument("--bigbench", default=os.environ.get(BIGBENCH_ENV), help=f"${BIGBENCH_ENV}")
    mix.add_argument("--out", required=True, help="JSONL file to write")
    mix.add_argument("--count", type=int, default=2000)
    mix.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    log_to_stderr()
    try:
        if not args.bigbench:
            raise ValueError(f"give --bigbench DIR or set ${BIGBENCH_ENV}")
        if args.count < 2:
            raise ValueError("--count must be at least 2")
        texts = bigbench_mix(args.bigbench, count=args.count, seed=args.seed)
    except ValueError as exc:  # DataError is a ValueError
        parser.error(str(exc))
    write_texts(args.out, texts)
    sys.stdout.write(json.dumps({"out": args.out, "texts": len(texts)}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The HHH evaluation for a preference model: the choice with the highest reward is its answer.

The question is the dialogue ``"\\n\\nHuman: " + input`` (multi-turn inputs hold their own
turns) and each choice is scored as the assistant's reply, encoded exactly as the PM was
trained (``models_backend.reward.score_responses``). The paper's 52B PM scored 0.86 here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from models_backend.dialogue import parse_transcript
from models_backend.reward import score_responses
from training.evaluate import summarize
from training.hhh_eval import Task

SCORING = "reward"


def evaluate_hhh_pm(
    pm,
    tokenizer,
    tasks: list[Task],
    *,
    max_length: int = 512,
    progress: Callable[[float, dict], None] | None = None,
) -> dict:
    """Accuracy by reward, overall and by category, plus per-example ``details``."""
    started = time.perf_counter()
    items = [(task, i, example) for task in tasks for i, example in enumerate(task.examples)]
    if not items:
        raise ValueError("no examples to evaluate")
    details = []
    for done, (task, index, example) in enumerate(items, start=1):
        context = parse_transcript("\n\nHuman: " + example.input)
        rewards = score_responses(
            pm, tokenizer, context, list(example.choices), max_length=max_length
        )
        details.append(
            {
                "task": task.path,
                "category": task.category,
                "index": index,
                "correct": list(example.correct),
                "scores": {SCORING: rewards},
                "predicted": {SCORING: max(range(len(rewards)), key=rewards.__getitem__)},
            }
        )
        if progress is not None:
            progress(done / len(items), {"done": done, "total": len(items)})
    return {
        "examples": len(items),
        "seconds": round(time.perf_counter() - started, 3),
        **summarize(details, (SCORING,)),
        "details": details,
    }

"""Generation for claimed candidate rows, without Django: group, sample, choose, report.

A worker's task (``labeling.tasks``) claims rows and describes them as plain ``Row``s;
``generate`` groups them per assistant (one prefill per turn; concurrent turns of one
assistant in one batch), samples, runs best-of-n where asked, and reports each row through
a ``Sink``. It raises on any failure: whether that means a retry or failed rows is the
caller's decision, made in one place.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from models_backend import best_of_n
from models_backend.dialogue import Message
from models_backend.generation import SEED_BITS, Candidate, SamplingConfig
from models_backend.specs import MAX_SAMPLES

SAMPLING_KEYS = ("max_new_tokens", "temperature", "top_p", "stop")  # the seed is drawn per call


@dataclass(frozen=True)
class Row:
    candidate_id: int  # the caller's row this reply is reported for
    turn_id: int  # rows of one turn continue one dialogue and share its prefill
    slot: int  # where the reply is shown; best-of-n picks per slot
    spec: str  # model spec of the assistant that writes it
    prompt: str  # that assistant's prompt name (assistants.PROMPTS)
    sampling: dict  # stored sampling parameters (SAMPLING_KEYS); a seed is drawn per call
    messages: tuple[Message, ...]  # the dialogue the reply continues
    model_id: int | None = None  # the caller's id of the model; best-of-n reports whose text


@dataclass(frozen=True)
class BestOf:
    n: int  # samples per slot, each scored by the preference model
    policy: str  # a pair policy of best_of_n.POLICIES: which samples the slots show
    scorer_spec: str  # the preference model's spec (loaded once per process)
    selection: dict  # provenance kept with every shown reply (policy, preference model, n)


@dataclass(frozen=True)
class Chosen:
    reward: float  # the preference model's score of the shown text
    alternatives: list[dict]  # the slot's samples not shown: text, reward, seed
    source: Row  # the row whose model wrote the shown text (top_two: maybe the other slot)
    selection: dict  # BestOf.selection, plus the shown pair's P(A > B) (best_of_n.P_A_OVER_B)


class Sink(Protocol):
    def progress(self, candidate_id: int, text: str) -> None:
        """A row's text so far, on every token step that changed it: keep it cheap."""

    def complete(self, candidate_id: int, result: Candidate, chosen: Chosen | None) -> None:
        """A row's finished reply; ``chosen`` says how best-of-n picked it."""


AssistantFor = Callable[[str, str], object]  # (spec, prompt) -> an object with generate()


class Throttle:
    """When a rate-limited write is due: the first time, then at most once per ``every_s``
    seconds, and always for a final one (the last progress of a training run)."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._last: float | None = None

    def due(self, *, final: bool = False) -> bool:
        now = time.monotonic()
        if not final and self._last is not None and now - self._last < self.every_s:
            return False
        self._last = now
        return True


def sampling_config(stored: dict) -> SamplingConfig:
    """A row's stored sampling with a fresh seed (each Candidate reports the one it used)."""
    known = {key: stored[key] for key in SAMPLING_KEYS if key in stored}
    return SamplingConfig(**known, seed=secrets.randbits(SEED_BITS))


def generate(
    rows: Sequence[Row],
    *,
    assistant_for: AssistantFor,
    sink: Sink,
    best_of: BestOf | None = None,
) -> None:
    """Generate every row and report it to ``sink``; raises on the first failure."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in sorted(rows, key=lambda r: (r.turn_id, r.slot)):
        groups.setdefault((row.spec, row.prompt), []).append(row)
    if best_of is not None:
        _best_of(groups, assistant_for, sink, best_of)
        return
    for (spec, prompt), mine in groups.items():
        _sample_rows(assistant_for(spec, prompt), mine, sink)


class _Reporter:
    """Hands the sink each row's text when it changed: ``on_progress`` reports every row's
    text after every token step, and most rows gain nothing in most steps."""

    def __init__(self, rows: list[Row], sink: Sink) -> None:
        self.ids = [row.candidate_id for row in rows]
        self.sink = sink
        self.last: dict[int, str] = {}

    def __call__(self, texts: list[list[str]]) -> None:
        for candidate_id, text in zip(self.ids, [t for group in texts for t in group], strict=True):
            if self.last.get(candidate_id) != text:
                self.last[candidate_id] = text
                self.sink.progress(candidate_id, text)


def _sample_rows(assistant, rows: list[Row], sink: Sink) -> None:
    """One assistant's rows (one or several turns) in one batch; per turn where the
    assistant cannot batch turns (a remote server batches on its own)."""
    per_turn: dict[int, list[Row]] = {}
    for row in rows:
        per_turn.setdefault(row.turn_id, []).append(row)
    turns = list(per_turn.values())
    if len(turns) > 1 and hasattr(assistant, "generate_many"):
        reporter = _Reporter(rows, sink)
        results = assistant.generate_many(
            [list(turn[0].messages) for turn in turns],
            ks=[len(turn) for turn in turns],
            sampling=sampling_config(rows[0].sampling),
            on_progress=reporter,
        )
        _complete(
            [r for turn in turns for r in turn], [c for group in results for c in group], sink
        )
        return
    for turn in turns:
        reporter = _Reporter(turn, sink)
        results = assistant.generate(
            list(turn[0].messages),
            k=len(turn),
            sampling=sampling_config(turn[0].sampling),
            on_progress=lambda texts, reporter=reporter: reporter([texts]),
        )
        _complete(turn, results, sink)


def _complete(rows: list[Row], results: list[Candidate], sink: Sink) -> None:
    for row, result in zip(rows, results, strict=True):
        sink.complete(row.candidate_id, result, None)


def _samples(assistant, messages: list[Message], k: int, stored: dict) -> list[Candidate]:
    """k samples in requests of at most MAX_SAMPLES (n for each of several slots may ask
    for more than a generation server accepts at once)."""
    out: list[Candidate] = []
    for start in range(0, k, MAX_SAMPLES):
        size = min(MAX_SAMPLES, k - start)
        out += assistant.generate(messages, k=size, sampling=sampling_config(stored))
    return out


def _best_of(groups: dict, assistant_for: AssistantFor, sink: Sink, plan: BestOf) -> None:
    """n samples per slot (one request per assistant, so slots of one model share a
    prefill), scored by the preference model; the pair policy picks what each slot shows."""
    rows = [row for mine in groups.values() for row in mine]
    if len({row.turn_id for row in rows}) != 1:
        raise ValueError("best-of-n generates one turn at a time")
    messages = list(rows[0].messages)
    for row in rows:
        sink.progress(row.candidate_id, f"Sampling {plan.n} responses and choosing the best…")
    scorer = best_of_n.get_scorer(plan.scorer_spec)
    samples: dict[int, list[best_of_n.Scored]] = {}
    for (spec, prompt), mine in groups.items():
        out = _samples(assistant_for(spec, prompt), messages, plan.n * len(mine), mine[0].sampling)
        for sample in out:  # no text column stores NUL: score the text that is stored
            sample.text = sample.text.replace("\x00", "")
        for i, row in enumerate(mine):
            batch = out[i * plan.n : (i + 1) * plan.n]
            rewards = scorer(messages, [b.text for b in batch])
            samples[row.slot] = [
                best_of_n.Scored(b, row.slot, r) for b, r in zip(batch, rewards, strict=True)
            ]
    shown = best_of_n.choose(plan.policy, samples)
    selection = {**plan.selection, **best_of_n.shown_pair_selection(shown)}
    kept = {id(s) for s in shown.values()}
    by_slot = {row.slot: row for row in rows}
    for slot, scored in shown.items():
        alternatives = [
            {"text": s.candidate.text, "reward": s.reward, "seed": s.candidate.seed}
            for s in samples[slot]
            if id(s) not in kept
        ]
        chosen = Chosen(scored.reward, alternatives, by_slot[scored.source], selection)
        sink.complete(by_slot[slot].candidate_id, scored.candidate, chosen)

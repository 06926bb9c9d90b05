"""Reads for the panel's item viewer: one item with its full context, its candidates side by
side, and every judgment of it (superseded rows, corrections, gold answers and paused
workers' answers included, and marked) in the order that worker saw the candidates, with
each candidate's provenance as it was recorded."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from labeling import selectors
from labeling.models import CandidateResponse, GoldItem, Judgment, Turn
from labeling.services.gold import gold_correct
from labeling.services.judgments import candidate_provenance
from models_backend.dialogue import Message


@dataclass(frozen=True)
class Provenance:
    """What wrote a candidate: the keys of ``services.judgments.candidate_provenance``."""

    model: str | None
    spec: str | None
    prompt: str | None
    sampling: dict
    seed: int | None
    reward: float | None
    policy: str | None  # best-of-n pair policy (None: plain sampling)
    preference_model: str | None  # the PM that scored the samples
    n: int | None  # samples per slot

    @classmethod
    def from_record(cls, record: dict) -> Provenance:
        selection = record.get("selection") or {}
        return cls(
            model=record.get("model"),
            spec=record.get("spec"),
            prompt=record.get("prompt") or None,
            sampling=record.get("sampling") or {},
            seed=record.get("seed"),
            reward=record.get("reward"),
            policy=selection.get("policy"),
            preference_model=selection.get("preference_model"),
            n=selection.get("n"),
        )

    @property
    def written(self) -> bool:
        """No model wrote it: a gold item's or an import's text."""
        return self.model is None and self.seed is None and not self.sampling

    @property
    def sampling_text(self) -> str:
        """ "temperature 0.8 · top_p 0.95 · max_new_tokens 640" """
        return " · ".join(f"{key} {value}" for key, value in self.sampling.items())

    @property
    def selection_text(self) -> str:
        """ "best_each, best of 4 by pm-run-3", or "sampled once" without best-of-n."""
        if self.policy is None:
            return "sampled once"
        return f"{self.policy}, best of {self.n} by {self.preference_model}"


@dataclass(frozen=True)
class ItemCandidate:
    candidate: CandidateResponse
    provenance: Provenance  # as the candidate row says now


@dataclass(frozen=True)
class SeenCandidate:
    """One candidate of a judgment, where that worker saw it."""

    letter: str  # "A" is the first shown
    slot: int  # the candidate's slot on the item (the side-by-side columns)
    top: bool  # the answer put it on top under the question (better, or more harmful)
    note: str  # "picked as better · preferred", "rank 2"
    text: str
    provenance: Provenance  # as recorded with the judgment


@dataclass(frozen=True)
class JudgmentRow:
    judgment: Judgment
    worker: str  # username ("imported" for rows without a worker)
    answer: str  # "B is better (B3)", "C > A = B"
    seen: tuple[SeenCandidate, ...]  # display order, A first
    seconds: float | None  # time spent
    marks: tuple[str, ...]  # "superseded by 12", "correction of 9", "gold check", "paused"
    gold_right: bool | None  # a gold answer: right or not (None: not gold)


@dataclass(frozen=True)
class ItemDetail:
    item: Turn
    context: tuple[Message, ...]  # the dialogue before the item, ending with its message
    candidates: tuple[ItemCandidate, ...]  # slot order
    judgments: tuple[JudgmentRow, ...]  # oldest first
    gold: GoldItem | None
    gold_answer: str  # "slot 1, then slot 0" ("" when not gold)


def item_detail(item_id: int) -> ItemDetail:
    try:
        item = Turn.objects.select_related(
            "conversation__campaign", "conversation__worker", "chosen"
        ).get(pk=item_id)
    except Turn.DoesNotExist:
        raise Http404 from None
    gold = GoldItem.objects.filter(item=item).first()
    candidates = item.candidates.select_related("model_version").order_by("slot")
    judgments = (
        selectors.with_check_marks(Judgment.objects.filter(item=item))
        .select_related("worker", "campaign", "superseded_by", "recorded_by")
        .order_by("created_at", "pk")
    )
    return ItemDetail(
        item=item,
        context=tuple(selectors.dialogue_before(item)),
        candidates=tuple(
            ItemCandidate(c, Provenance.from_record(candidate_provenance(c))) for c in candidates
        ),
        judgments=tuple(_judgment_row(j, gold) for j in judgments),
        gold=gold,
        gold_answer=_gold_answer(gold),
    )


def _judgment_row(judgment: Judgment, gold: GoldItem | None) -> JudgmentRow:
    view = selectors.judgment_view(judgment)  # the admin's side by side, reused
    entries = list(judgment.entries.select_related("candidate__model_version"))
    recorded = judgment.provenance.get("candidates") or []
    seen = tuple(
        SeenCandidate(
            letter=shown.letter,
            slot=entry.candidate.slot,
            top=shown.rank == 0,
            note=shown.note,
            text=shown.text,
            provenance=Provenance.from_record(
                recorded[entry.position]
                if len(recorded) == len(entries)
                else candidate_provenance(entry.candidate)
            ),
        )
        for entry, shown in zip(entries, view.shown, strict=True)
    )
    right = None
    if gold is not None:
        order = selectors.answer_order(entries)
        right = gold_correct(gold=gold, shown_slots=[s.slot for s in seen], order=order)
    ms = judgment.time_spent_ms
    return JudgmentRow(
        judgment=judgment,
        worker=judgment.worker.get_username() if judgment.worker else "imported",
        answer=view.answer,
        seen=seen,
        seconds=ms / 1000 if ms is not None else None,
        marks=tuple(_marks(judgment)),
        gold_right=right,
    )


def _marks(judgment: Judgment) -> list[str]:
    marks = []
    if hasattr(judgment, "superseded_by"):
        marks.append(f"superseded by {judgment.superseded_by.pk}")
    if judgment.supersedes_id is not None:
        by = judgment.recorded_by.get_username() if judgment.recorded_by else "?"
        marks.append(f"correction of {judgment.supersedes_id} by {by}: {judgment.reason}")
    if judgment.is_gold:  # annotated by selectors.with_check_marks
        marks.append("gold check")
    if judgment.is_paused:
        marks.append("worker paused")
    return marks


def _gold_answer(gold: GoldItem | None) -> str:
    if gold is None:
        return ""
    return ", then ".join(" = ".join(f"slot {s}" for s in group) for group in gold.answer)

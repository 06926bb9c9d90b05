"""Quality while collecting (DESIGN §8): per-worker figures of one campaign, live, from the
judgments as recorded. The campaign's rules (``services.quality.rules_apply``) read the same
figures; a researcher's page renders the table.

A worker's own behaviour is read from their original answers (the first row of each chain):
a researcher's correction is not something the worker did. Agreement compares the current
rows, the answers as they now stand.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch, QuerySet
from django.db.models.functions import Length

from labeling.models import Campaign, GoldItem, JudgedCandidate, Judgment, Pause
from labeling.services.gold import gold_correct
from training.questions import preferred_first


@dataclass(frozen=True)
class WorkerMetrics:
    """One worker's figures in one campaign. Rates are shares (0 to 1); None: nothing to
    measure yet."""

    worker: object  # the user
    judgments: int  # real items judged (gold checks not counted; a pause changes nothing)
    gold_seen: int  # gold checks answered
    gold_right: int  # of which the top pick was in the gold answer's first group
    gold_accuracy: float | None
    first_position_rate: float | None  # judgments (real and gold) whose top was shown first
    longer_rate: float | None  # real pairs whose preferred response is the longer (ties skipped)
    median_seconds: float | None  # median time per judgment (real and gold)
    agreement: float | None  # share of (this worker, other worker) answers on one item that agree
    overlap_items: int  # real items someone else in the campaign judged too
    pause: Pause | None  # the open pause, if any

    def figures(self) -> dict:
        """The figures as JSON (what a pause records)."""
        return {
            "judgments": self.judgments,
            "gold_seen": self.gold_seen,
            "gold_right": self.gold_right,
            "gold_accuracy": _round(self.gold_accuracy),
            "first_position_rate": _round(self.first_position_rate),
            "longer_rate": _round(self.longer_rate),
            "median_seconds": _round(self.median_seconds),
            "agreement": _round(self.agreement),
            "overlap_items": self.overlap_items,
        }


def worker_metrics(campaign: Campaign, *, worker=None) -> list[WorkerMetrics]:
    """Every worker who judged in ``campaign`` (or only ``worker``), by username. Four
    queries whatever the size: judgments, their entries, gold items, open pauses."""
    qs = Judgment.objects.filter(campaign=campaign, worker__isnull=False)
    if worker is not None:
        # The worker's rows and the other workers' rows on the same items (for agreement).
        mine = Judgment.objects.filter(campaign=campaign, worker=worker).values("item")
        qs = qs.filter(item__in=mine)
    rows = _with_shape(qs)
    gold = _gold_by_item(qs)
    pauses = {
        p.worker_id: p
        for p in Pause.objects.filter(campaign=campaign, lifted_at__isnull=True).select_related(
            "created_by"
        )
    }
    current = _current_tops(rows, gold)
    by_worker: dict[int, list[Judgment]] = defaultdict(list)
    for row in rows:
        if row.supersedes_id is None:
            by_worker[row.worker_id].append(row)
    workers = {row.worker_id: row.worker for row in rows}
    if worker is not None:
        by_worker = {worker.pk: by_worker.get(worker.pk, [])}
        workers = {worker.pk: worker}
    result = [
        _metrics(workers[wid], own, gold, current, pauses.get(wid))
        for wid, own in by_worker.items()
    ]
    return sorted(result, key=lambda m: m.worker.get_username())


def rule_metrics(campaign: Campaign, worker, *, since: datetime | None = None) -> WorkerMetrics:
    """The figures the campaign's rules read: the worker's own answers made after
    ``since`` (the last lift of a pause), without agreement (cheap: one worker's rows)."""
    qs = Judgment.objects.filter(campaign=campaign, worker=worker, supersedes__isnull=True)
    if since is not None:
        qs = qs.filter(created_at__gt=since)
    rows = _with_shape(qs)
    return _metrics(worker, rows, _gold_by_item(qs), {}, None)


def last_lift(campaign: Campaign, worker) -> datetime | None:
    """When the worker's latest pause in the campaign was lifted (None: never)."""
    return (
        Pause.objects.filter(campaign=campaign, worker=worker, lifted_at__isnull=False)
        .order_by("-lifted_at")
        .values_list("lifted_at", flat=True)
        .first()
    )


# --- How the figures are made.


@dataclass(frozen=True)
class _Shape:
    """What the figures need of one judgment, without its texts."""

    slots: list[int]  # candidate slots in display order
    candidates: list[int]  # candidate ids in display order
    lengths: list[int]  # text lengths in display order
    order: list[list[int]]  # groups of display positions, top first under the question


def _with_shape(qs: QuerySet[Judgment]) -> list[Judgment]:
    """The judgments with ``shape`` set; text lengths come from the database, not the texts."""
    entries = (
        JudgedCandidate.objects.annotate(
            slot=F("candidate__slot"), text_length=Length("candidate__text")
        )
        .only("judgment_id", "candidate_id", "position", "rank")
        .order_by("position")
    )
    rows = list(
        qs.select_related("worker")
        .only("pk", "item_id", "worker", "question", "time_spent_ms", "supersedes_id", "created_at")
        .prefetch_related(Prefetch("entries", entries))
        .order_by("pk")
    )
    for row in rows:
        shown = list(row.entries.all())
        ranks = sorted({e.rank for e in shown})
        row.shape = _Shape(
            slots=[e.slot for e in shown],
            candidates=[e.candidate_id for e in shown],
            lengths=[e.text_length for e in shown],
            order=[[e.position for e in shown if e.rank == r] for r in ranks],
        )
    return rows


def _gold_by_item(qs: QuerySet[Judgment]) -> dict[int, GoldItem]:
    return {g.item_id: g for g in GoldItem.objects.filter(item__in=qs.values("item"))}


def _current_tops(rows: list[Judgment], gold: dict) -> dict[int, list[tuple[int, frozenset]]]:
    """Real items → [(worker id, the candidate ids of the current answer's top group)]."""
    superseded = {row.supersedes_id for row in rows if row.supersedes_id is not None}
    tops: dict[int, list[tuple[int, frozenset]]] = defaultdict(list)
    for row in rows:
        if row.pk in superseded or row.item_id in gold:
            continue
        shape = row.shape
        tops[row.item_id].append(
            (row.worker_id, frozenset(shape.candidates[p] for p in shape.order[0]))
        )
    return tops


def _metrics(worker, own: list[Judgment], gold: dict, current: dict, pause) -> WorkerMetrics:
    real = [j for j in own if j.item_id not in gold]
    checks = [j for j in own if j.item_id in gold]
    right = sum(
        gold_correct(gold=gold[j.item_id], shown_slots=j.shape.slots, order=j.shape.order)
        for j in checks
    )
    first = [0 in j.shape.order[0] for j in own]
    longer = [flag for j in real if (flag := _picked_longer(j)) is not None]
    seconds = [j.time_spent_ms / 1000 for j in own if j.time_spent_ms is not None]
    agree, overlap = _agreement(worker.pk, real, current)
    return WorkerMetrics(
        worker=worker,
        judgments=len(real),
        gold_seen=len(checks),
        gold_right=right,
        gold_accuracy=_share(right, len(checks)),
        first_position_rate=_share(sum(first), len(first)),
        longer_rate=_share(sum(longer), len(longer)),
        median_seconds=statistics.median(seconds) if seconds else None,
        agreement=agree,
        overlap_items=overlap,
        pause=pause,
    )


def _picked_longer(judgment: Judgment) -> bool | None:
    """A pair: whether the preferred response (for "more harmful", the less harmful one) is
    the longer text; None for rankings and equal lengths."""
    shape = judgment.shape
    if len(shape.lengths) != 2 or shape.lengths[0] == shape.lengths[1]:
        return None
    preferred = preferred_first(judgment.question, shape.order)[0][0]
    return shape.lengths[preferred] > shape.lengths[1 - preferred]


def _agreement(worker_id: int, real: list[Judgment], current: dict) -> tuple[float | None, int]:
    """(agreeing share of pairs of answers, items with another worker's answer)."""
    pairs = agreeing = overlap = 0
    for item_id in {j.item_id for j in real}:
        answers = current.get(item_id, [])
        mine = [top for wid, top in answers if wid == worker_id]
        others = [top for wid, top in answers if wid != worker_id]
        if not mine or not others:
            continue
        overlap += 1
        pairs += len(others)
        agreeing += sum(top == mine[0] for top in others)
    return _share(agreeing, pairs), overlap


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

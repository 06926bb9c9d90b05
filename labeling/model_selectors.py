"""Reads for the panel's preference-model history: each PM version's held-out figures (from
its ``metrics``, as ``training.preference.fit`` reports them), its HHH evaluation, and why
it was or was not promoted (``metrics["incumbent"]``, written by ``labeling.tasks._train``:
the incumbent's accuracy on the same held-out pairs; the new model is promoted when it is
at least as accurate)."""

from __future__ import annotations

from dataclasses import dataclass

from labeling.models import ModelVersion
from labeling.services.evaluation import BENCHMARK
from training import pm_metrics

CONFIDENCE = 0.95  # of the Wilson interval on held-out accuracy
HHH_SCORING = "reward"  # a PM's HHH answer is the choice it scores highest (training.hhh_pm)


@dataclass(frozen=True)
class Hhh:
    accuracy: float
    examples: int
    run_id: int


@dataclass(frozen=True)
class PreferenceModelRow:
    """One PM version. None: its metrics do not say."""

    version: ModelVersion
    accuracy: float | None  # held-out pairs ranked right (metrics["eval_accuracy"])
    pairs: int | None  # held-out pairs (metrics["eval_pairs"])
    interval: tuple[float, float] | None  # Wilson interval of ``accuracy`` on ``pairs``
    ece: float | None  # expected calibration error on the held-out pairs
    length_baseline: float | None  # "the longer response is better" on the same pairs
    hhh: Hhh | None  # its latest succeeded HHH evaluation
    incumbent: str | None  # the active PM it was compared with
    incumbent_accuracy: float | None  # that PM's accuracy on the same held-out pairs
    promoted: bool | None  # won the comparison (None: nothing to compare with or no metrics)
    reason: str  # the promotion decision in a sentence
    has_reliability: bool  # metrics carry reliability bins


def preference_models() -> list[PreferenceModelRow]:
    """Every PM version, oldest first."""
    versions = list(
        ModelVersion.objects.filter(kind=ModelVersion.Kind.PREFERENCE).order_by("created_at", "pk")
    )
    return [_row(v, hhh_summary(v)) for v in versions]


def hhh_summary(version: ModelVersion) -> Hhh | None:
    """Its latest succeeded HHH evaluation: the summary ``services.evaluation`` keeps on the
    version's metrics (``metrics["hhh"]``: the run, its examples, accuracy per scoring)."""
    summary = version.metrics.get(BENCHMARK) or {}
    scores = {k: v for k, v in summary.items() if k not in ("run", "examples")}
    accuracy = scores.get(HHH_SCORING, next(iter(scores.values()), None))
    if accuracy is None:
        return None
    return Hhh(accuracy=accuracy, examples=summary.get("examples", 0), run_id=summary.get("run"))


def reliability_bins(version: ModelVersion) -> list[dict]:
    """The bins of ``training.pm_metrics.reliability_bins`` kept in the metrics ([]: none)."""
    return [b for b in version.metrics.get("eval_reliability") or [] if b.get("n")]


def wilson(accuracy: float, pairs: int) -> tuple[float, float]:
    """The Wilson score interval of a proportion (scipy), from the share and the count."""
    return pm_metrics.wilson(round(accuracy * pairs), pairs, CONFIDENCE)


def _row(version: ModelVersion, hhh: Hhh | None) -> PreferenceModelRow:
    m = version.metrics or {}
    accuracy, pairs = m.get("eval_accuracy"), m.get("eval_pairs")
    incumbent = m.get("incumbent") or {}
    before = incumbent.get("eval_accuracy")
    promoted = None
    if accuracy is not None and before is not None:
        promoted = accuracy >= before
    return PreferenceModelRow(
        version=version,
        accuracy=accuracy,
        pairs=pairs,
        interval=wilson(accuracy, pairs) if accuracy is not None and pairs else None,
        ece=m.get("eval_ece"),
        length_baseline=m.get("length_baseline_accuracy"),
        hhh=hhh,
        incumbent=incumbent.get("name"),
        incumbent_accuracy=before,
        promoted=promoted,
        reason=_reason(version, accuracy, incumbent.get("name"), before, promoted),
        has_reliability=bool(reliability_bins(version)),
    )


def _reason(version, accuracy, incumbent, before, promoted) -> str:
    if accuracy is None:
        if version.training_run_id is None:
            return "Registered by hand: no held-out figures to compare."
        return "Its metrics hold no held-out accuracy."
    if promoted is None:
        return "The first preference model: there was no active one to beat."
    verdict = "Promoted" if promoted else "Not promoted"
    sign = "≥" if promoted else "<"
    return (
        f"{verdict}: {accuracy:.1%} {sign} {incumbent}'s {before:.1%} on the same held-out pairs."
    )

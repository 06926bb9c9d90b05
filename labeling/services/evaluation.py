"""HHH evaluation runs: checking a request can run, and keeping a summary of the results on
the model version (the run's own life is labeling/services/runs.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from labeling.models import ModelVersion, Run
from labeling.services import runs

BENCHMARK = "hhh"  # the key of the summary on the version's metrics


class EvaluationUnavailable(Exception):
    """The evaluation cannot be queued (its task files are not configured or missing)."""


def evaluation_request(
    *, model_version: ModelVersion, requested_by=None, limit: int | None = None
) -> Run:
    """Queue an HHH evaluation of ``model_version``. Fails at once, queuing nothing, when
    ``LAB_HHH_TASKS`` is unset or names nothing: the researcher sees why in the panel."""
    from pathlib import Path

    tasks = settings.LAB_HHH_TASKS
    if not tasks:
        raise EvaluationUnavailable("Set LAB_HHH_TASKS to the BIG-bench hhh_alignment folder.")
    if not Path(tasks).exists():
        raise EvaluationUnavailable(f"LAB_HHH_TASKS names {tasks}, which does not exist.")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    config = {"tasks": tasks, "limit": limit, "batch_size": settings.LAB_EVAL_BATCH_SIZE}
    return runs.run_request(
        kind=Run.Kind.EVALUATION,
        config=config,
        model_version=model_version,
        requested_by=requested_by,
    )


@transaction.atomic
def evaluation_succeed(*, run_id: int, metrics: dict) -> Run:
    """Store the results on the run and a summary on its model version (``metrics["hhh"]``)."""
    run = runs.run_succeed(run_id=run_id, metrics=metrics)
    version = ModelVersion.objects.select_for_update().get(pk=run.model_version_id)
    version.metrics = {
        **version.metrics,
        BENCHMARK: {
            "run": run.pk,
            "examples": metrics["examples"],
            **{name: s["overall"] for name, s in metrics["scoring"].items()},
        },
    }
    version.save(update_fields=["metrics"])
    return run

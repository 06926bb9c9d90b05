"""Evaluation runs: request, claim, progress, finish; results are kept per model version."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hhh.celery import app
from labeling.models import EvaluationRun, ModelVersion

Status = EvaluationRun.Status
EVALUATE_TASK = "labeling.tasks.evaluate_model_version"  # by name: the web never imports torch


class EvaluationUnavailable(Exception):
    """The evaluation cannot be queued (its task files are not configured or missing)."""


def evaluation_request(
    *, model_version: ModelVersion, requested_by=None, limit: int | None = None
) -> EvaluationRun:
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
    with transaction.atomic():
        run = EvaluationRun.objects.create(
            model_version=model_version, config=config, requested_by=requested_by
        )
        transaction.on_commit(partial(_enqueue, run.pk))
    return run


def _enqueue(run_id: int) -> None:
    app.send_task(EVALUATE_TASK, args=[run_id])


def evaluation_claim(*, run_id: int) -> bool:
    """Queued → running, once: a redelivered message finds nothing to claim."""
    claimed = EvaluationRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def evaluation_progress(*, run_id: int, progress: float) -> None:
    EvaluationRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
        progress=min(max(progress, 0.0), 1.0)
    )


def evaluation_fail(*, run_id: int, error: str) -> None:
    EvaluationRun.objects.filter(pk=run_id).update(
        status=Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )


@transaction.atomic
def evaluation_succeed(*, run_id: int, metrics: dict) -> EvaluationRun:
    """Store the results on the run and a summary on its model version (``metrics["hhh"]``)."""
    run = EvaluationRun.objects.select_for_update().select_related("model_version").get(pk=run_id)
    run.status = Status.SUCCEEDED
    run.progress = 1.0
    run.metrics = metrics
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "progress", "metrics", "finished_at"])
    version = ModelVersion.objects.select_for_update().get(pk=run.model_version_id)
    version.metrics = {
        **version.metrics,
        run.benchmark: {
            "run": run.pk,
            "examples": metrics["examples"],
            **{name: s["overall"] for name, s in metrics["scoring"].items()},
        },
    }
    version.save(update_fields=["metrics"])
    return run

"""Runs: request, claim, progress, finish, for every kind (training, evaluation,
distillation, export). Kind-specific services (training.py, evaluation.py, exports) call
these and add what their kind makes (a model version, a summary on the version)."""

from __future__ import annotations

from functools import partial

from django.db import transaction
from django.utils import timezone

from hhh.celery import app
from labeling.models import ModelVersion, Run

Status = Run.Status
ERROR_CHARS = 4000  # a traceback's last line is enough; the logs keep the rest

# The Celery task that does each kind, by name: the web process never imports torch.
TASKS = {
    Run.Kind.PREFERENCE: "labeling.tasks.train_preference_model",
    Run.Kind.EVALUATION: "labeling.tasks.evaluate_model_version",
    Run.Kind.DISTILLATION: "labeling.tasks.distill_assistant",
    Run.Kind.EXPORT: "labeling.tasks.export_data",
}


def run_request(
    *,
    kind: str,
    config: dict,
    model_version: ModelVersion | None = None,
    requested_by=None,
) -> Run:
    """Create a queued run and send its task once the row is committed (a worker must
    find it)."""
    with transaction.atomic():
        run = Run.objects.create(
            kind=kind, config=config, model_version=model_version, requested_by=requested_by
        )
        transaction.on_commit(partial(_enqueue, TASKS[kind], run.pk))
    return run


def _enqueue(task: str, run_id: int) -> None:
    app.send_task(task, args=[run_id])


def run_claim(*, run_id: int) -> bool:
    """Queued → running, once: a redelivered message finds nothing to claim."""
    claimed = Run.objects.filter(pk=run_id, status=Status.QUEUED).update(
        status=Status.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


def run_progress(*, run_id: int, progress: float, metrics: dict | None = None) -> None:
    """Only a running run moves: a late progress write cannot reopen a finished one."""
    fields = {"progress": min(max(progress, 0.0), 1.0)}
    if metrics is not None:
        fields["metrics"] = metrics
    Run.objects.filter(pk=run_id, status=Status.RUNNING).update(**fields)


def run_fail(*, run_id: int, error: str) -> None:
    Run.objects.filter(pk=run_id).update(
        status=Status.FAILED, error=error[-ERROR_CHARS:], finished_at=timezone.now()
    )


@transaction.atomic
def run_succeed(*, run_id: int, metrics: dict, output: str = "") -> Run:
    """Mark the run done with its results. Callers that also register what it made do so
    in the same transaction (this one joins theirs)."""
    run = Run.objects.select_for_update().get(pk=run_id)
    run.status = Status.SUCCEEDED
    run.progress = 1.0
    run.metrics = metrics
    run.output = output
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "progress", "metrics", "output", "finished_at"])
    return run

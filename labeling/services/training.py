"""Training runs: request, claim, progress, finish, and registering the model they make."""

from __future__ import annotations

from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from hhh.celery import app
from labeling.models import ModelVersion, TrainingRun

Status = TrainingRun.Status
TRAIN_TASK = "labeling.tasks.train_preference_model"  # by name: the web never imports torch


def default_training_config() -> dict:
    """A preference-model run's settings before a request's own (LAB_PM_BASE_SPEC, LAB_TRAIN_*)."""
    return {
        "model": settings.LAB_PM_BASE_SPEC,
        "max_length": settings.LAB_TRAIN_MAX_LENGTH,
        "epochs": settings.LAB_TRAIN_EPOCHS,
        "batch_size": settings.LAB_TRAIN_BATCH_SIZE,
    }


def training_run_request(*, config: dict, requested_by=None) -> TrainingRun:
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=TrainingRun.Kind.PREFERENCE, config=config, requested_by=requested_by
        )
        transaction.on_commit(partial(_enqueue_training, run.pk))
    return run


def _enqueue_training(run_id: int) -> None:
    app.send_task(TRAIN_TASK, args=[run_id])


def training_run_claim(*, run_id: int) -> bool:
    """Queued → running, once: a redelivered message finds nothing to claim."""
    return (
        TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=timezone.now()
        )
        == 1
    )


def training_run_progress(*, run_id: int, progress: float, metrics: dict) -> None:
    TrainingRun.objects.filter(pk=run_id, status=Status.RUNNING).update(
        progress=min(max(progress, 0.0), 1.0), metrics=metrics
    )


def training_run_fail(*, run_id: int, error: str) -> None:
    TrainingRun.objects.filter(pk=run_id).update(
        status=Status.FAILED, error=error[:4000], finished_at=timezone.now()
    )


@transaction.atomic
def training_run_succeed(
    *, run_id: int, metrics: dict, model_dir: str, activate: bool
) -> ModelVersion:
    """Register the trained preference model; make it the active one if it won."""
    run = TrainingRun.objects.select_for_update().get(pk=run_id)
    run.status = Status.SUCCEEDED
    run.progress = 1.0
    run.metrics = metrics
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "progress", "metrics", "finished_at"])
    version = ModelVersion.objects.create(
        name=f"pm-run-{run.pk}",
        kind=ModelVersion.Kind.PREFERENCE,
        spec=model_dir,
        metrics=metrics,
        training_run=run,
    )
    if activate:
        # Deactivate first: the partial unique index allows one active model per kind.
        ModelVersion.objects.filter(kind=ModelVersion.Kind.PREFERENCE, is_active=True).update(
            is_active=False
        )
        version.is_active = True
        version.save(update_fields=["is_active"])
    return version

"""Preference-model training runs: their default settings, and registering the model a
run makes (the run's own life is labeling/services/runs.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from labeling.models import ModelVersion, Run
from labeling.services import runs


def default_training_config() -> dict:
    """A preference-model run's settings before a request's own (LAB_PM_BASE_SPEC, LAB_TRAIN_*)."""
    return {
        "model": settings.LAB_PM_BASE_SPEC,
        "max_length": settings.LAB_TRAIN_MAX_LENGTH,
        "epochs": settings.LAB_TRAIN_EPOCHS,
        "batch_size": settings.LAB_TRAIN_BATCH_SIZE,
        "lr": settings.LAB_TRAIN_LR,
    }


def training_run_request(*, config: dict, requested_by=None) -> Run:
    return runs.run_request(kind=Run.Kind.PREFERENCE, config=config, requested_by=requested_by)


@transaction.atomic
def training_run_succeed(
    *, run_id: int, metrics: dict, model_dir: str, activate: bool
) -> ModelVersion:
    """Register the trained preference model; make it the active one if it won."""
    run = runs.run_succeed(run_id=run_id, metrics=metrics, output=model_dir)
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

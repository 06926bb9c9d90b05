"""Context-distillation runs: checking a request, and registering the assistant a run makes
(the run's own life is labeling/services/runs.py; the training is training/distill.py)."""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from labeling.models import ModelVersion, Run
from labeling.services import runs


def distillation_request(*, config: dict, requested_by=None) -> Run:
    """Queue a distillation. What the web process can check without torch is checked here
    (texts to learn from); the rest of the config is checked by DistillConfig in the worker,
    and a bad value fails the run with the reason."""
    data, sample = config.get("data"), config.get("sample", 0)
    if not data and not (isinstance(sample, int) and sample >= 1):
        raise ValidationError("Give a file of texts (data) or a number of texts to sample.")
    if data and not Path(data).is_file():
        raise ValidationError(f"The texts file {data} does not exist.")
    return runs.run_request(kind=Run.Kind.DISTILLATION, config=config, requested_by=requested_by)


@transaction.atomic
def distillation_succeed(*, run_id: int, metrics: dict, model_dir: str) -> ModelVersion:
    """Register the distilled assistant. It takes no prompt (the prompt is in its weights)
    and serves no campaign until a researcher picks it for one."""
    run = runs.run_succeed(run_id=run_id, metrics=metrics, output=model_dir)
    return ModelVersion.objects.create(
        name=f"distilled-run-{run.pk}",
        kind=ModelVersion.Kind.ASSISTANT,
        spec=model_dir,
        metrics=metrics,
        training_run=run,
    )

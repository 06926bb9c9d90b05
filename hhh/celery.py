"""The Celery app. Configuration lives in settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hhh.settings")

app = Celery("hhh")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _limit_torch_threads(**kwargs):
    """Workers sharing a small CPU (generation + training on one laptop) slow each other
    down badly when each runs one torch thread per core; LAB_TORCH_THREADS caps them."""
    from django.conf import settings

    if settings.LAB_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.LAB_TORCH_THREADS)

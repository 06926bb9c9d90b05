"""The Celery app. Configuration lives in settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hhh.settings")

app = Celery("hhh")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _share_the_cpu(**kwargs):
    """Workers sharing a small CPU (generation + training on one laptop) slow each other
    down badly when each runs one torch thread per core; LAB_TORCH_THREADS caps them. And
    model work yields the cores to the web server's pages (LAB_WORKER_NICE): a page is
    waited on by a person, a batch of tokens only gets a little later."""
    from django.conf import settings

    if settings.LAB_WORKER_NICE:
        os.nice(settings.LAB_WORKER_NICE)
    if settings.LAB_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.LAB_TORCH_THREADS)

"""A Celery worker's heartbeat in the database, for /healthz (labeling.health).

The worker's main process (it runs no task itself) starts a thread once it is ready; the
thread writes the worker's row every LAB_WORKER_HEARTBEAT_SECONDS. A failed write (the
database gone for a moment) is logged and tried again at the next beat: the heartbeat
never stops a worker."""

from __future__ import annotations

import logging
import threading
import time

from celery.signals import worker_ready
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from labeling.models import WorkerHeartbeat

log = logging.getLogger(__name__)


def beat(*, name: str, queues: list[str]) -> None:
    WorkerHeartbeat.objects.update_or_create(
        name=name, defaults={"queues": ",".join(sorted(queues)), "beat_at": timezone.now()}
    )


def _beat_forever(name: str, queues: list[str]) -> None:
    while True:
        try:
            close_old_connections()  # a connection the database dropped is opened again
            beat(name=name, queues=queues)
        except DatabaseError as exc:
            log.warning("heartbeat of %s not written: %s", name, exc)
        time.sleep(settings.LAB_WORKER_HEARTBEAT_SECONDS)


@worker_ready.connect
def _start(sender, **kwargs):
    queues = [queue.name for queue in sender.app.amqp.queues.consume_from.values()]
    threading.Thread(
        target=_beat_forever,
        args=(sender.hostname, queues),
        name="lab-heartbeat",
        daemon=True,  # ends with the worker
    ).start()

"""/healthz: is this lab able to take work? For a load balancer or a monitor.

Three checks, each bounded in time: the database answers a query, the broker accepts a
connection, and every kind of work has a live worker (a heartbeat younger than
LAB_WORKER_STALE_SECONDS, labeling.heartbeat). 200 when all pass, else 503; the JSON body
names each check's result either way. Open to anyone: it says nothing about the data."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from hhh.celery import app
from labeling.models import WorkerHeartbeat

BROKER_TIMEOUT_S = 2.0
# The queues the lab needs served: a turn waits on `generate`, runs on `train`.
NEEDED_QUEUES = ("generate", "default", "train")


def database_ok() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except DatabaseError as exc:
        return f"down: {exc.__class__.__name__}"


def broker_ok() -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # kombu raises the transport's own errors: any is "down"
        return f"down: {exc.__class__.__name__}"


def workers_ok() -> tuple[str, dict[str, float]]:
    """ "ok" when each needed queue has a live worker; and each worker's heartbeat age."""
    now = timezone.now()
    try:
        beats = list(WorkerHeartbeat.objects.values_list("name", "queues", "beat_at"))
    except DatabaseError:
        return "unknown: database down", {}
    fresh = now - timedelta(seconds=settings.LAB_WORKER_STALE_SECONDS)
    served = {q for _, queues, at in beats if at >= fresh for q in queues.split(",")}
    missing = [queue for queue in NEEDED_QUEUES if queue not in served]
    ages = {name: round((now - at).total_seconds(), 1) for name, _, at in beats}
    return ("ok" if not missing else f"down: no live worker for {', '.join(missing)}"), ages


@never_cache
@require_GET
def healthz(request):
    workers, ages = workers_ok()
    checks = {"database": database_ok(), "broker": broker_ok(), "workers": workers}
    healthy = all(result == "ok" for result in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", **checks, "heartbeat_age_s": ages},
        status=200 if healthy else 503,
    )

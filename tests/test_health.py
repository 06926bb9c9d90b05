"""/healthz for a load balancer: the database, the broker and a live worker per queue."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling import health, heartbeat
from labeling.models import WorkerHeartbeat
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def every_queue_served():
    heartbeat.beat(name="generate@host", queues=["generate", "default"])
    heartbeat.beat(name="train@host", queues=["train"])


def test_healthz_is_ok_when_the_database_the_broker_and_every_queues_worker_answer(client):
    every_queue_served()
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["database"] == body["broker"] == body["workers"] == "ok"
    assert set(body["heartbeat_age_s"]) == {"generate@host", "train@host"}


def test_healthz_is_503_and_names_the_queue_without_a_live_worker(client, settings):
    every_queue_served()
    stale = timezone.now() - timedelta(seconds=settings.LAB_WORKER_STALE_SECONDS + 1)
    WorkerHeartbeat.objects.filter(name="train@host").update(beat_at=stale)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["workers"] == "down: no live worker for train"


def test_healthz_is_503_when_the_broker_cannot_be_reached(client, monkeypatch):
    every_queue_served()

    def refused():
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(health.app, "connection_for_write", refused)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["broker"] == "down: ConnectionRefusedError"


def test_anyone_may_ask_and_nothing_is_cached(client):
    response = client.get(reverse("healthz"))
    assert response.status_code in (200, 503)
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_beats_its_heartbeat_for_its_queues(celery_worker_process):
    beat = wait_for(
        lambda: WorkerHeartbeat.objects.filter(name__startswith="test-").first(),
        timeout=60,
        proc=celery_worker_process,
        what="the worker's heartbeat",
    )
    assert set(beat.queues.split(",")) == {"default", "generate", "train"}
    assert timezone.now() - beat.beat_at < timedelta(seconds=30)

"""Sending a turn's generation task: never an error for a saved send, and in the web
server never a wait on the broker (labeling.services.generation)."""

import threading
import time

import pytest
from kombu.exceptions import OperationalError as BrokerError

from labeling.services import generation


def test_a_broker_that_refuses_the_send_is_logged_and_left_to_the_requeue(monkeypatch, caplog):
    def refused(*args, **kwargs):
        raise BrokerError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(generation.app, "send_task", refused)
    generation._enqueue_generation(7)  # no exception reaches the request
    assert "generation of turn 7 not enqueued (the requeue will)" in caplog.text


def test_in_the_web_server_the_send_waits_for_no_broker(monkeypatch, settings):
    settings.LAB_ENQUEUE_IN_BACKGROUND = True
    sent, release = [], threading.Event()

    def slow(name, args, **kwargs):
        release.wait(10)  # a paused broker
        sent.append(args[0])

    monkeypatch.setattr(generation.app, "send_task", slow)
    started = time.monotonic()
    generation._enqueue_generation(8)
    assert time.monotonic() - started < 0.5 and sent == []
    release.set()
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent == [8]


@pytest.mark.parametrize("value", ["20", "-1"])
def test_a_worker_nice_outside_0_to_19_stops_the_start(value):
    from tests.test_settings_env import check_in_a_new_process

    result = check_in_a_new_process(LAB_WORKER_NICE=value)
    assert result.returncode != 0 and "LAB_WORKER_NICE" in result.stderr

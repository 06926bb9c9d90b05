"""The token stream: events from rows read at an interval, from deltas published on Redis
pub/sub, stalls, and the view's access rule."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
import redis
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient
from django.urls import reverse

from labeling import streams
from labeling.services import conversations as svc
from labeling.streams import LiveCandidate, Mirror, TextPublisher, turn_events
from tests.factories import finish_candidates

SUITE_REDIS = "redis://127.0.0.1:6379/15"


def rows(*states, stalled=False):
    return [
        LiveCandidate(id=i + 1, status=s, text=t, stalled=stalled)
        for i, (s, t) in enumerate(states)
    ]


def collect(reads, *, redis_url="", during=None, limit=50):
    """Run the stream over a scripted sequence of row reads (the last one repeats);
    ``during`` runs alongside (a publisher)."""
    script = list(reads)

    async def read():
        return script.pop(0) if len(script) > 1 else script[0]

    async def render_turn():
        return "<div>the finished turn</div>"

    async def run():
        events = []
        helper = asyncio.create_task(asyncio.to_thread(during)) if during else None
        stream = turn_events(turn_id=99, read=read, render_turn=render_turn, redis_url=redis_url)
        async for event in stream:
            events.append(event)
            if len(events) >= limit or event.startswith("event: turn"):
                break
        await stream.aclose()
        if helper:
            await helper
        return events

    return in_a_thread(run)


def in_a_thread(fn):
    """Run an async function to its end from a thread of its own: the browser tests'
    Playwright keeps an event loop running in the main thread, where async_to_sync refuses.
    The thread's database connection is closed after."""

    def call():
        try:
            return async_to_sync(fn)()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(call).result()


def test_new_text_is_appended_a_changed_prefix_resets_and_the_finished_turn_ends_the_stream():
    events = collect(
        [
            rows(("pending", ""), ("pending", "")),
            rows(("running", "Hel"), ("running", "")),
            rows(("running", "Hello <b>"), ("running", "Hi")),
            rows(("running", "Help"), ("running", "Hi")),  # decoding changed a character
            rows(("done", "Help!"), ("done", "Hi.")),
        ]
    )
    assert events[0] == "retry: 1000\n\n"
    assert "event: reset-1\ndata: \n\n" in events and "event: reset-2\ndata: \n\n" in events
    assert "event: text-1\ndata: Hel\n\n" in events
    assert "event: text-1\ndata: lo &lt;b&gt;\n\n" in events  # escaped: model text is untrusted
    assert "event: reset-1\ndata: Help\n\n" in events
    assert events[-1] == "event: turn\ndata: <div>the finished turn</div>\n\n"


def test_every_line_of_a_multi_line_event_is_its_own_data_field():
    assert (
        streams.sse("text-1", "a\nb\r\nc\rd")
        == "event: text-1\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )


def test_a_stalled_turn_says_so_and_the_note_clears_when_text_moves_again():
    events = collect(
        [
            rows(("running", "a"), ("running", "b"), stalled=True),
            rows(("running", "ab"), ("running", "b")),
            rows(("done", "ab"), ("done", "b")),
        ]
    )
    stall = [e for e in events if e.startswith("event: stall")]
    assert "has stalled" in stall[0] and stall[1] == "event: stall\ndata: \n\n"


def test_a_failed_candidate_ends_the_stream_with_the_turn_and_its_retry_button():
    events = collect([rows(("running", "a"), ("failed", ""))])
    assert events[-1].startswith("event: turn")


def test_a_delta_that_does_not_fit_what_is_shown_waits_for_the_rows():
    mirror = Mirror()
    mirror.full(1, "Hello")
    assert mirror.delta(1, 9, "x") is None  # a gap: some deltas were missed
    assert mirror.delta(1, 5, " you") == "event: text-1\ndata:  you\n\n"
    assert mirror.delta(1, 4, "!") == "event: reset-1\ndata: Hell!\n\n"


def test_rows_written_behind_what_pub_sub_brought_change_nothing():
    mirror = Mirror()
    mirror.full(1, "")
    mirror.delta(1, 0, "The cat sat")
    assert mirror.read(1, "The cat") is None  # the database is a write behind
    assert mirror.read(1, "The cat sat on") == "event: text-1\ndata:  on\n\n"


@pytest.fixture
def suite_redis():
    client = redis.Redis.from_url(SUITE_REDIS)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis server on 127.0.0.1:6379 (CI and the lab's machines have one)")
    yield SUITE_REDIS
    client.close()


def test_deltas_published_by_the_worker_reach_the_page_before_the_rows_are_written(suite_redis):
    publisher = TextPublisher(suite_redis)
    waiting = rows(("running", ""), ("running", ""))

    def worker():
        import time

        time.sleep(0.3)  # the stream has subscribed and sent the rows' (empty) text
        for text in ("The", "The cat", "The cat sat"):
            publisher.text(turn_id=99, candidate_id=1, text=text)
            time.sleep(0.05)

    events = collect([waiting], redis_url=suite_redis, during=worker, limit=6)
    # the rows never changed: every word came over pub/sub
    assert [e for e in events if e.startswith("event: text-1")] == [
        "event: text-1\ndata: The\n\n",
        "event: text-1\ndata:  cat\n\n",
        "event: text-1\ndata:  sat\n\n",
    ]


def test_channels_are_kept_apart_per_redis_database():
    assert streams.channel("redis://h:6379/15", 3) != streams.channel("redis://h:6379/0", 3)
    assert streams.channel("redis://h:6379", 3) == streams.channel("redis://h:6379/0", 3)


def test_publishing_to_a_redis_that_is_down_never_fails_generation():
    publisher = TextPublisher("redis://127.0.0.1:1/0")  # nothing listens on port 1
    publisher.text(turn_id=1, candidate_id=1, text="still fine")
    publisher.end(turn_id=1, candidate_id=1)


@pytest.mark.django_db(transaction=True)  # the stream reads from a thread of its own
def test_the_stream_is_the_conversations_owners_and_a_ready_turn_is_sent_at_once(
    campaign, owner, other_worker
):
    conversation = svc.conversation_start(campaign=campaign, worker=owner)
    turn = svc.turn_create(conversation=conversation, worker=owner, text="hi")
    finish_candidates(turn, texts=("**bold** reply", "plain reply"))
    stream_url = reverse("labeling:turn_stream", args=[turn.pk])

    async def get(user):
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get(stream_url)
        body = ""
        if response.status_code == 200:
            with contextlib.suppress(StopAsyncIteration):
                async for chunk in response.streaming_content:
                    body += chunk.decode() if isinstance(chunk, bytes) else chunk
        return response, body

    stranger, _ = in_a_thread(partial(get, other_worker))
    assert stranger.status_code == 404
    response, body = in_a_thread(partial(get, owner))
    assert response["Content-Type"] == "text/event-stream"
    assert "event: turn\n" in body and "<strong>bold</strong> reply" in body
    assert body.count('name="choice"') == 8

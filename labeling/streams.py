"""Candidates' text, live, from the generation worker to the page (server-sent events).

Where Redis is configured (``LAB_STREAM_REDIS_URL``, the broker's by default) the worker
publishes every change of a candidate's text as a delta on the turn's channel, and the
stream view forwards it at once. On the embedded default (a folder broker, no Redis) the
view reads the rows at a short interval instead; the worker writes them every
``LAB_GENERATION_PROGRESS_SECONDS``. Either way the view also reads the rows now and then,
to see candidates finish, fail or stall.

Events (``htmx-ext-sse`` swaps each into the element whose ``sse-swap`` names it):
``text-<id>`` appends escaped text to a candidate, ``reset-<id>`` replaces all of it (the
first event, and when decoding changed earlier characters), ``stall`` says whether the
turn has stopped moving, and ``turn`` carries the finished turn's fragment, which replaces
the streaming one (and so closes the stream).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.utils.html import escape

log = logging.getLogger(__name__)

POLL_S = 0.25  # how often the view reads the rows when there is no Redis
# With Redis: how often the view reads the rows anyway. An end (done or failed) is published
# and read at once; this catches a stall (10 s without a heartbeat) and a missed message.
# Every open stream reads this often: 50 crowdworkers' streams made 25 reads a second at 2 s.
CHECK_S = 5.0
KEEPALIVE_S = 15.0  # a comment line, so proxies keep an idle stream open
MAX_STREAM_S = 60.0  # then the browser reconnects (``retry``): no request lives forever
RETRY_MS = 1000  # how soon the browser reconnects to an ended stream
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class LiveCandidate:
    """One candidate as the stream sees it."""

    id: int
    status: str  # CandidateResponse.Status values
    text: str
    stalled: bool  # no heartbeat for the stale threshold (running), or never claimed


def channel(url: str, turn_id: int) -> str:
    """The turn's pub/sub channel. Channels are shared by every database of a Redis server,
    so the name carries the database number: a test suite on db 15 never hears a demo."""
    db = urlsplit(url).path.strip("/") or "0"
    return f"hhh-lab:{db}:turn:{turn_id}"


def sse(name: str, data: str) -> str:
    """One server-sent event. Every line of ``data`` gets its own ``data:`` field (the
    browser joins them with newlines); a carriage return would otherwise end a field."""
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return f"event: {name}\n{lines}\n"


class TextPublisher:
    """The worker's side: publish each change of a candidate's text as a delta
    ``{"c": id, "o": offset, "d": text}`` (keep ``o`` characters, then append ``d``), and a
    candidate's end as ``{"c": id, "end": true}``. A publish that fails is logged and
    skipped: the page still gets the text from the database."""

    def __init__(self, url: str):
        import redis

        self._url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._sent: dict[int, str] = {}
        self._warned = False

    def text(self, *, turn_id: int, candidate_id: int, text: str) -> None:
        text = text.replace("\x00", "")  # as the rows store it
        before = self._sent.get(candidate_id, "")
        if text == before:
            return
        keep = _common_prefix(before, text)
        self._sent[candidate_id] = text
        self._publish(turn_id, {"c": candidate_id, "o": keep, "d": text[keep:]})

    def end(self, *, turn_id: int, candidate_id: int) -> None:
        self._sent.pop(candidate_id, None)
        self._publish(turn_id, {"c": candidate_id, "end": True})

    def _publish(self, turn_id: int, message: dict) -> None:
        import redis

        try:
            self._redis.publish(channel(self._url, turn_id), json.dumps(message))
        except redis.RedisError as exc:
            if not self._warned:
                log.warning(
                    "live text not published (the page falls back to the database): %s", exc
                )
                self._warned = True


_publishers: dict[str, TextPublisher] = {}


def publisher() -> TextPublisher | None:
    """The process's publisher (one connection pool), or None without Redis."""
    from django.conf import settings

    url = settings.LAB_STREAM_REDIS_URL
    if not url:
        return None
    if url not in _publishers:
        _publishers[url] = TextPublisher(url)
    return _publishers[url]


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class Mirror:
    """What the page shows of each candidate, kept by the view, turned into events."""

    def __init__(self):
        self.texts: dict[int, str] = {}

    def full(self, candidate_id: int, text: str) -> str | None:
        """The candidate's text is now ``text``: an append, a reset, or nothing."""
        shown = self.texts.get(candidate_id)
        self.texts[candidate_id] = text
        if shown == text:
            return None
        if shown is not None and text.startswith(shown):
            return sse(f"text-{candidate_id}", escape(text[len(shown) :]))
        return sse(f"reset-{candidate_id}", escape(text))

    def read(self, candidate_id: int, text: str) -> str | None:
        """The row's text as read from the database. Written only now and then, it may be
        behind what pub/sub has already brought: then it changes nothing."""
        shown = self.texts.get(candidate_id)
        if shown is not None and shown.startswith(text):
            return None
        return self.full(candidate_id, text)

    def delta(self, candidate_id: int, offset: int, added: str) -> str | None:
        """Apply a published delta; None when it does not fit what is shown (a gap: the
        next read of the rows catches up)."""
        shown = self.texts.get(candidate_id)
        if shown is None or offset > len(shown):
            return None
        return self.full(candidate_id, shown[:offset] + added)


async def turn_events(
    *,
    turn_id: int,
    read: Callable[[], Awaitable[list[LiveCandidate]]],
    render_turn: Callable[[], Awaitable[str]],
    redis_url: str,
) -> AsyncIterator[str]:
    """The event stream of one turn until its candidates are all done (or one failed), or
    MAX_STREAM_S has passed. ``read`` loads the rows; ``render_turn`` the finished fragment."""
    mirror = Mirror()
    started = last_sent = time.monotonic()
    stalled = False
    subscription = await _subscribe(redis_url, turn_id) if redis_url else None
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while time.monotonic() - started < MAX_STREAM_S:
            rows = await read()
            if _finished(rows):
                yield sse("turn", await render_turn())
                return
            for row in rows:
                event = mirror.read(row.id, row.text)
                if event:
                    yield event
                    last_sent = time.monotonic()
            now_stalled = any(row.stalled for row in rows)
            if now_stalled != stalled:
                stalled = now_stalled
                yield sse("stall", _STALL_HTML if stalled else "")
            async for event in _wait(subscription, mirror):
                yield event
                last_sent = time.monotonic()
            if time.monotonic() - last_sent > KEEPALIVE_S:
                yield ": keep-alive\n\n"
                last_sent = time.monotonic()
    finally:
        if subscription is not None:
            await _close(subscription)


_STALL_HTML = (
    '<span class="error">This response has stalled.</span> '
    "It will continue if the model server recovers, or try again."
)


def _finished(rows: list[LiveCandidate]) -> bool:
    return bool(rows) and (
        all(row.status == "done" for row in rows) or any(row.status == "failed" for row in rows)
    )


async def _wait(subscription, mirror: Mirror) -> AsyncIterator[str]:
    """Until the next read of the rows: sleep (no Redis), or forward published deltas for up
    to CHECK_S, returning early when a candidate ends."""
    if subscription is None:
        await asyncio.sleep(POLL_S)
        return
    from redis import RedisError

    deadline = time.monotonic() + CHECK_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await subscription.get_message(ignore_subscribe_messages=True, timeout=left)
        except RedisError:  # Redis went away: the rows, read at the short interval, go on
            await asyncio.sleep(POLL_S)
            return
        if message is None:
            continue
        body = json.loads(message["data"])
        if body.get("end"):
            return
        event = mirror.delta(body["c"], body["o"], body["d"])
        if event is None:
            return  # a gap: read the rows now
        yield event


async def _subscribe(url: str, turn_id: int):
    import redis.asyncio as aioredis

    subscription = aioredis.Redis.from_url(url).pubsub()
    try:
        await subscription.subscribe(channel(url, turn_id))
    except aioredis.RedisError as exc:  # Redis is down: read the database instead
        log.warning("live text from the database (Redis unavailable): %s", exc)
        await _close(subscription)
        return None
    return subscription


async def _close(subscription) -> None:
    try:
        await subscription.aclose()
        await subscription.connection_pool.disconnect()
    except Exception:  # noqa: BLE001 - closing a broken connection must not mask the end
        log.debug("closing a pub/sub subscription failed", exc_info=True)

"""The load harness's crowd: the simulator's workers (labeling.crowd_sim), each with a
browser that logs every request (when, what, status, how long) and that, after a Send,
reads the turn's token stream as the page's script does instead of reloading the page."""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from labeling.crowd_sim.browser import Browser, Page, endpoint
from labeling.crowd_sim.worker import SimWorker

# A response's first characters: an event that sets or extends its text with something
# (the stream opens with an empty reset of each response).
TEXT_EVENT = re.compile(rb"event: (?:text|reset)-\d+\ndata: [^\n]")
STREAM_TIMEOUT_S = 180.0  # a turn still not ready by then is counted as never ready


@dataclass(frozen=True)
class Request:
    at: float  # monotonic time the request was sent
    endpoint: str  # "POST /turns/<id>/compare/"
    status: int  # the final status (after redirects); 0: no answer at all
    seconds: float


@dataclass
class StreamLog:
    sent_at: float  # monotonic time of the Send's request
    first_s: float | None = None  # Send → the first token on the stream
    ready_s: float | None = None  # Send → the finished turn on the stream


@dataclass
class CrowdLog:
    """What the whole crowd's browsers saw, shared by their threads."""

    requests: list[Request] = field(default_factory=list)
    streams: list[StreamLog] = field(default_factory=list)
    worker_logs: list = field(default_factory=list)  # each simulated worker's WorkerLog
    seconds: float = 0.0  # from the first arrival to the last worker's end
    cpu_share: dict = field(default_factory=dict)  # cores used on average, by process
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item) -> None:
        with self.lock:
            (self.streams if isinstance(item, StreamLog) else self.requests).append(item)


class LoggingBrowser(Browser):
    def __init__(self, base_url: str, log: CrowdLog):
        super().__init__(base_url)
        self.log = log
        self.last_send: float | None = None

    def _open(self, request: urllib.request.Request, method: str) -> Page:
        started = time.monotonic()
        name = endpoint(method, request.full_url)
        if name.startswith("POST") and name.endswith("/messages/"):
            self.last_send = started
        status = 0
        try:
            page = super()._open(request, method)
            status = page.status
            return page
        except Exception as exc:
            status = getattr(getattr(exc, "page", None), "status", 0)
            raise
        finally:
            self.log.add(Request(started, name, status, time.monotonic() - started))

    def stream(self, path: str) -> StreamLog:
        """Read a turn's server-sent events until the finished turn arrives. In chunks, not
        lines: the harness shares the lab's cores, and only two moments matter here."""
        record = StreamLog(sent_at=self.last_send or time.monotonic())
        request = urllib.request.Request(self.url(path), headers={"Accept": "text/event-stream"})
        seen = b""
        try:
            with self.opener.open(request, timeout=STREAM_TIMEOUT_S) as response:
                while chunk := response.read1(65536):
                    now = time.monotonic() - record.sent_at
                    seen = seen[-64:] + chunk  # an event's name may straddle two chunks
                    if record.first_s is None and TEXT_EVENT.search(seen):
                        record.first_s = now
                    if b"event: turn\n" in seen:
                        record.ready_s = now
                        record.first_s = record.first_s if record.first_s is not None else now
                        break
        except (OSError, urllib.error.URLError):
            pass  # a cut stream: the page reloads, as the page's script would
        self.log.add(record)
        return record


class LoadWorker(SimWorker):
    """A simulated worker whose page runs its script: it types for ``think_s`` before a
    Send, and watches the turn's token stream instead of reloading the page."""

    def _chat(self, page: Page) -> Page | None:
        live = re.search(r"/turns/(\d+)/stream/", page.html)
        if live and page.form(r"/turns/\d+/compare/") is None:
            self.browser.stream(live.group(0))
            return self.browser.get(page.url)
        sending = page.form(r"/messages/$") is not None and (
            self._sent_in.get(page.path, 0) < self.turns_per_conversation
        )
        if sending:
            time.sleep(self.think_s)  # typing the message
        return super()._chat(page)

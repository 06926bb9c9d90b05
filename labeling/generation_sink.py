"""What a generation worker writes about the candidate rows it holds: streamed text,
results and failures (``GenerationSink``), and a heartbeat while it works (``Heartbeat``).
Every write names the holder, so a worker whose rows were taken over writes nothing."""

from __future__ import annotations

import logging
import threading

from django.db import DatabaseError, connection

from labeling.services import generation as gen_services
from labeling.streams import TextPublisher
from models_backend.generation import Candidate
from models_backend.orchestrate import Chosen, Throttle

log = logging.getLogger(__name__)
# The page hears a response's text at most this often: twenty changes a second reads as
# smooth, and every one more costs the worker a publish and the web server an event (a
# tiny model writes hundreds of tokens a second).
PUBLISH_EVERY_S = 0.05


class GenerationSink:
    """``orchestrate.Sink`` for the rows one task holds. ``progress`` comes on every token
    step that changes a row's text: the change goes to the page over Redis pub/sub where
    there is a ``publisher`` (``labeling.streams``) at most once per PUBLISH_EVERY_S, and
    reaches the database at most once per ``every_s`` seconds
    (LAB_GENERATION_PROGRESS_SECONDS); the final text comes with ``complete``, and then the
    stream hears that the row has ended (and reads the final text from the row)."""

    def __init__(
        self,
        *,
        holder: str,
        every_s: float,
        turns: dict[int, int],
        publisher: TextPublisher | None = None,
    ) -> None:
        self.holder = holder
        self.every_s = every_s
        self.turns = turns  # candidate id -> turn id (the stream's channel)
        self.publisher = publisher
        self._throttles: dict[int, Throttle] = {}
        self._published: dict[int, Throttle] = {}

    def progress(self, candidate_id: int, text: str) -> None:
        published = self._published.setdefault(candidate_id, Throttle(PUBLISH_EVERY_S))
        if self.publisher is not None and published.due():
            self.publisher.text(
                turn_id=self.turns[candidate_id], candidate_id=candidate_id, text=text
            )
        throttle = self._throttles.setdefault(candidate_id, Throttle(self.every_s))
        if throttle.due():
            gen_services.candidate_progress(
                candidate_id=candidate_id, text=text, holder=self.holder
            )

    def complete(self, candidate_id: int, result: Candidate, chosen: Chosen | None) -> None:
        best_of = None
        if chosen is not None:
            best_of = {
                "reward": chosen.reward,
                "alternatives": chosen.alternatives,
                "model_version_id": chosen.source.model_id,
                "selection": chosen.selection,
            }
        gen_services.candidate_complete(
            candidate_id=candidate_id,
            holder=self.holder,
            text=result.text,
            token_count=result.token_count,
            finish_reason=result.finish_reason,
            seconds=result.seconds,
            seed=result.seed,
            best_of=best_of,
        )
        self._ended([candidate_id])

    def fail(self, candidate_ids: list[int], error: str) -> None:
        gen_services.candidates_fail(candidate_ids=candidate_ids, error=error, holder=self.holder)
        self._ended(candidate_ids)

    def _ended(self, candidate_ids: list[int]) -> None:
        """Tell the streams to read the rows now (after the write: they find it there)."""
        if self.publisher is not None:
            for pk in candidate_ids:
                self.publisher.end(turn_id=self.turns[pk], candidate_id=pk)


class Heartbeat:
    """Beats for the rows a task holds every ``every_s`` seconds, from a thread of its own,
    while the task works: loading a model and best-of-n sampling report no progress, and
    rows whose heartbeat goes stale are taken over by another worker."""

    def __init__(self, *, holder: str, candidate_ids: list[int], every_s: float) -> None:
        self.holder = holder
        self.candidate_ids = list(candidate_ids)
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        # Inside a transaction (a test calling the task) no other worker sees the claim, and
        # another connection's write would wait for this transaction's row locks.
        if not connection.in_atomic_block:
            self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        if self._thread.is_alive():
            # Not forever: a beat stuck on a lock must not hold the task's result back.
            self._thread.join(timeout=2 * self.every_s)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.every_s):
                try:
                    gen_services.candidates_heartbeat(
                        candidate_ids=self.candidate_ids, holder=self.holder
                    )
                except DatabaseError:  # a blip: try again at the next beat, reconnected
                    log.warning(
                        "heartbeat of candidates %s failed", self.candidate_ids, exc_info=True
                    )
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

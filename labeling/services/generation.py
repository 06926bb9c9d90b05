"""Candidate responses: create, claim, stream, complete, fail, retry, requeue.

A worker claims rows as their ``holder`` (its name: host and process id) and keeps them
fresh with a heartbeat; rows whose heartbeat is older than the stale threshold belong to
a dead worker and may be claimed again. Writes from a worker name the holder, so one
whose rows were taken over changes nothing."""

from __future__ import annotations

import functools
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import KombuError

from hhh.celery import app
from labeling.models import MAX_CANDIDATES, Campaign, CandidateResponse, Turn

Status = CandidateResponse.Status
GENERATE_TASK = "labeling.tasks.generate_candidates"  # by name: the web never imports torch
# A dropped broker connection is opened again at once; a broker that does not answer is
# given up on after two tries (each bounded by the broker's socket timeout, settings).
ENQUEUE_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
log = logging.getLogger(__name__)


def candidates_create(*, turn: Turn, campaign: Campaign) -> list[CandidateResponse]:
    """The campaign's K pending candidates for an item (slots alternate model A and B);
    generation is enqueued once the rows are committed."""
    candidates = [
        CandidateResponse.objects.create(
            turn=turn, slot=slot, model_version=model, sampling=campaign.sampling()
        )
        for slot, model in enumerate(campaign.slot_models())
    ]
    transaction.on_commit(partial(_enqueue_generation, turn.pk))
    return candidates


def _enqueue_generation(turn_id: int) -> None:
    """Send the turn's task. Runs after the commit. In the web server
    (LAB_ENQUEUE_IN_BACKGROUND, set by hhh/asgi.py) from a thread of its own: a broker that
    is slow or away then holds up no page."""
    if settings.LAB_ENQUEUE_IN_BACKGROUND:
        _sender().submit(_send_generation, turn_id)
    else:
        _send_generation(turn_id)


def _send_generation(turn_id: int) -> None:
    """A failed send (the broker paused, restarting) is logged and left to beat's requeue,
    which sends any turn still pending after the stale threshold: a saved send is never
    turned into an error."""
    try:
        app.send_task(GENERATE_TASK, args=[turn_id], retry_policy=ENQUEUE_RETRY)
    except (KombuError, OSError) as exc:
        log.warning("generation of turn %d not enqueued (the requeue will): %r", turn_id, exc)


@functools.cache
def _sender() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-enqueue")


def _claimable(stale_after_s: float, holder: str) -> Q:
    """Pending rows, running ones whose holder stopped beating or whose process on this
    machine is gone, and the holder's own (a retry of its task after a database blip takes
    its rows back at once)."""
    stale = timezone.now() - timedelta(seconds=stale_after_s)
    claimable = Q(status=Status.PENDING) | Q(status=Status.RUNNING, heartbeat_at__lt=stale)
    if dead := dead_local_holders():
        claimable |= Q(status=Status.RUNNING, holder__in=dead)
    if holder:
        claimable |= Q(status=Status.RUNNING, holder=holder)
    return claimable


def dead_local_holders() -> list[str]:
    """Holders of running rows that were processes of this machine and are gone (a killed
    worker or pool process): their rows are abandoned now, not only once their heartbeat
    goes stale. A holder is "node@host:pid"; one on another host is left to its heartbeat."""
    host = socket.gethostname()
    running = CandidateResponse.objects.filter(status=Status.RUNNING)
    dead = []
    for holder in running.values_list("holder", flat=True).distinct():
        node, _, pid = holder.rpartition(":")
        if node.rpartition("@")[2] == host and pid.isdigit() and not _alive(int(pid)):
            dead.append(holder)
    return dead


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def _held(holder: str) -> Q:
    """Running rows of ``holder`` ("": of anyone, for callers that hold no claim)."""
    return Q(status=Status.RUNNING, holder=holder) if holder else Q(status=Status.RUNNING)


def candidates_claim(
    *, turn_id: int, stale_after_s: float, holder: str = ""
) -> list[CandidateResponse]:
    """Mark a turn's pending (or abandoned) candidates running, held by ``holder``, and
    return them.

    A conditional update: a second worker holding the same message (a redelivery, a
    requeue) finds the rows no longer claimable and gets nothing.
    """
    claimable = _claimable(stale_after_s, holder)
    ids = CandidateResponse.objects.filter(claimable, turn_id=turn_id).values_list("pk", flat=True)
    return _claim(list(ids), claimable, holder)


def candidates_claim_batch(
    *,
    campaign_id: int,
    model_version_id: int,
    sampling: dict,
    exclude_turn_id: int,
    max_turns: int,
    stale_after_s: float,
    holder: str = "",
) -> list[CandidateResponse]:
    """Claim other turns' waiting candidates from the same campaign, model and sampling, oldest
    turns first, at most ``max_turns`` turns: a worker batches concurrent turns into one forward
    pass. Their own queued messages later find nothing left to claim."""
    if max_turns < 1:
        return []
    claimable = _claimable(stale_after_s, holder)
    waiting = (
        CandidateResponse.objects.filter(
            claimable,
            turn__conversation__campaign_id=campaign_id,
            model_version_id=model_version_id,
            sampling=sampling,
        )
        .exclude(turn_id=exclude_turn_id)
        .order_by("turn__created_at", "slot")
        .values_list("pk", "turn_id")
    )
    turns: list[int] = []
    ids = []
    for pk, turn_id in waiting[: max_turns * MAX_CANDIDATES]:  # K slots per turn at most
        if turn_id not in turns:
            if len(turns) == max_turns:
                break
            turns.append(turn_id)
        ids.append(pk)
    return _claim(ids, claimable, holder)


def _claim(ids: list[int], claimable: Q, holder: str) -> list[CandidateResponse]:
    if not ids:
        return []
    now = timezone.now()
    CandidateResponse.objects.filter(claimable, pk__in=ids).update(
        status=Status.RUNNING, holder=holder, claimed_at=now, heartbeat_at=now, text="", error=""
    )
    return list(
        CandidateResponse.objects.filter(
            pk__in=ids, status=Status.RUNNING, holder=holder, claimed_at=now
        )
        .select_related("model_version", "turn__conversation__campaign")
        .order_by("turn_id", "slot")
    )


def candidates_heartbeat(*, candidate_ids: list[int], holder: str) -> int:
    """The holder still works on these rows (those it still holds and that still run)."""
    return CandidateResponse.objects.filter(_held(holder), pk__in=candidate_ids).update(
        heartbeat_at=timezone.now()
    )


def model_text(text: str) -> str:
    """Model output is untrusted: it may hold NUL, which no text column stores (PostgreSQL
    refuses it). Everything else is kept and escaped when shown."""
    return text.replace("\x00", "")


def candidate_progress(*, candidate_id: int, text: str, holder: str = "") -> None:
    """Partial text while tokens stream in; also a heartbeat."""
    CandidateResponse.objects.filter(_held(holder), pk=candidate_id).update(
        text=model_text(text), heartbeat_at=timezone.now()
    )


def candidate_complete(
    *,
    candidate_id: int,
    text: str,
    token_count: int,
    finish_reason: str,
    seconds: float,
    seed: int,
    best_of: dict | None = None,
    holder: str = "",
) -> None:
    """Store a finished candidate. ``best_of`` (best-of-n) holds ``reward``, ``alternatives``
    (the samples not shown, with rewards, NUL-free), ``model_version_id`` (the model that
    wrote the text: under the top-two policy it may be the other slot's) and ``selection``
    (the pair policy, preference model and n that chose it)."""
    now = timezone.now()
    extra = {}
    if best_of is not None:
        extra = {
            "reward": best_of["reward"],
            "alternatives": [{**a, "text": model_text(a["text"])} for a in best_of["alternatives"]],
            "model_version_id": best_of["model_version_id"],
            "selection": best_of.get("selection", {}),
        }
    CandidateResponse.objects.filter(_held(holder), pk=candidate_id).update(
        **extra,
        status=Status.DONE,
        text=model_text(text),
        token_count=token_count,
        finish_reason=finish_reason,
        generation_seconds=seconds,
        seed=seed,
        finished_at=now,
        heartbeat_at=now,
    )


def candidates_fail(*, candidate_ids: list[int], error: str, holder: str = "") -> None:
    CandidateResponse.objects.filter(_held(holder), pk__in=candidate_ids).update(
        status=Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


@transaction.atomic
def candidates_retry(*, turn: Turn, worker, stale_after_s: float | None = None) -> int:
    """The worker asks again: failed candidates, and with ``stale_after_s`` stalled ones
    (no heartbeat for that long: their worker is gone or stuck), go back to pending, asked
    now (their heartbeat: neither the page nor the requeue takes them for lost at once).
    A stalled row's holder is cleared, so a stuck worker that wakes up writes nothing."""
    turn = Turn.objects.select_for_update().select_related("conversation").get(pk=turn.pk)
    if turn.conversation.worker_id != worker.pk:
        raise PermissionDenied("Only the worker who started this conversation can retry.")
    now = timezone.now()
    again = {"status": Status.PENDING, "error": "", "text": "", "finished_at": None}
    count = turn.candidates.filter(status=Status.FAILED).update(**again, heartbeat_at=now)
    if stale_after_s is not None:
        stale = now - timedelta(seconds=stale_after_s)
        count += (
            turn.candidates.filter(status__in=[Status.PENDING, Status.RUNNING])
            .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale))
            .update(**again, holder="", heartbeat_at=now)
        )
    if not count:
        raise ValidationError("Nothing to retry: the responses are on their way.")
    transaction.on_commit(partial(_enqueue_generation, turn.pk))
    return count


def candidates_requeue_stale(*, stale_after_s: float) -> list[int]:
    """Re-enqueue turns whose candidates were lost: a dead worker, a message never sent
    (pending since they were asked for, at creation or by a retry)."""
    stale = timezone.now() - timedelta(seconds=stale_after_s)
    asked_long_ago = Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, created_at__lt=stale)
    lost = Q(status=Status.RUNNING, heartbeat_at__lt=stale) | Q(
        asked_long_ago, status=Status.PENDING
    )
    if dead := dead_local_holders():
        lost |= Q(status=Status.RUNNING, holder__in=dead)
    turn_ids = sorted(set(CandidateResponse.objects.filter(lost).values_list("turn_id", flat=True)))
    for turn_id in turn_ids:
        _enqueue_generation(turn_id)
    return turn_ids

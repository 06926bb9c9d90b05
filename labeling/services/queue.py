"""The task queue (DESIGN §8, issue 11): a campaign is a job served in sets of tasks. A
task is an item to judge (ranking, re-judge, a gold check) or, in chat and red team, one
conversation. ``task_next`` reserves an item for one worker at a time, never twice for the
same worker, for ``reservation_minutes``; an item takes judgments up to its overlap, or up
to the campaign's cap when they disagree (slots: ``labeling.queue_selectors``). Gold
checks are mixed in at the campaign's rate and look like any other item.

Concurrency. PostgreSQL: candidate items are locked one at a time with ``FOR UPDATE SKIP
LOCKED`` and their slots counted again inside the lock, so workers asking at once spread
over items instead of queueing on the first one, and an item's slots are counted by one
transaction at a time (a submit locks the item too). SQLite takes no row locks, but the
lab opens its transactions with BEGIN IMMEDIATE (``hhh/settings.py``): one writer at a
time, so the whole reservation runs alone. ``tests/test_queue_concurrency.py`` checks both.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Least
from django.utils import timezone

from labeling import queue_selectors as queued
from labeling.models import CHAT_KINDS, Assignment, Campaign, Conversation, GoldItem, Judgment, Turn
from labeling.services import conversations

Status = Assignment.Status
CANDIDATES_PER_READ = 50  # candidate items read per query while looking for an open slot
MAX_DRAFT_FIELDS = 40
MAX_DRAFT_CHARS = 4000


@transaction.atomic
def task_next(*, campaign: Campaign, worker) -> Assignment | None:
    """The worker's task: the one in progress (the page they left), else a new one, or
    None when their set is complete, the campaign's target is reached or nothing is left
    for them now."""
    _lock_worker(worker)
    live = queued.live_assignment(campaign, worker)
    if live is not None:
        return live
    if campaign.kind in CHAT_KINDS:
        conversation = _open_conversation(campaign, worker)
        if conversation is not None:  # begun before it had an assignment
            return _conversation_task(campaign, worker, conversation)
    progress = queued.set_progress(campaign, worker)
    if progress.complete:
        return None
    return _reserve(campaign, worker, set_number=progress.number)


@transaction.atomic
def set_start(*, campaign: Campaign, worker) -> Assignment:
    """Begin the worker's next set with its first task."""
    if hasattr(worker, "platform_worker"):
        raise ValidationError("A study participant does one set: this one is complete.")
    _lock_worker(worker)
    progress = queued.set_progress(campaign, worker)
    if not progress.complete:
        raise ValidationError(f"Finish this set first: you are on task {progress.position}.")
    assignment = _reserve(campaign, worker, set_number=progress.number + 1)
    if assignment is None:
        raise ValidationError("There is nothing more to do in this campaign right now. Thank you!")
    return assignment


@transaction.atomic
def task_skip(*, campaign: Campaign, worker, draft: dict) -> Assignment:
    """Skip the item in progress: it is never served to this worker again, its slot frees
    for others, and what they had typed is kept with the skip. A skip is not a task done."""
    live = (
        Assignment.objects.select_for_update()
        .filter(queued.live_item_q(), campaign=campaign, worker=worker)
        .first()
    )
    if live is None:
        raise ValidationError("You have no item to skip right now.")
    _finish(live, Status.SKIPPED, draft=_bounded(draft))
    return live


@transaction.atomic
def assignment_done(*, judgment: Judgment) -> None:
    """The worker's assignment of the judged item is done (called by every crowd submit,
    inside its transaction). A judgment made without one (the reservation was never taken,
    or lapsed and was taken up again) gets a done row, so the set counts it. A turn of the
    worker's own conversation is part of that conversation's task (``conversation_done``)."""
    if judgment.worker_id is None:
        return
    mine = Assignment.objects.filter(worker_id=judgment.worker_id, item_id=judgment.item_id)
    row = mine.select_for_update().first()
    if row is not None:
        _finish(row, Status.DONE, judgment=judgment)
        return
    own = Turn.objects.filter(pk=judgment.item_id, conversation__worker_id=judgment.worker_id)
    if not own.exists():
        _finished_row(
            campaign=judgment.campaign,
            worker=judgment.worker,
            item=judgment.item,
            status=Status.DONE,
            judgment=judgment,
        )


@transaction.atomic
def assignment_report(*, campaign: Campaign, worker, item: Turn, draft: dict) -> Assignment | None:
    """ "Can't judge / report": the worker's task on ``item`` ends as reported, with what
    they had typed. It counts as a task done in the set, never as a judgment, and its slot
    frees for others. None when there is no task to end (already judged, or a turn of
    their own conversation)."""
    row = Assignment.objects.select_for_update().filter(worker=worker, item=item).first()
    if row is not None:
        if row.status == Status.DONE:
            return None
        _finish(row, Status.REPORTED, draft=_bounded(draft))
        return row
    if Turn.objects.filter(pk=item.pk, conversation__worker=worker).exists():
        return None
    return _finished_row(
        campaign=campaign, worker=worker, item=item, status=Status.REPORTED, draft=_bounded(draft)
    )


@transaction.atomic
def assignments_release(*, campaign: Campaign, worker) -> int:
    """A worker who withdraws lets go of their reservations: they become expired (their
    slots free at once); an open conversation is resumed if they come back."""
    now = timezone.now()
    return Assignment.objects.filter(
        campaign=campaign, worker=worker, status=Status.RESERVED
    ).update(status=Status.EXPIRED, expires_at=Least("expires_at", now))


@transaction.atomic
def conversation_done(*, conversation: Conversation) -> None:
    """The conversation's task is done (``conversation_finish`` calls this)."""
    if conversation.worker_id is None:
        return
    rows = Assignment.objects.filter(conversation=conversation)
    if not rows.exists():
        _finished_row(
            campaign=conversation.campaign,
            worker=conversation.worker,
            conversation=conversation,
            status=Status.DONE,
        )
        return
    rows.exclude(status=Status.DONE).update(status=Status.DONE, finished_at=timezone.now())


# --- Reserving ---------------------------------------------------------------------------


def _lock_worker(worker) -> None:
    # One worker's two tabs asking at once must not reserve two tasks.
    list(get_user_model().objects.select_for_update().filter(pk=worker.pk).values_list("pk"))


def _reserve(campaign: Campaign, worker, *, set_number: int) -> Assignment | None:
    if not campaign.is_active or queued.target_reached(campaign, worker):
        return None
    gold_due = queued.gold_due(campaign, worker, queued.tasks_served(campaign, worker) + 1)
    if campaign.kind in CHAT_KINDS:
        gold = queued.gold_for_worker(campaign, worker).order_by("?").first() if gold_due else None
        if gold is not None:
            return _hold(campaign, worker, gold, set_number=set_number, is_gold=True)
        conversation = conversations.conversation_start(campaign=campaign, worker=worker)
        return _conversation_task(campaign, worker, conversation, set_number=set_number)
    item = _lock_open_item(campaign, worker)
    if item is None:  # nothing real left: no gold either, a check is only ever mixed in
        return None
    gold = queued.gold_for_worker(campaign, worker).order_by("?").first() if gold_due else None
    if gold is not None:
        return _hold(campaign, worker, gold, set_number=set_number, is_gold=True)
    return _hold(campaign, worker, item, set_number=set_number, is_gold=False)


def _lock_open_item(campaign: Campaign, worker) -> Turn | None:
    """The first candidate item with a slot for ``worker``, locked. Each row is locked with
    SKIP LOCKED (an item another transaction is reserving or judging right now is passed
    over, not waited for) and its slots counted again under the lock: the list was read
    from a snapshot older than the lock, which a transaction that committed since may
    have filled."""
    candidates = queued.open_items(campaign, worker).values_list("pk", flat=True)
    start = 0
    while True:
        batch = list(candidates[start : start + CANDIDATES_PER_READ])
        for pk in batch:
            locked = Turn.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=pk)
            if not list(locked.values_list("pk", flat=True)):
                continue
            if queued.open_slots(campaign, pk, worker) > 0:
                return Turn.objects.get(pk=pk)
        if len(batch) < CANDIDATES_PER_READ:
            return None
        start += CANDIDATES_PER_READ


def _hold(campaign: Campaign, worker, item: Turn, *, set_number: int, is_gold: bool) -> Assignment:
    """Reserve ``item`` for ``worker``: their lapsed reservation of it is taken up again
    (a worker has one row per item), else a new one."""
    now = timezone.now()
    fields = {
        "campaign": campaign,
        "set_number": set_number,
        "is_gold": is_gold,
        "status": Status.RESERVED,
        "judgment": None,
        "draft": {},
        "reserved_at": now,
        "expires_at": now + timedelta(minutes=campaign.reservation_minutes),
        "finished_at": None,
    }
    row, _ = Assignment.objects.update_or_create(worker=worker, item=item, defaults=fields)
    return row


def _open_conversation(campaign: Campaign, worker) -> Conversation | None:
    return (
        Conversation.objects.filter(
            campaign=campaign, worker=worker, status=Conversation.Status.OPEN
        )
        .order_by("-created_at")
        .first()
    )


def _conversation_task(
    campaign: Campaign, worker, conversation: Conversation, *, set_number: int | None = None
) -> Assignment:
    """The conversation's assignment, reserved (taken up again after a withdrawal)."""
    now = timezone.now()
    row = Assignment.objects.filter(conversation=conversation).first()
    if row is None:
        return Assignment.objects.create(
            campaign=campaign,
            worker=worker,
            conversation=conversation,
            set_number=set_number or queued.current_set(campaign, worker),
            reserved_at=now,
            expires_at=now + timedelta(minutes=campaign.reservation_minutes),
        )
    if row.status == Status.EXPIRED:
        row.status = Status.RESERVED
        row.save(update_fields=["status"])
    return row


# --- Ending tasks -----------------------------------------------------------------------------


def _finish(row: Assignment, status: str, *, judgment=None, draft: dict | None = None) -> None:
    """End ``row`` as ``status``. A row that was not live (it lapsed, or was skipped before)
    ends in the worker's current set: that is where the task was done."""
    live = row.status == Status.RESERVED and row.expires_at > timezone.now()
    if not live:
        row.set_number = queued.current_set(row.campaign, row.worker)
    row.status = status
    row.finished_at = timezone.now()
    if judgment is not None:
        row.judgment = judgment
    if draft is not None:
        row.draft = draft
    row.save()


def _finished_row(
    *, campaign, worker, status, item=None, conversation=None, judgment=None, draft=None
) -> Assignment:
    """A task that ended as it began: an answer or a report without a reservation."""
    now = timezone.now()
    return Assignment.objects.create(
        campaign=campaign,
        worker=worker,
        item=item,
        conversation=conversation,
        set_number=queued.current_set(campaign, worker),
        is_gold=item is not None and GoldItem.objects.filter(item=item).exists(),
        status=status,
        judgment=judgment,
        draft=draft or {},
        reserved_at=now,
        expires_at=now,
        finished_at=now,
    )


def _bounded(draft: dict) -> dict:
    """What the worker had typed, as text and bounded: it comes straight from a form post.
    NUL characters are dropped: PostgreSQL's jsonb stores none (a draft is not judged)."""
    if not isinstance(draft, dict):
        raise ValidationError("A draft is a set of form fields.")
    kept = {}
    for key, value in list(draft.items())[:MAX_DRAFT_FIELDS]:
        kept[str(key).replace("\x00", "")[:100]] = str(value).replace("\x00", "")[:MAX_DRAFT_CHARS]
    return kept

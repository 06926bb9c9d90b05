"""Quality while collecting: the campaign's rules pause a worker, with the reason and the
figures; researchers pause and lift by hand; workers report what they cannot judge.

A pause takes the worker's judgments in the campaign out of training and the default
exports (``crowd_selectors.counted_judgments``) and stops the queue serving them; lifting it
brings both back. After a lift the rules read only judgments made after it: the figures that
paused the worker were reviewed by the researcher who lifted the pause, and must not pause
them again at the next judgment. A worker who keeps failing is paused again once enough new
judgments say so.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling import quality
from labeling.crowd_selectors import open_pause
from labeling.models import Campaign, Pause, Report, Turn
from labeling.services import queue

MAX_NOTE_CHARS = 2000


@transaction.atomic
def rules_apply(*, campaign: Campaign, worker) -> Pause | None:
    """Pause ``worker`` when one of the campaign's rules says so (called after every
    judgment, inside its transaction). Rules in order: gold accuracy, time per judgment,
    position bias; the first broken one pauses. None when nothing is broken, or the worker
    is already paused."""
    if worker is None or open_pause(campaign, worker) is not None:
        return None
    figures = quality.rule_metrics(campaign, worker, since=quality.last_lift(campaign, worker))
    broken = _broken_rule(campaign, figures)
    if broken is None:
        return None
    rule, reason, threshold = broken
    metrics = {**figures.figures(), "threshold": threshold}
    return _pause(campaign=campaign, worker=worker, rule=rule, reason=reason, metrics=metrics)


def _broken_rule(campaign: Campaign, m: quality.WorkerMetrics) -> tuple[str, str, float] | None:
    """(rule, the reason in words a worker understands, the threshold) or None."""
    if (
        m.gold_seen >= max(campaign.min_gold_seen, 1)
        and m.gold_accuracy < campaign.min_gold_accuracy
    ):
        reason = (
            f"{m.gold_right} of {m.gold_seen} check questions answered as expected "
            f"({m.gold_accuracy:.0%}); this campaign needs {campaign.min_gold_accuracy:.0%}."
        )
        return Pause.Rule.GOLD_ACCURACY, reason, campaign.min_gold_accuracy
    if m.judgments < campaign.rule_min_judgments:
        return None
    minimum = campaign.min_judgment_seconds
    if minimum > 0 and m.median_seconds is not None and m.median_seconds < minimum:
        reason = (
            f"Your answers took {m.median_seconds:.1f} seconds each (the median over "
            f"{m.judgments} tasks); this campaign asks for at least {minimum:g} seconds, "
            "time enough to read every response."
        )
        return Pause.Rule.TOO_FAST, reason, minimum
    highest = campaign.max_first_position_rate
    if m.first_position_rate is not None and m.first_position_rate > highest:
        reason = (
            f"You picked the response shown first in {m.first_position_rate:.0%} of your "
            f"answers; responses are shown in a random order, and this campaign pauses above "
            f"{highest:.0%}."
        )
        return Pause.Rule.POSITION_BIAS, reason, highest
    return None


def _pause(*, campaign, worker, rule: str, reason: str, metrics: dict, by=None) -> Pause | None:
    """Create the open pause. Two judgments committing at once may both find a rule broken:
    the database allows one open pause, and the second finds it there (the savepoint keeps
    the caller's transaction, and the judgment in it, alive)."""
    try:
        with transaction.atomic():
            pause = Pause.objects.create(
                campaign=campaign,
                worker=worker,
                rule=rule,
                reason=reason,
                metrics=metrics,
                created_by=by,
            )
    except IntegrityError:
        return None
    # A paused worker holds no slot: the items reserved for them go back to the queue.
    queue.assignments_release(campaign=campaign, worker=worker)
    return pause


@transaction.atomic
def pause_create(*, campaign: Campaign, worker, reason: str, by) -> Pause:
    """A researcher pauses a worker by hand, saying why (the worker reads it)."""
    _check_researcher(by, "pause a worker")
    if not reason.strip():
        raise ValidationError("Say why the worker is paused: they will read it.")
    if worker is None:
        raise ValidationError("Choose the worker to pause.")
    figures = {}
    if rows := quality.worker_metrics(campaign, worker=worker):
        figures = rows[0].figures()
    pause = _pause(
        campaign=campaign,
        worker=worker,
        rule=Pause.Rule.MANUAL,
        reason=reason.strip(),
        metrics=figures,
        by=by,
    )
    if pause is None:
        raise ValidationError(f"{worker} is already paused in {campaign}.")
    return pause


@transaction.atomic
def pause_lift(*, pause: Pause, by, reason: str) -> Pause:
    """A researcher lifts a pause, saying why. The worker's judgments count again, and the
    rules read only what they do from now on (see the module's docstring)."""
    _check_researcher(by, "lift a pause")
    if not reason.strip():
        raise ValidationError("Say why the pause is lifted.")
    # Lock the row: two researchers lifting at once must not both write.
    locked = Pause.objects.select_for_update().get(pk=pause.pk)
    if locked.lifted_at is not None:
        raise ValidationError("This pause was already lifted.")
    locked.lifted_at = timezone.now()
    locked.lifted_by = by
    locked.lift_reason = reason.strip()
    locked.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    return locked


def _check_researcher(user, what: str) -> None:
    if user is None or not (user.is_active and user.is_staff):
        raise PermissionDenied(f"Only researchers can {what}.")


@transaction.atomic
def report_submit(
    *, campaign: Campaign, worker, item: Turn, reason: str, note: str = "", draft: dict
) -> Report:
    """ "Can't judge / report this response": a ``Report``, never a judgment. ``draft``:
    what the worker had typed (the queue keeps it, bounded)."""
    if reason not in Report.Reason.values:
        raise ValidationError("Choose what is wrong to report it.")
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ValidationError(f"Keep the note under {MAX_NOTE_CHARS} characters.")
    try:
        with transaction.atomic():  # a duplicate must not abort the caller's transaction
            report = Report.objects.create(
                campaign=campaign, worker=worker, item=item, reason=reason, note=note
            )
    except IntegrityError:  # one report per worker and item (a double click)
        raise ValidationError("You have already reported this.") from None
    # The queue ends the worker's task on the item as reported (its slot frees, the set
    # counts it done, the item is not served to them again) and keeps the draft; it has
    # nothing to end for a turn of their own conversation.
    queue.assignment_report(campaign=campaign, worker=worker, item=item, draft=draft)
    return report

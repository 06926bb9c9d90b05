"""What follows every judgment a crowdworker makes in a campaign, inside the same
transaction as the judgment: the queue closes the worker's reservation, and the
campaign's rules may pause the worker.

Each step runs in a savepoint of its own, and an error in it is logged, not raised: the
judgment is the worker's and is kept whatever the bookkeeping after it does (a bug in a
rule must never cost a judgment; the rules run again after the next one)."""

from __future__ import annotations

import logging

from django.db import transaction

from labeling.services import quality, queue

log = logging.getLogger(__name__)


def judgment_made(*, judgment) -> None:
    for step in (_close_reservation, _apply_rules):
        try:
            with transaction.atomic():
                step(judgment)
        except Exception:
            log.exception(
                "%s failed after judgment %s (the judgment is kept)", step.__name__, judgment.pk
            )


def _close_reservation(judgment) -> None:
    queue.assignment_done(judgment=judgment)


def _apply_rules(judgment) -> None:
    quality.rules_apply(campaign=judgment.campaign, worker=judgment.worker)

"""What follows every judgment a crowdworker makes in a campaign, inside the same
transaction as the judgment: the queue closes the worker's reservation, and the
campaign's rules may pause the worker."""

from __future__ import annotations

from labeling.services import quality, queue


def judgment_made(*, judgment) -> None:
    queue.assignment_done(judgment=judgment)
    quality.rules_apply(campaign=judgment.campaign, worker=judgment.worker)

"""Judgments: recorded as asked, with their provenance; corrected only by superseding."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from labeling.models import Campaign, CandidateResponse, JudgedCandidate, Judgment, Turn
from training.questions import check_order, check_question

UI_VERSION = "2"


def candidate_provenance(candidate: CandidateResponse) -> dict:
    """What wrote a candidate, as it was when it was judged (model versions can change)."""
    version = candidate.model_version
    return {
        "id": candidate.pk,
        "slot": candidate.slot,
        "model": version.name if version else None,
        "spec": version.spec if version else None,
        "prompt": version.prompt if version else None,
        "sampling": candidate.sampling,
        "seed": candidate.seed,
        "finish_reason": candidate.finish_reason,
        "reward": candidate.reward,
        "selection": candidate.selection,
    }


@transaction.atomic
def judgment_record(
    *,
    item: Turn,
    campaign: Campaign,
    worker,
    task_type: str,
    question: str,
    shown: list[CandidateResponse],
    order: list[list[int]],
    strength: int | None = None,
    ties: bool = False,
    time_spent_ms: int | None = None,
    comment: str = "",
    guideline_version: str = "",
    ui_version: str = UI_VERSION,
    source: str = "ui",
    recorded_by=None,
    supersedes: Judgment | None = None,
    reason: str = "",
) -> Judgment:
    """Store one answer: ``shown`` is the candidates in display order (A first), ``order``
    groups of display positions, top first under ``question``."""
    try:
        check_question(question)
        groups = check_order(order, len(shown), ties=ties)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if len(shown) == 2 and strength not in (None, 1, 2, 3, 4):
        raise ValidationError("A strength is 1 (about the same) to 4 (much).")
    if len(shown) != 2 and strength is not None:
        raise ValidationError("Only a pair has a strength on the 8-point scale.")
    try:
        with transaction.atomic():  # a duplicate must not abort the caller's transaction
            judgment = Judgment.objects.create(
                item=item,
                campaign=campaign,
                worker=worker,
                task_type=task_type,
                question=question,
                strength=strength,
                time_spent_ms=time_spent_ms,
                comment=comment.strip(),
                guideline_version=guideline_version,
                ui_version=ui_version,
                provenance={"candidates": [candidate_provenance(c) for c in shown]},
                source=source,
                recorded_by=recorded_by if recorded_by is not None else worker,
                supersedes=supersedes,
                reason=reason.strip(),
            )
    except IntegrityError:
        raise ValidationError("This item has already been judged.") from None
    rank = {p: r for r, group in enumerate(groups) for p in group}
    JudgedCandidate.objects.bulk_create(
        JudgedCandidate(judgment=judgment, candidate=c, position=p, rank=rank[p])
        for p, c in enumerate(shown)
    )
    return judgment


@transaction.atomic
def judgment_supersede(
    *, judgment: Judgment, by, reason: str, order: list[list[int]], strength: int | None
) -> Judgment:
    """A researcher's correction: a new row naming who and why; the old row stays as it was."""
    if not (by.is_active and by.is_staff):
        raise PermissionDenied("Only researchers can supersede a judgment.")
    if not reason.strip():
        raise ValidationError("Say why this judgment is superseded.")
    # Lock the row: two researchers correcting at once must not both pass the check below.
    old = (
        Judgment.objects.select_for_update().select_related("item", "campaign").get(pk=judgment.pk)
    )
    if Judgment.objects.filter(supersedes=old).exists():
        raise ValidationError("This judgment was already superseded: correct the latest one.")
    entries = list(old.entries.select_related("candidate__model_version").order_by("position"))
    return judgment_record(
        item=old.item,
        campaign=old.campaign,
        worker=old.worker,
        task_type=old.task_type,
        question=old.question,
        shown=[e.candidate for e in entries],
        order=order,
        strength=strength,
        ties=old.campaign.allow_ties,
        guideline_version=old.guideline_version,
        ui_version="admin",
        source=old.source,
        recorded_by=by,
        supersedes=old,
        reason=reason,
    )

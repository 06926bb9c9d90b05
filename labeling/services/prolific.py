"""Prolific participants (issue 11): an arrival signs in a pseudonymous account made on the
first visit, and a finished set marks the arrival's session complete. The participant id
stays on ``PlatformWorker`` (payments need it); the account's name is random, so pages and
exports (which show only ``export_rows.pseudonym``) never carry it."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from labeling.models import Campaign, PlatformSession, PlatformWorker

PROLIFIC = PlatformWorker.Platform.PROLIFIC
# The query parameters of a Prolific study link, and what each is called on the error page.
ENTRY_PARAMETERS = {
    "PROLIFIC_PID": "participant id",
    "STUDY_ID": "study id",
    "SESSION_ID": "session id",
}
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,100}")  # Prolific's are 24 hex digits
PSEUDONYM_PREFIX = "p-"
PSEUDONYM_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # lowercase base32
PSEUDONYM_LENGTH = 10


def entry_problems(values: dict[str, str | None]) -> list[str]:
    """What is wrong with a study link's ids, one sentence per parameter (empty: none)."""
    problems = []
    for name, label in ENTRY_PARAMETERS.items():
        value = values.get(name)
        if not value:
            problems.append(f"{name} (the {label}) is missing.")
        elif not ID_PATTERN.fullmatch(value):
            problems.append(f"{name} (the {label}) must be 1 to 100 letters, digits, '-' or '_'.")
    return problems


@transaction.atomic
def prolific_arrive(*, campaign: Campaign, participant_id: str, study_id: str, session_id: str):
    """The account of the participant arriving from a study link (made on their first visit,
    with no password), with this session recorded. Nothing is written for a bad link."""
    problems = entry_problems(
        {"PROLIFIC_PID": participant_id, "STUDY_ID": study_id, "SESSION_ID": session_id}
    )
    if problems:
        raise ValidationError(problems)
    if not campaign.is_active:
        raise ValidationError(f"The study {campaign.name!r} is closed.")
    platform_worker = _platform_worker(participant_id)
    session, _ = PlatformSession.objects.get_or_create(
        platform_worker=platform_worker,
        session_id=session_id,
        defaults={"campaign": campaign, "study_id": study_id},
    )
    if session.campaign_id != campaign.pk or session.study_id != study_id:
        raise ValidationError(
            "This Prolific session belongs to another study: open the link Prolific gave you."
        )
    return platform_worker.user


def _platform_worker(participant_id: str) -> PlatformWorker:
    known = PlatformWorker.objects.select_related("user").filter(
        platform=PROLIFIC, participant_id=participant_id
    )
    if found := known.first():
        return found
    try:
        # A savepoint: when the same participant's second tab made the account a moment
        # earlier (the unique participant constraint), theirs is used and ours undone.
        with transaction.atomic():
            user = get_user_model()(username=_free_pseudonym())
            user.set_unusable_password()  # they sign in through the study link only
            user.save()
            return PlatformWorker.objects.create(
                user=user, platform=PROLIFIC, participant_id=participant_id
            )
    except IntegrityError:
        return known.get()


def _free_pseudonym() -> str:
    users = get_user_model().objects
    while True:  # 32**10 names: a clash is all but impossible, but not an error
        name = PSEUDONYM_PREFIX + get_random_string(PSEUDONYM_LENGTH, PSEUDONYM_ALPHABET)
        if not users.filter(username=name).exists():
            return name


@transaction.atomic
def session_complete(*, campaign: Campaign, worker) -> PlatformSession | None:
    """Mark the platform worker's latest session in ``campaign`` completed (once: the time
    of the first visit to the end page stays); None for a worker from no platform."""
    session = (
        PlatformSession.objects.select_for_update()
        .filter(campaign=campaign, platform_worker__user=worker)
        .order_by("-created_at", "-pk")
        .first()
    )
    if session is None:
        return None
    if session.completed_at is None:
        session.completed_at = timezone.now()
        session.save(update_fields=["completed_at"])
    return session

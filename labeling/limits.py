"""Per-worker limits on how fast work is sent (issue 11, abuse limits): messages in a chat and
judgments of any kind, each a number per minute from the settings (0: no limit). Counted
in Django's cache by django-ratelimit, so every web process shares one count when the cache
is Redis (hhh.settings). The submit views ask ``over_limit`` first and show its sentence
like a form error, keeping what the worker typed."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    setting: str  # the per-minute number in settings
    plural: str  # what is counted, in the message
    kept: str  # what the page keeps for them


LIMITS = {
    "message": Limit("LAB_MESSAGES_PER_MINUTE", "messages", "your text is kept"),
    "judgment": Limit("LAB_JUDGMENTS_PER_MINUTE", "judgments", "your answer is kept"),
}


def over_limit(request, action: str) -> str | None:
    """Count one ``action`` ("message" or "judgment") by the signed-in worker; a sentence to
    show when it is more than the minute allows, else None. Minutes are fixed windows
    (django-ratelimit's), one per worker and action."""
    if action not in LIMITS:
        raise ValueError(f"no limit for {action!r}: one of {', '.join(LIMITS)}")
    limit = LIMITS[action]
    per_minute = getattr(settings, limit.setting)
    if per_minute == 0:
        return None
    try:
        limited = is_ratelimited(
            request, group=f"lab-{action}", key="user", rate=f"{per_minute}/m", increment=True
        )
    except RedisError:
        # A cache outage must not refuse work (as RATELIMIT_FAIL_OPEN for a failed count).
        log.warning("rate limit for %s not checked: the cache is unreachable", action)
        return None
    if not limited:
        return None
    return (
        f"You are sending {limit.plural} faster than {per_minute} a minute. "
        f"Please wait a moment and send again: {limit.kept}."
    )


def check_rate(request, action: str) -> None:
    """``over_limit`` for the submit views: its sentence raised as a ``ValidationError``, which
    they show like any refused answer (the typed work stays in the form)."""
    message = over_limit(request, action)
    if message is not None:
        raise ValidationError(message)

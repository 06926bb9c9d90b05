"""Next task, skip, a new set: parse, call one service, send the worker to their task's
page (a conversation, the item page, the end of the set). Every one asks the onboarding
gate first."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.views.decorators.http import require_GET, require_POST

from labeling import queue_selectors
from labeling.gate import gate, go
from labeling.services import queue

# Fields of the item forms that are the worker's typed work (kept with a skip).
DRAFT_FIELDS = ("comment", "choice", "shown")
DRAFT_PREFIXES = ("place_",)


@login_required
@require_GET
def task_next(request, slug):
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    try:
        assignment = queue.task_next(campaign=campaign, worker=request.user)
    except ValidationError as exc:  # e.g. a chat campaign without models to talk to
        messages.error(request, " ".join(exc.messages))
        return go(request, "labeling:home")
    return task_page(request, campaign, assignment) or go(
        request, "labeling:item_next", slug=campaign.slug
    )


@login_required
@require_POST
def task_skip(request, slug):
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    try:
        queue.task_skip(campaign=campaign, worker=request.user, draft=draft_of(request.POST))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return go(request, "labeling:task_next", slug=campaign.slug)


@login_required
@require_POST
def set_start(request, slug):
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    try:
        queue.set_start(campaign=campaign, worker=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return go(request, "labeling:set_done", slug=campaign.slug)
    return go(request, "labeling:task_next", slug=campaign.slug)


def task_page(request, campaign, assignment):
    """Where a task other than an item lives: its conversation, or the end of the set.
    None: the item page (an item, or nothing to do right now)."""
    if assignment is not None and assignment.conversation_id is not None:
        return go(request, "labeling:conversation", pk=assignment.conversation_id)
    if assignment is None and queue_selectors.set_progress(campaign, request.user).complete:
        return go(request, "labeling:set_done", slug=campaign.slug)
    return None


def draft_of(post) -> dict:
    """The typed work in a posted item form: comment, picked level, places, what was shown."""
    return {
        key: post.get(key) for key in post if key in DRAFT_FIELDS or key.startswith(DRAFT_PREFIXES)
    }

"""Prolific entry and the end of a set. A study link signs its participant in (no password)
and hands them to the queue; the end page gives a participant the study's completion code
and sends them back to Prolific, and offers anyone else another set."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from labeling import queue_selectors
from labeling.models import Campaign
from labeling.services import prolific

# Seconds the end page shows the completion code before it returns a participant to Prolific.
RETURN_AFTER_S = 5


@require_GET
def prolific_entry(request, slug):
    campaign = Campaign.objects.filter(slug=slug).first()
    if campaign is None:
        return _entry_refused(request, 404, "No study here", ["There is no study at this address."])
    if not campaign.is_active:
        return _entry_refused(
            request, 410, "This study is closed", ["It takes no more participants."]
        )
    ids = {name: request.GET.get(name, "") for name in prolific.ENTRY_PARAMETERS}
    try:
        user = prolific.prolific_arrive(
            campaign=campaign,
            participant_id=ids["PROLIFIC_PID"],
            study_id=ids["STUDY_ID"],
            session_id=ids["SESSION_ID"],
        )
    except ValidationError as exc:
        return _entry_refused(request, 400, "This study link does not work", exc.messages)
    if request.user.is_authenticated and request.user.pk != user.pk:
        logout(request)  # someone else's session in this browser: theirs ends first
    # No password was checked, so name the backend (axes' own backend only guards passwords).
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("labeling:task_next", slug=campaign.slug)


def _entry_refused(request, status: int, title: str, problems: list[str]):
    return render(
        request,
        "labeling/prolific_error.html",
        {"title": title, "problems": problems},
        status=status,
    )


@login_required
@require_GET
def set_done(request, slug):
    # Not only active campaigns: a set finished as a study closes still earns its code.
    campaign = get_object_or_404(Campaign, slug=slug)
    progress = queue_selectors.set_progress(campaign, request.user)
    if not progress.complete:
        return redirect("labeling:task_next", slug=campaign.slug)
    session = prolific.session_complete(campaign=campaign, worker=request.user)
    return render(
        request,
        "labeling/done.html",
        {
            "campaign": campaign,
            "progress": progress,
            "participant": session is not None,
            "completion_url": _return_url(campaign),
            "return_after_s": RETURN_AFTER_S,
        },
    )


def _return_url(campaign: Campaign) -> str:
    """The completion URL if it is a web address: the page puts it in a refresh and a link,
    where any other scheme (javascript:) must never go."""
    url = campaign.completion_url.strip()
    return url if url.startswith(("https://", "http://")) else ""

"""The paused page, and "Can't judge / report this response" on items and chat turns: parse,
call one service, render."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling import item_selectors, queue_selectors, selectors
from labeling.crowd_selectors import open_pause
from labeling.gate import gate, go
from labeling.models import Campaign, Report
from labeling.services.quality import MAX_NOTE_CHARS, report_submit

REPORT = "labeling/_report.html"
# Posted with a report but not part of the draft: the form's own fields.
NOT_DRAFT = ("csrfmiddlewaretoken", "reason", "note")


class ReportForm(forms.Form):
    reason = forms.ChoiceField(
        choices=Report.Reason.choices,
        error_messages={
            "required": "Choose what is wrong to report it.",
            "invalid_choice": "Choose what is wrong to report it.",
        },
    )
    note = forms.CharField(
        required=False,
        max_length=MAX_NOTE_CHARS,
        error_messages={"max_length": f"Keep the note under {MAX_NOTE_CHARS} characters."},
    )


@login_required
@require_GET
def paused(request, slug):
    campaign = get_object_or_404(Campaign, slug=slug)
    pause = open_pause(campaign, request.user)
    if pause is None:
        return redirect("labeling:task_next", slug=campaign.slug)
    return render(request, "labeling/paused.html", {"campaign": campaign, "pause": pause})


@login_required
@require_POST
def item_report(request, slug, pk):
    """A ranking, re-judge or gold item: recorded, then the next task. A report counts as a
    task done in the set, so it asks the onboarding gate first, as an answer does."""
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    item = item_selectors.get_item_for_worker(request.user, campaign, pk)
    error = _report(request, campaign, item)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, "Thanks — reported. Here is the next task.")
    return go(request, "labeling:task_next", slug=campaign.slug)


@login_required
@require_POST
def turn_report(request, pk):
    """A turn of the worker's own conversation: recorded; a chat goes on only with a pick,
    so the worker stays on the conversation (and may still pick, or finish it). Staff may
    read anyone's conversation, but only its worker reports its turns (as only they pick)."""
    turn = selectors.get_turn_for_user(request.user, pk)
    if turn.conversation.worker_id != request.user.pk:
        raise PermissionDenied("Only the worker who started this conversation can report it.")
    campaign = turn.conversation.campaign
    error = _report(request, campaign, turn)
    if request.htmx:  # 200 either way: htmx swaps no error status
        if error:
            context = {"campaign": campaign, "item": turn, "error": error, "chat": True}
            return render(request, f"{REPORT}#report", context)
        return render(request, f"{REPORT}#reported")
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request, "Thanks — reported. Pick a response to go on, or finish the conversation."
        )
    return redirect("labeling:conversation", pk=turn.conversation_id)


def _report(request, campaign, item) -> str:
    """Record the report; the error to show, or "" when it was recorded."""
    form = ReportForm(request.POST)
    if not form.is_valid():
        return " ".join(e for errors in form.errors.values() for e in errors)
    draft = {k: v for k, v in request.POST.items() if k not in NOT_DRAFT}
    try:
        report_submit(
            campaign=campaign,
            worker=request.user,
            item=item,
            reason=form.cleaned_data["reason"],
            note=form.cleaned_data["note"],
            draft=draft,
        )
    except ValidationError as exc:
        return " ".join(exc.messages)
    return ""

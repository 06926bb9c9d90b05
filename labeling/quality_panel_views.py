"""The panel's Quality page (agreement, bias, workers with pause and lift) and the
Leaderboard (model strengths, with a plot): parse, call one service or selector, render."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST

from labeling import panel_plots, plots
from labeling import quality_panel_selectors as selectors
from labeling.gate import go
from labeling.models import Campaign, Pause
from labeling.panel_access import researcher_required
from labeling.services.quality import MAX_NOTE_CHARS, pause_create, pause_lift

QUALITY = "panel/quality.html"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=MAX_NOTE_CHARS,
        error_messages={
            "required": "Say why: it is kept with the pause.",
            "max_length": f"Keep the reason under {MAX_NOTE_CHARS} characters.",
        },
    )


class PauseForm(ReasonForm):
    worker = forms.ModelChoiceField(
        get_user_model().objects.all(), error_messages={"invalid_choice": "No such worker."}
    )


@researcher_required
@require_GET
def quality(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    context = {
        "area": "campaigns",
        "campaign": campaign,
        "agreement": selectors.campaign_agreement(campaign),
        "bias": selectors.campaign_bias(campaign),
        "rows": selectors.worker_rows(campaign),
    }
    return render(request, QUALITY, context)


@researcher_required
@require_POST
def worker_pause(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    form = PauseForm(request.POST)
    if not form.is_valid():
        return _after(request, campaign, form.cleaned_data.get("worker"), _errors(form))
    worker = form.cleaned_data["worker"]
    try:
        pause_create(
            campaign=campaign, worker=worker, reason=form.cleaned_data["reason"], by=request.user
        )
    except ValidationError as exc:
        return _after(request, campaign, worker, " ".join(exc.messages))
    return _after(request, campaign, worker, "", done=f"{worker} is paused.")


@researcher_required
@require_POST
def worker_unpause(request, slug: str, pause_id: int):
    campaign = get_object_or_404(Campaign, slug=slug)
    pause = get_object_or_404(
        Pause.objects.select_related("worker"), pk=pause_id, campaign=campaign
    )
    form = ReasonForm(request.POST)
    if not form.is_valid():
        return _after(request, campaign, pause.worker, _errors(form))
    try:
        pause_lift(pause=pause, by=request.user, reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        return _after(request, campaign, pause.worker, " ".join(exc.messages))
    return _after(request, campaign, pause.worker, "", done=f"{pause.worker} may go on.")


def _after(request, campaign: Campaign, worker, error: str, done: str = ""):
    """htmx: the worker's row again, with the error or what was done; without JavaScript
    (or without a row to show): back to the page with a message."""
    rows = selectors.worker_rows(campaign, worker=worker) if worker is not None else []
    if request.htmx and rows:
        context = {"campaign": campaign, "row": rows[0], "error": error, "done": done}
        return render(request, f"{QUALITY}#worker_row", context)
    if error:
        messages.error(request, f"{worker}: {error}" if worker else error)
    else:
        messages.success(request, done)
    return go(request, "panel:quality", slug=campaign.slug)


def _errors(form: forms.Form) -> str:
    return " ".join(e for errors in form.errors.values() for e in errors)


@researcher_required
@require_GET
def leaderboard(request):
    campaign = _campaign_or_none(request)
    context = {
        "area": "leaderboard",
        "campaign": campaign,
        "campaigns": Campaign.objects.order_by("name"),
        "board": selectors.leaderboard(campaign),
    }
    return render(request, "panel/leaderboard.html", context)


@researcher_required
@require_GET
def leaderboard_plot(request):
    board = selectors.leaderboard(_campaign_or_none(request))
    return plots.svg_response(panel_plots.strengths_figure(board))


def _campaign_or_none(request) -> Campaign | None:
    slug = request.GET.get("campaign")
    if slug and "\x00" in slug:  # no campaign's; PostgreSQL refuses it in a query
        raise Http404
    return get_object_or_404(Campaign, slug=slug) if slug else None

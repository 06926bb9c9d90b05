"""Ranking and re-judge pages, and gold checks of every kind: parse, call one service,
render. A campaign's page shows the worker's task from the queue (``queue.task_next``): the
item they hold, or why there is none. With htmx a submit returns the page's ``item``
fragment holding the next one; without JavaScript it redirects back."""

from __future__ import annotations

import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling import item_selectors, queue_selectors, scale
from labeling.forms import time_spent_ms
from labeling.gate import gate
from labeling.item_forms import RankingForm, RejudgeForm, rank_cards
from labeling.limits import check_rate
from labeling.models import Turn
from labeling.queue_views import task_page
from labeling.services import items as services
from labeling.services import queue

PAGE = "labeling/item.html"


@login_required
@require_GET
def item_next(request, slug):
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    assignment = queue.task_next(campaign=campaign, worker=request.user)
    if (elsewhere := task_page(request, campaign, assignment)) is not None:
        return elsewhere
    context = _context(request, campaign, assignment)
    return render(request, f"{PAGE}#item" if request.htmx else PAGE, context)


@login_required
@require_POST
def ranking_submit(request, slug, pk):
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    item = item_selectors.get_item_for_worker(request.user, campaign, pk)
    form = RankingForm(request.POST, k=item.candidates.count())
    if form.is_valid():
        try:
            check_rate(request, "judgment")
            services.ranking_submit(
                campaign=campaign,
                item=item,
                worker=request.user,
                order=form.order(),
                shown_ids=form.cleaned_data["shown"],
                time_spent_ms=time_spent_ms(form.cleaned_data["shown_at"]),
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, campaign, item, form)


@login_required
@require_POST
def rejudge_submit(request, slug, pk):
    """A pair on the 8-point scale: a re-judge, or a chat or red-team campaign's gold check."""
    campaign = queue_selectors.get_task_campaign(request.user, slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    item = item_selectors.get_item_for_worker(request.user, campaign, pk)
    form = RejudgeForm(request.POST)
    if form.is_valid():
        try:
            check_rate(request, "judgment")
            services.rejudge_submit(
                campaign=campaign,
                item=item,
                worker=request.user,
                choice=form.cleaned_data["choice"],
                shown_ids=form.cleaned_data["shown"],
                time_spent_ms=time_spent_ms(form.cleaned_data["shown_at"]),
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, campaign, item, form)


def _respond(request, campaign, item: Turn, form):
    """htmx: the item fragment with the next task (200; a refused answer shows why, with
    the item again while the worker may still answer it). Plain POST: redirect on
    success; on an error, the page with 400."""
    if not form.errors:
        if not request.htmx:
            messages.success(request, "Saved. Thank you!")
            return redirect("labeling:item_next", slug=campaign.slug)
        if (stop := gate(request, campaign)) is not None:  # this answer paused them
            messages.success(request, "Saved. Thank you!")
            return stop
        assignment = queue.task_next(campaign=campaign, worker=request.user)
        if (elsewhere := task_page(request, campaign, assignment)) is not None:
            messages.success(request, "Saved. Thank you!")
            return elsewhere
        return render(request, f"{PAGE}#item", _context(request, campaign, assignment, saved=True))
    keep = item_selectors.item_is_served(
        campaign, request.user, item
    ) and queue_selectors.may_answer(campaign, request.user, item)
    if keep:
        context = _context(request, campaign, None, shown=item, form=form)
    else:  # answered elsewhere, or given to others: the next task, with the reason
        assignment = queue.task_next(campaign=campaign, worker=request.user)
        context = _context(request, campaign, assignment, errors_of=form)
    if request.htmx:
        return render(request, f"{PAGE}#item", context)
    return render(request, PAGE, context, status=400)


def _context(request, campaign, assignment, *, shown=None, form=None, errors_of=None, saved=False):
    """The item page: ``shown`` (a refused answer's item, shown again with what was posted)
    or the assignment's item, or the state with nothing to judge."""
    user = request.user
    posted = form or errors_of
    errors = [e for errors in posted.errors.values() for e in errors] if posted else []
    item = shown if shown is not None else (assignment.item if assignment else None)
    view = item_selectors.item_view(item, user) if item is not None else None
    question = campaign.question
    return {
        "campaign": campaign,
        "view": view,
        "cards": rank_cards(view.responses, _posted(form)) if view else [],
        "places": range(1, len(view.responses) + 1) if view else [],
        "question": scale.QUESTION_TEXT[question],
        "scale_buttons": scale.buttons(question),
        "comment": form.data.get("comment", "") if form is not None else "",
        "errors": errors,
        "saved": saved,
        "progress": queue_selectors.set_progress(campaign, user),
        "generating": 0 if view else item_selectors.items_generating(campaign, user),
        "target_reached": not view and queue_selectors.target_reached(campaign, user),
        "shown_at": int(time.time() * 1000),
    }


def _posted(form) -> dict:
    """A refused ranking's posted places, to show them again."""
    return form.data if isinstance(form, RankingForm) else {}

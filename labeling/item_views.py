"""Ranking and re-judge pages: parse, call one service, render. A campaign's page shows the
next item served to the worker (``item_selectors.next_item``); with htmx a submit returns the
page's ``item`` fragment holding the next one, without JavaScript it redirects back."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from labeling import item_selectors, scale
from labeling.forms import time_spent_ms
from labeling.item_forms import RankingForm, RejudgeForm
from labeling.models import CandidateResponse, Turn
from labeling.services import items as services

PAGE = "labeling/item.html"


@login_required
@require_GET
def item_next(request, slug):
    campaign = item_selectors.get_item_campaign_for_user(request.user, slug)
    context = _context(request, campaign)
    return render(request, f"{PAGE}#item" if request.htmx else PAGE, context)


@login_required
@require_POST
def ranking_submit(request, slug, pk):
    campaign = item_selectors.get_item_campaign_for_user(request.user, slug)
    item = item_selectors.get_item_for_worker(request.user, campaign, pk)
    form = RankingForm(request.POST, k=item.candidates.count())
    if form.is_valid():
        try:
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
    campaign = item_selectors.get_item_campaign_for_user(request.user, slug)
    item = item_selectors.get_item_for_worker(request.user, campaign, pk)
    form = RejudgeForm(request.POST)
    if form.is_valid():
        try:
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
    """htmx: the item fragment (200; a refused answer shows why, with the item again while
    it is still served). Plain POST: redirect on success; on an error, the page with 400."""
    if not form.errors:
        if request.htmx:
            return render(request, f"{PAGE}#item", _context(request, campaign, saved=True))
        messages.success(request, "Saved. Thank you!")
        return redirect("labeling:item_next", slug=campaign.slug)
    context = _context(request, campaign, refused=item, form=form)
    if request.htmx:
        return render(request, f"{PAGE}#item", context)
    return render(request, PAGE, context, status=400)


@dataclass(frozen=True)
class RankCard:
    letter: str
    position: int
    candidate: CandidateResponse
    place: int  # 1 is the best; what the card's place select holds


def _context(request, campaign, *, refused: Turn | None = None, form=None, saved=False):
    user = request.user
    errors = [e for errors in form.errors.values() for e in errors] if form is not None else []
    keep = refused is not None and item_selectors.item_is_served(campaign, user, refused)
    item = refused if keep else item_selectors.next_item(campaign, user)
    view = item_selectors.item_view(item, user) if item is not None else None
    question = campaign.question
    return {
        "campaign": campaign,
        "view": view,
        "cards": _cards(view, form if keep else None) if view else [],
        "places": range(1, len(view.responses) + 1) if view else [],
        "question": scale.QUESTION_TEXT[question],
        "scale_buttons": scale.buttons(question),
        "comment": form.data.get("comment", "") if keep else "",
        "errors": errors,
        "saved": saved,
        "generating": 0 if view else item_selectors.items_generating(campaign, user),
        "shown_at": int(time.time() * 1000),
    }


def _cards(view, form) -> list[RankCard]:
    """The responses in display order with their places: as posted when the same item is
    shown again after a refused answer, else in the order shown."""
    posted = form.data if isinstance(form, RankingForm) else {}
    cards = []
    for response in view.responses:
        place = posted.get(f"place_{response.position}", "")
        cards.append(
            RankCard(
                letter=response.letter,
                position=response.position,
                candidate=response.candidate,
                place=int(place) if place.isdigit() else response.position + 1,
            )
        )
    return cards

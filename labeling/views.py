"""Views: parse, call one service, render. With htmx they render a named fragment of the
page; without JavaScript the same forms post and redirect."""

from __future__ import annotations

import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import reswap, retarget

from labeling import queue_selectors, scale, selectors, streams
from labeling.forms import (
    ComparisonForm,
    FinishForm,
    MessageForm,
    RedTeamFinishForm,
    time_spent_ms,
)
from labeling.gate import gate, go
from labeling.limits import check_rate
from labeling.queue_views import task_page
from labeling.services import conversations as services
from labeling.services import queue
from labeling.services.generation import candidates_retry as retry_service

PAGE = "labeling/conversation.html"


@login_required
@require_GET
def home(request):
    return render(
        request,
        "labeling/home.html",
        {
            "tasks": queue_selectors.tasks_for_worker(request.user),
            "conversations": selectors.conversations_for_worker(request.user)[:50],
        },
    )


@login_required
@require_POST
def conversation_start(request, slug):
    """The home page's button without JavaScript: the worker's next task from the queue (a
    new conversation, the open one, or a gold check mixed in)."""
    campaign = get_object_or_404(selectors.campaigns_for_worker(request.user), slug=slug)
    if (stop := gate(request, campaign)) is not None:
        return stop
    try:
        assignment = queue.task_next(campaign=campaign, worker=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("labeling:home")
    return task_page(request, campaign, assignment) or go(
        request, "labeling:item_next", slug=campaign.slug
    )


@login_required
@require_GET
def conversation_detail(request, pk):
    conversation = selectors.get_conversation_for_user(request.user, pk)
    return render(request, PAGE, _context(request, conversation))


@login_required
@require_POST
def message_send(request, pk):
    conversation = selectors.get_conversation_for_user(request.user, pk)
    if (stop := gate(request, conversation.campaign)) is not None:
        return stop  # a paused or withdrawn worker starts no new turn (their draft is kept)
    form = MessageForm(request.POST)
    if form.is_valid():
        try:
            check_rate(request, "message")
            services.turn_create(
                conversation=conversation, worker=request.user, text=form.cleaned_data["text"]
            )
            form = MessageForm()
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, conversation, message_form=form)


@login_required
@require_GET
def turn_candidates(request, pk):
    turn = selectors.get_turn_for_user(request.user, pk)
    context = _context(request, turn.conversation)
    if request.htmx and context["current"] and context["current"].turn.pk == turn.pk:
        return render(request, f"{PAGE}#turn", context)
    if request.htmx:  # the polled turn is no longer current: show the whole dialogue
        response = render(request, f"{PAGE}#dialogue", context)
        return reswap(retarget(response, "#dialogue"), "innerHTML")
    return redirect("labeling:conversation", pk=turn.conversation_id)


@login_required
@require_GET
async def turn_stream(request, pk):
    """The turn's candidates as server-sent events, until they are ready (``streams``)."""
    user = await request.auser()
    turn = await sync_to_async(selectors.get_turn_for_user)(user, pk)

    def read_once():
        """One read of the rows, its connection handed back at once: a stream lasts many
        seconds, and holding a pooled connection through them would starve the pages. A
        dropped connection costs one empty read; the next read opens a fresh one."""
        try:
            return selectors.turn_live(turn.pk, stale_after_s=settings.LAB_GENERATION_STALE_SECONDS)
        except (OperationalError, InterfaceError):
            return []
        finally:
            connection.close()

    async def read():
        return await sync_to_async(read_once)()

    events = streams.turn_events(
        turn_id=turn.pk,
        read=read,
        render_turn=sync_to_async(lambda: _turn_html(request, turn)),
        redis_url=settings.LAB_STREAM_REDIS_URL,
    )
    return StreamingHttpResponse(
        events,
        content_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _turn_html(request, turn) -> str:
    """The turn's fragment; when it is no longer the current turn (picked in another tab),
    the whole dialogue's, which the page swaps in place of the turn."""
    context = _context(request, turn.conversation)
    if context["current"] and context["current"].turn.pk == turn.pk:
        return render_to_string(f"{PAGE}#turn", context, request=request)
    url = reverse("labeling:conversation", args=[turn.conversation_id])
    return format_html(
        '<div id="turn-{}" hx-get="{}" hx-trigger="load" hx-select="#dialogue" '
        'hx-target="#dialogue" hx-swap="outerHTML"></div>',
        turn.pk,
        url,
    )


@login_required
@require_POST
def comparison_submit(request, pk):
    turn = selectors.get_turn_for_user(request.user, pk)
    form = ComparisonForm(request.POST)
    if form.is_valid():
        try:
            check_rate(request, "judgment")
            services.comparison_submit(
                turn=turn,
                worker=request.user,
                choice=form.cleaned_data["choice"],
                time_spent_ms=time_spent_ms(form.cleaned_data["shown_at"]),
                comment=form.cleaned_data["comment"],
            )
            form = None
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, turn.conversation, comparison_form=form)


@login_required
@require_POST
def candidates_retry(request, pk):
    turn = selectors.get_turn_for_user(request.user, pk)
    try:
        retry_service(
            turn=turn,
            worker=request.user,
            stale_after_s=settings.LAB_GENERATION_STALE_SECONDS,  # "Try again" on a stall
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _respond(request, turn.conversation)


@login_required
@require_POST
def conversation_finish(request, pk):
    conversation = selectors.get_conversation_for_user(request.user, pk)
    form = _finish_form(conversation.campaign, request.POST)
    if form.is_valid():
        try:
            services.conversation_finish(
                conversation=conversation, worker=request.user, **form.cleaned_data
            )
            messages.success(request, "Thank you! The conversation is saved.")
            conversation.refresh_from_db()
            form = None
        except ValidationError as exc:
            form.add_error(None, exc)
    return _respond(request, conversation, finish_form=form)


def _respond(request, conversation, **forms):
    """htmx: the dialogue fragment (200, so errors swap in with the typed text kept).
    Plain POST: redirect on success; on an error, the full page with status 400."""
    context = _context(request, conversation, **forms)
    if request.htmx:
        return render(request, f"{PAGE}#dialogue", context)
    if any(form is not None and form.errors for form in forms.values()):
        return render(request, PAGE, context, status=400)
    return redirect("labeling:conversation", pk=conversation.pk)


def _finish_form(campaign, data=None):
    form_class = RedTeamFinishForm if campaign.kind == campaign.Kind.RED_TEAM else FinishForm
    return form_class(data)


def _context(request, conversation, *, message_form=None, comparison_form=None, finish_form=None):
    turns = selectors.conversation_turns(conversation)
    last = turns[-1] if turns else None
    current = selectors.turn_view(last) if last is not None and last.chosen_id is None else None
    is_owner = conversation.worker_id == request.user.pk
    is_open = conversation.status == conversation.Status.OPEN and is_owner
    picked = [t for t in turns if t.chosen_id is not None]
    campaign = conversation.campaign
    return {
        "conversation": conversation,
        "campaign": campaign,
        "question": scale.QUESTION_TEXT[campaign.question],
        "scale_buttons": scale.buttons(campaign.question),
        "turns": picked,
        "current": current,
        "can_send": is_open and current is None and len(turns) < conversation.campaign.max_turns,
        "can_finish": is_open and bool(picked) and current is None,  # no pair pending
        "is_open": is_open,
        "turn_number": len(turns) + (0 if current else 1),
        "message_form": message_form or MessageForm(),
        "comparison_form": comparison_form,
        "finish_form": finish_form or _finish_form(campaign),
        "progress": queue_selectors.set_progress(campaign, request.user),  # the task bar
        "shown_at": int(time.time() * 1000),
    }

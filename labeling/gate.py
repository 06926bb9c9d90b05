"""The onboarding gate: every page that serves a campaign's tasks asks it first, and a
worker who has a step left (consent, quiz) or cannot be served (withdrawn, paused, not
qualified) is sent to the page that says so."""

from __future__ import annotations

from django.shortcuts import redirect, resolve_url
from django_htmx.http import HttpResponseClientRedirect

from labeling.crowd_selectors import Stage, worker_stage

STAGE_PAGES = {
    Stage.WITHDRAWN: "labeling:consent",  # says they withdrew, offers to rejoin
    Stage.CONSENT: "labeling:consent",
    Stage.QUIZ: "labeling:quiz",
    Stage.NOT_QUALIFIED: "labeling:quiz",  # says they did not qualify
    Stage.PAUSED: "labeling:paused",
}


def gate(request, campaign):
    """None when the worker may be served tasks; else a redirect to the step they are at."""
    stage = worker_stage(campaign, request.user)
    if stage == Stage.WORK:
        return None
    return go(request, STAGE_PAGES[stage], slug=campaign.slug)


def go(request, to: str, **kwargs):
    """A redirect; for htmx one the browser follows as a whole page (HX-Redirect), so a
    fragment never swaps in a whole page."""
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(resolve_url(to, **kwargs))
    return redirect(to, **kwargs)

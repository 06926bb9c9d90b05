"""The panel's campaign dashboard, its activity plot, and the item viewer (staff only)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from labeling import dashboard_selectors, panel_item_selectors, panel_plots, plots
from labeling.models import Campaign
from labeling.panel_access import researcher_required


@researcher_required
def dashboard(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    figures = dashboard_selectors.campaign_dashboard(campaign)
    return render(request, "panel/dashboard.html", {"area": "campaigns", "d": figures})


@researcher_required
def activity_svg(request, slug: str):
    campaign = get_object_or_404(Campaign, slug=slug)
    activity = dashboard_selectors.activity(campaign)
    narrow = request.GET.get("size") == "narrow"  # the phone's version (<picture>)
    return plots.svg_response(panel_plots.activity_figure(activity, narrow=narrow))


@researcher_required
def item(request, item_id: int):
    detail = panel_item_selectors.item_detail(item_id)
    return render(request, "panel/item.html", {"area": "campaigns", "detail": detail})

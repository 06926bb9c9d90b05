"""The researcher's panel: its front page. Each area has its own views module (quality,
leaderboard, models, runs, exports) and its URL lines in labeling/panel_urls.py."""

from __future__ import annotations

from django.shortcuts import render

from labeling import panel_selectors
from labeling.panel_access import researcher_required


@researcher_required
def index(request):
    return render(request, "panel/index.html", {"campaigns": panel_selectors.campaign_rows()})

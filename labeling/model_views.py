"""The panel's preference-model history: the table, the history plot, reliability diagrams."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from labeling import model_selectors, panel_plots, plots
from labeling.models import ModelVersion
from labeling.panel_access import researcher_required


@researcher_required
def models(request):
    rows = model_selectors.preference_models()
    return render(request, "panel/models.html", {"area": "models", "rows": rows})


@researcher_required
def history_svg(request):
    narrow = request.GET.get("size") == "narrow"  # the phone's version (<picture>)
    rows = model_selectors.preference_models()
    return plots.svg_response(panel_plots.history_figure(rows, narrow=narrow))


@researcher_required
def reliability_svg(request, version_id: int):
    version = get_object_or_404(ModelVersion, pk=version_id, kind=ModelVersion.Kind.PREFERENCE)
    bins = model_selectors.reliability_bins(version)
    return plots.svg_response(panel_plots.reliability_figure(bins, title=version.name))

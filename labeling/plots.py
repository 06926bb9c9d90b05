"""Plots for the researcher's panel: matplotlib figures rendered to SVG on the server and
served as images from their own URLs (never inlined, so a Content-Security-Policy without
'unsafe-inline' holds). The object-oriented API only: pyplot keeps global state and is not
safe across the web server's threads."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a server; set before any figure is made

from django.http import HttpResponse  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

INK = "#1d232a"  # the panel's text colour (static/labeling/app.css --ink)
ACCENT = "#2456a6"  # its accent (--accent)
MUTED = "#5b6670"  # its muted text (--muted)


def figure(width: float = 7.0, height: float = 3.0) -> Figure:
    """A blank figure in inches; 7 × 3 fits the panel's column at desktop size and scales
    down on a phone (the <img> is width: 100%)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.patch.set_alpha(0)
    return fig


def svg_response(fig: Figure) -> HttpResponse:
    """The figure as an SVG response (text kept as paths: no font needed by the browser)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})  # no date: the same bytes twice
    response = HttpResponse(buffer.getvalue(), content_type="image/svg+xml")
    response["Cache-Control"] = "no-cache"  # figures follow the data: always revalidate
    return response


def empty(fig: Figure, message: str) -> Figure:
    """A figure that says there is nothing to plot yet (an image must still be an image)."""
    fig.text(0.5, 0.5, message, ha="center", va="center", color=MUTED)
    return fig

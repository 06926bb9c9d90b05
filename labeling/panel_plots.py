"""The figures of the panel's dashboard, leaderboard and preference-model pages, drawn from the
selectors' dataclasses (the same values the pages print). Served as SVG by the views
through ``labeling.plots``."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from labeling.dashboard_selectors import Activity
from labeling.model_selectors import PreferenceModelRow
from labeling.plots import ACCENT, INK, MUTED, empty, figure
from labeling.quality_panel_selectors import Leaderboard, LeaderboardRow

HHH_COLOUR = "#b4531c"  # the HHH evaluation, apart from the held-out accuracy's accent
# A phone's version of a wide figure (the page picks it with <picture> under 760 px): drawn
# 4 inches wide, its text stays legible at 390 px instead of shrinking with the image.
NARROW_WIDTH = 4.0
EMPTY_HEIGHT = 0.8  # a figure that only says there is nothing yet takes one line's room


def activity_figure(activity: Activity, *, narrow: bool = False) -> Figure:
    """Answers per hour over the last 48 hours (top) and per day over 30 days (bottom)."""
    width = NARROW_WIDTH if narrow else 7.0
    if not any(activity.daily) and not any(activity.hourly):
        return empty(figure(width, EMPTY_HEIGHT), "No judgments yet")
    fig = figure(width, 4.4 if narrow else 4.2)
    hours, days = fig.subplots(2, 1)
    n = len(activity.hourly)
    hours.bar(range(n), activity.hourly, width=0.85, color=ACCENT)
    ticks = list(range(n - 1, -1, -12 if narrow else -6))
    hours.set_xticks(ticks, ["now" if t == n - 1 else f"−{n - 1 - t}h" for t in ticks])
    hours.set_title("Judgments per hour, last 48 hours", loc="left", fontsize=10, color=INK)
    days.bar(range(len(activity.daily)), activity.daily, width=0.85, color=ACCENT)
    every = list(range(len(activity.days) - 1, -1, -14 if narrow else -7))
    days.set_xticks(every, [activity.days[i].strftime("%d %b") for i in every])
    days.set_title("Judgments per day, last 30 days", loc="left", fontsize=10, color=INK)
    for ax in (hours, days):
        _style(ax)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    return fig


def history_figure(rows: list[PreferenceModelRow], *, narrow: bool = False) -> Figure:
    """Held-out accuracy (with its Wilson interval) and HHH accuracy of each PM version,
    in order of creation; the length baseline for scale."""
    width = NARROW_WIDTH if narrow else 7.0
    if not any(r.accuracy is not None or r.hhh is not None for r in rows):
        return empty(figure(width, EMPTY_HEIGHT), "No preference models with figures yet")
    fig = figure(width, 3.4 if narrow else 3.2)
    ax = fig.subplots()
    x = range(len(rows))
    held = [(i, r) for i, r in zip(x, rows, strict=True) if r.accuracy is not None]
    if held:
        ax.errorbar(
            [i for i, _ in held],
            [r.accuracy for _, r in held],
            yerr=_interval_errors([r for _, r in held]),
            color=ACCENT,
            marker="o",
            capsize=3,
            label="held-out accuracy",
        )
    baseline = [
        (i, r.length_baseline)
        for i, r in zip(x, rows, strict=True)
        if r.length_baseline is not None
    ]
    if baseline:
        ax.plot(*zip(*baseline, strict=True), color=MUTED, linestyle=":", label="length baseline")
    hhh = [(i, r.hhh.accuracy) for i, r in zip(x, rows, strict=True) if r.hhh is not None]
    if hhh:
        ax.plot(*zip(*hhh, strict=True), color=HHH_COLOUR, marker="s", label="HHH evaluation")
    names = [r.version.name + (" ★" if r.version.is_active else "") for r in rows]
    slanted = len(rows) > (2 if narrow else 4)
    ax.set_xticks(
        list(x), names, rotation=30 if slanted else 0, ha="right" if slanted else "center"
    )
    plotted = [r.accuracy for r in rows if r.accuracy is not None]
    plotted += [r.interval[0] for r in rows if r.interval] + [a for _, a in hhh + baseline]
    ax.set_ylim(min(0.4, math.floor(min(plotted) * 10) / 10), 1)  # chance (50%) in view
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.axhline(0.5, color=MUTED, linewidth=0.6)  # chance on pairs
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    _style(ax)
    return fig


def reliability_figure(bins: list[dict], *, title: str) -> Figure:
    """Observed frequency against mean predicted P(A > B) per bin, with each bin's count
    (``training.pm_metrics.reliability_bins``)."""
    fig = figure(3.6, 3.4)
    if not bins:
        return empty(fig, "No reliability bins in its metrics")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color=MUTED, linestyle="--", linewidth=0.8)
    ax.plot([b["p"] for b in bins], [b["y"] for b in bins], color=ACCENT, marker="o")
    for b in bins:
        ax.annotate(
            str(b["n"]), (b["p"], b["y"]), textcoords="offset points", xytext=(4, -10), fontsize=7
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted P(A > B)", ylabel="observed")
    ax.set_title(title, loc="left", fontsize=10, color=INK)
    _style(ax)
    return fig


def _interval_errors(rows: list[PreferenceModelRow]) -> list[list[float]]:
    """matplotlib's yerr: distances below and above each accuracy (0 without an interval)."""
    below = [r.accuracy - r.interval[0] if r.interval else 0.0 for r in rows]
    above = [r.interval[1] - r.accuracy if r.interval else 0.0 for r in rows]
    return [below, above]


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.xaxis.label.set_color(MUTED)
    ax.yaxis.label.set_color(MUTED)


def strengths_figure(board: Leaderboard) -> Figure:
    """Each model's strength (Elo-like points) with its 95% interval, plain and
    length-controlled, strongest on top."""
    rows = board.rows
    fig = figure(5.5, max(2.0, 0.5 * len(rows) + 1.2))  # narrow: legible on a phone
    if not rows:
        return empty(fig, "No battles yet: judgments of two different models")
    ax = fig.add_subplot()
    ys = range(len(rows))[::-1]
    series = [
        ("plain", ACCENT, "o", 0.12, lambda r: (r.points, r.points_interval)),
        ("length-controlled", MUTED, "s", -0.12, _controlled),
    ]
    for label, colour, marker, shift, read in series:
        values = [read(r) for r in rows]
        x = [v for v, _ in values]
        err = [
            [v - (i or (v, v))[0] for v, i in values],
            [(i or (v, v))[1] - v for v, i in values],
        ]
        ax.errorbar(
            x, [y + shift for y in ys], xerr=err, fmt=marker, color=colour, capsize=3, label=label
        )
    ax.set_yticks(list(ys), [r.model.name for r in rows], color=INK)
    ax.axvline(1000, color=MUTED, linewidth=0.8, linestyle=":")
    ax.set_xlabel("strength (Elo-like points; mean model 1000)", color=INK)
    # Above the axes, never over a model's interval.
    ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize="small", frameon=False
    )
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _controlled(row: LeaderboardRow):
    return row.controlled_points, row.controlled_points_interval

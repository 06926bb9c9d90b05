"""Figures as the panel's Quality and Leaderboard pages print them: shares as percentages,
intervals in brackets, a dash for what cannot be measured yet."""

from __future__ import annotations

from django import template

register = template.Library()
NONE = "–"


@register.filter
def pct(value: float | None, digits: int = 0) -> str:
    """0.734 -> "73%"."""
    return NONE if value is None else f"{value:.{int(digits)}%}"


@register.filter
def pct_interval(interval: tuple[float, float] | None) -> str:
    """(0.61, 0.78) -> "[61%, 78%]"."""
    return NONE if interval is None else f"[{interval[0]:.0%}, {interval[1]:.0%}]"


@register.filter
def decimal(value: float | None, digits: int = 2) -> str:
    """0.4567 -> "0.46"."""
    return NONE if value is None else f"{value:.{int(digits)}f}"


@register.filter
def decimal_interval(interval: tuple[float, float] | None, digits: int = 2) -> str:
    """(0.41, 0.62) -> "[0.41, 0.62]"."""
    if interval is None:
        return NONE
    return f"[{interval[0]:.{int(digits)}f}, {interval[1]:.{int(digits)}f}]"

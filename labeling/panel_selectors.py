"""Reads for the researcher's panel front page."""

from __future__ import annotations

from dataclasses import dataclass

from labeling import crowd_selectors
from labeling.models import Campaign, Judgment


@dataclass(frozen=True)
class CampaignRow:
    campaign: Campaign
    judgments: int  # counted, current judgments (as the dashboard counts them)


def campaign_rows() -> list[CampaignRow]:
    campaigns = list(Campaign.objects.order_by("-is_active", "-created_at"))
    return [
        CampaignRow(
            campaign=c,
            judgments=crowd_selectors.counted_judgments(
                Judgment.objects.current().filter(campaign=c)
            ).count(),
        )
        for c in campaigns
    ]

"""The researcher's panel: staff only, and its front page lists the campaigns."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get(reverse("panel:index"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_worker_who_is_not_staff_is_refused(client, owner):
    client.force_login(owner)
    assert client.get(reverse("panel:index")).status_code == 403


def test_a_researcher_sees_every_campaign_with_its_counted_judgments(client, researcher, campaign):
    client.force_login(researcher)
    response = client.get(reverse("panel:index"))
    assert response.status_code == 200
    assert campaign.name in response.content.decode()
    assert response.context["campaigns"][0].judgments == 0


def test_a_plot_is_an_svg_image_with_the_same_bytes_twice():
    from labeling import plots

    first = plots.svg_response(plots.empty(plots.figure(), "No judgments yet"))
    second = plots.svg_response(plots.empty(plots.figure(), "No judgments yet"))
    assert first["Content-Type"] == "image/svg+xml"
    assert first.content.startswith(b"<?xml") and b"<svg" in first.content
    assert first.content == second.content

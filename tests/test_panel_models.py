"""The panel's preference-model history: each version's figures as its metrics and its HHH
evaluation say, why it was promoted or not, the plots as SVG images; staff only."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse
from scipy.stats import binomtest

from labeling import model_selectors, panel_plots
from labeling.models import ModelVersion, Run
from labeling.services.evaluation import evaluation_succeed
from labeling.services.runs import run_fail
from training.pm_metrics import reliability_bins

pytestmark = pytest.mark.django_db
PM = ModelVersion.Kind.PREFERENCE


def trained(name: str, accuracy: float, *, incumbent=None, active=False, **metrics) -> ModelVersion:
    """A PM version as ``training_run_succeed`` registers one (metrics from ``fit``)."""
    run = Run.objects.create(kind=Run.Kind.PREFERENCE, status=Run.Status.SUCCEEDED)
    metrics = {
        "eval_accuracy": accuracy,
        "eval_pairs": 100,
        "eval_ece": 0.05,
        "length_baseline_accuracy": 0.55,
        **metrics,
    }
    if incumbent is not None:
        metrics["incumbent"] = {"name": incumbent[0], "eval_accuracy": incumbent[1]}
    if active:
        ModelVersion.objects.filter(kind=PM, is_active=True).update(is_active=False)
    return ModelVersion.objects.create(
        name=name, kind=PM, spec=f"/pm/{name}", metrics=metrics, training_run=run, is_active=active
    )


def evaluated(version: ModelVersion, accuracy: float, *, status=Run.Status.SUCCEEDED) -> Run:
    """An HHH evaluation run ended the way the worker ends one (services)."""
    run = Run.objects.create(kind=Run.Kind.EVALUATION, model_version=version)
    if status == Run.Status.SUCCEEDED:
        scoring = {"reward": {"overall": accuracy, "by_category": {}}}
        return evaluation_succeed(run_id=run.pk, metrics={"examples": 58, "scoring": scoring})
    run_fail(run_id=run.pk, error="the worker died")
    return run


@pytest.fixture
def history():
    """pm-1 (first, with reliability bins), pm-2 beat it and is active (HHH 0.66; a later
    evaluation failed), pm-3 lost to pm-2."""
    first = trained("pm-1", 0.70, eval_reliability=reliability_bins([1.0, -0.5, 2.0, 0.3]))
    second = trained("pm-2", 0.72, incumbent=("pm-1", 0.68), active=True)
    trained("pm-3", 0.69, incumbent=("pm-2", 0.72))
    evaluated(second, 0.66)
    evaluated(second, 0.0, status=Run.Status.FAILED)
    ModelVersion.objects.create(name="helper", kind=ModelVersion.Kind.ASSISTANT, spec="x")
    return first, second


def test_each_version_shows_its_figures_in_order_of_creation(history):
    rows = model_selectors.preference_models()
    assert [r.version.name for r in rows] == ["pm-1", "pm-2", "pm-3"]
    second = rows[1]
    assert (second.accuracy, second.pairs, second.ece, second.length_baseline) == (
        0.72,
        100,
        0.05,
        0.55,
    )
    wilson = binomtest(72, 100).proportion_ci(method="wilson")
    assert second.interval == pytest.approx((wilson.low, wilson.high))
    assert second.hhh.accuracy == 0.66 and second.hhh.examples == 58
    assert rows[0].hhh is None and rows[2].hhh is None


def test_the_promotion_says_what_the_incumbent_scored_on_the_same_pairs(history):
    first, second, third = model_selectors.preference_models()
    assert first.promoted is None and "no active one" in first.reason
    assert second.promoted is True
    assert second.reason == "Promoted: 72.0% ≥ pm-1's 68.0% on the same held-out pairs."
    assert third.promoted is False and third.reason.startswith("Not promoted: 69.0% < pm-2's")


def test_the_page_prints_the_selectors_figures(client, researcher, history):
    client.force_login(researcher)
    response = client.get(reverse("panel:models"))
    html = response.content.decode()
    rows = response.context["rows"]
    for row in rows:
        cells = html.split(f'data-version="{row.version.pk}"')[1].split("</tr>")[0]
        shown = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', cells))
        assert shown["accuracy"] == f"{row.accuracy:.3f}"
        assert shown["interval"] == f"{row.interval[0]:.3f}–{row.interval[1]:.3f}"
        assert shown["pairs"] == str(row.pairs)
        assert shown["ece"] == f"{row.ece:.3f}"
        assert unescape(shown["reason"]) == row.reason
        assert shown["hhh"] == (f"{row.hhh.accuracy:.3f}" if row.hhh else "–")
    assert html.count('class="tag active"') == 1
    assert reverse("panel:models_history") in html
    assert reverse("panel:model_reliability", args=[rows[0].version.pk]) in html


def test_the_history_plot_draws_held_out_and_hhh_accuracy_per_version(history):
    rows = model_selectors.preference_models()
    ax = panel_plots.history_figure(rows).axes[0]
    held_out = ax.containers[0].lines[0]
    assert list(held_out.get_ydata()) == [0.70, 0.72, 0.69]
    [hhh] = [line for line in ax.get_lines() if line.get_label() == "HHH evaluation"]
    assert list(hhh.get_xdata()) == [1] and list(hhh.get_ydata()) == [0.66]


@pytest.mark.parametrize("with_data", [True, False])
def test_every_plot_is_an_svg_image_with_and_without_data(client, researcher, with_data):
    version = trained("pm-1", 0.7, eval_reliability=reliability_bins([0.4]) if with_data else None)
    client.force_login(researcher)
    if not with_data:
        ModelVersion.objects.filter(pk=version.pk).update(metrics={})
    for url in [
        reverse("panel:models_history"),
        reverse("panel:models_history") + "?size=narrow",
        reverse("panel:model_reliability", args=[version.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"


def test_the_history_plot_answers_with_no_models_at_all(client, researcher):
    client.force_login(researcher)
    response = client.get(reverse("panel:models_history"))
    assert response["Content-Type"] == "image/svg+xml"
    assert "No preference models yet" in client.get(reverse("panel:models")).content.decode()


def test_a_reliability_diagram_plots_the_bins_kept_in_the_metrics(history):
    first, _ = history
    bins = model_selectors.reliability_bins(first)
    assert bins and all(b["n"] for b in bins)
    ax = panel_plots.reliability_figure(bins, title="pm-1").axes[0]
    assert list(ax.get_lines()[1].get_ydata()) == [b["y"] for b in bins]
    assert panel_plots.reliability_figure([], title="x").axes == []  # the empty figure


def test_only_preference_models_have_a_reliability_diagram(client, researcher, history):
    client.force_login(researcher)
    assistant = ModelVersion.objects.get(name="helper")
    response = client.get(reverse("panel:model_reliability", args=[assistant.pk]))
    assert response.status_code == 404


def test_the_panel_nav_links_the_preference_models(client, researcher):
    client.force_login(researcher)
    assert reverse("panel:models") in client.get(reverse("panel:index")).content.decode()


URLS = [("panel:models", []), ("panel:models_history", []), ("panel:model_reliability", [1])]


@pytest.mark.parametrize(("name", "args"), URLS)
def test_an_anonymous_visitor_is_sent_to_log_in(client, name, args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 302 and reverse("login") in response["Location"]


@pytest.mark.parametrize(("name", "args"), URLS)
def test_a_worker_who_is_not_staff_is_refused(client, owner, name, args):
    client.force_login(owner)
    assert client.get(reverse(name, args=args)).status_code == 403

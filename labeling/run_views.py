"""The panel's Runs page: every run with live progress (htmx polls while one is live), the
forms that start runs, and export downloads. Views parse, call one service, redirect."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from labeling import run_selectors
from labeling.exports import FORMATS
from labeling.panel_access import researcher_required
from labeling.run_forms import DistillationForm, EvaluationForm, ExportForm
from labeling.services import distillation, evaluation, exports, training

PAGE = "panel/runs.html"


@researcher_required
def runs(request, forms: dict | None = None):
    recent = list(run_selectors.recent_runs())
    context = {
        "area": "runs",
        "runs": recent,
        "live": run_selectors.any_live(recent),
        "export_form": ExportForm(),
        "evaluation_form": EvaluationForm(),
        "distillation_form": DistillationForm(),
        "formats": FORMATS.values(),
        **(forms or {}),
    }
    if request.htmx and request.GET.get("poll"):
        return render(request, f"{PAGE}#runs", context)
    return render(request, PAGE, context, status=400 if forms else 200)


def _started(request, run, what: str):
    messages.success(request, f"{what} queued as run {run.pk}.")
    return redirect("panel:runs")


@researcher_required
@require_POST
def export_start(request):
    form = ExportForm(request.POST)
    if not form.is_valid():
        return runs(request, {"export_form": form})
    data = form.cleaned_data
    try:
        run = exports.export_request(
            fmt=data["format"],
            campaign_slug=data["campaign"].slug if data["campaign"] else None,
            include_weakest=data["include_weakest"],
            include_checks=data["include_checks"],
            requested_by=request.user,
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return runs(request, {"export_form": form})
    return _started(request, run, "The export")


@researcher_required
@require_POST
def training_start(request):
    run = training.training_run_request(
        config=training.default_training_config(), requested_by=request.user
    )
    return _started(request, run, "Preference-model training")


@researcher_required
@require_POST
def evaluation_start(request):
    form = EvaluationForm(request.POST)
    if not form.is_valid():
        return runs(request, {"evaluation_form": form})
    try:
        run = evaluation.evaluation_request(
            model_version=form.cleaned_data["model_version"],
            limit=form.cleaned_data["limit"],
            requested_by=request.user,
        )
    except evaluation.EvaluationUnavailable as exc:
        form.add_error(None, str(exc))
        return runs(request, {"evaluation_form": form})
    return _started(request, run, "The HHH evaluation")


@researcher_required
@require_POST
def distillation_start(request):
    form = DistillationForm(request.POST)
    if not form.is_valid():
        return runs(request, {"distillation_form": form})
    try:
        run = distillation.distillation_request(config=form.cleaned_data, requested_by=request.user)
    except ValidationError as exc:
        form.add_error(None, exc)
        return runs(request, {"distillation_form": form})
    return _started(request, run, "The distillation")


@researcher_required
def export_download(request, run_id: int):
    path = run_selectors.export_download(run_id)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)

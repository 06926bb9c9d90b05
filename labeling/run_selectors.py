"""Reads for the panel's Runs page: recent runs of every kind, and the file an export made."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404

from labeling.models import Run


def recent_runs(*, limit: int = 50) -> QuerySet[Run]:
    return Run.objects.select_related("model_version", "requested_by")[:limit]


def any_live(runs) -> bool:
    """Whether the page should keep polling: something is queued or running."""
    return any(not run.is_done for run in runs)


def export_download(run_id: int) -> Path:
    """The file a succeeded export run wrote, only from the export folder (a run's output
    is data, never trusted as a path to serve)."""
    run = Run.objects.filter(pk=run_id, kind=Run.Kind.EXPORT, status=Run.Status.SUCCEEDED).first()
    if run is None or not run.output:
        raise Http404("No finished export with that number.")
    root = Path(settings.LAB_EXPORT_DIR).resolve()
    path = Path(run.output).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise Http404("That export's file is no longer there.")
    return path

"""Export runs: a researcher asks for a file of the collected data; a Celery task writes it
(labeling/exports.py, streaming) under LAB_EXPORT_DIR and the panel offers the download."""

from __future__ import annotations

import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError

from labeling import exports
from labeling.models import Campaign, Run
from labeling.services import runs


def export_request(
    *,
    fmt: str,
    campaign_slug: str | None = None,
    include_weakest: bool = False,
    include_checks: bool = False,
    requested_by=None,
) -> Run:
    if fmt not in exports.FORMATS:
        raise ValidationError(f"Unknown format {fmt!r}; known: {', '.join(exports.FORMATS)}.")
    if include_weakest and not exports.FORMATS[fmt].weakest:
        include_weakest = False  # the format has no weakest level to leave out
    if campaign_slug and not Campaign.objects.filter(slug=campaign_slug).exists():
        raise ValidationError(f"There is no campaign {campaign_slug!r}.")
    config = {
        "format": fmt,
        "campaign": campaign_slug or None,
        "include_weakest": include_weakest,
        "include_checks": include_checks,
    }
    return runs.run_request(kind=Run.Kind.EXPORT, config=config, requested_by=requested_by)


def export_run(*, run: Run, progress) -> Run:
    """Write the run's export, then mark it done with the file to download. ``progress``
    takes (fraction, info); rows are counted while the total is unknown."""
    config = run.config
    fmt = config["format"]
    folder = exports.FORMATS[fmt].folder  # written as a folder, offered as a .zip of it
    root = Path(settings.LAB_EXPORT_DIR)
    root.mkdir(parents=True, exist_ok=True)
    name = f"export-{run.pk}-{fmt}"
    path = root / (name if folder else f"{name}.jsonl")

    def rows_done(done: int, total: int | None) -> None:
        fraction = min(done / total, 0.99) if total else 0.0
        progress(fraction, {"rows": done, "total": total})

    result = exports.export_write(
        fmt=fmt,
        path=path,
        campaign_slug=config.get("campaign"),
        include_weakest=config.get("include_weakest", False),
        include_checks=config.get("include_checks", False),
        progress=rows_done,
    )
    download = path
    if folder:  # zipped under a temporary name, renamed once whole (as the export itself)
        download = path.with_name(f"{path.name}.zip")
        Path(shutil.make_archive(f"{path}.partial", "zip", root_dir=path)).replace(download)
    metrics = {"rows": result.rows, "bytes": download.stat().st_size, "format": fmt}
    return runs.run_succeed(run_id=run.pk, metrics=metrics, output=str(download))

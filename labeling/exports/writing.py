"""Writing one export to a path: streamed, atomic, with progress."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labeling.exports.registry import FORMATS, Format, options
from labeling.models import Campaign
from training.jsonl import write_jsonl

PROGRESS_EVERY = 500  # rows between two calls of ``progress``
Progress = Callable[[int, int | None], None]  # (rows written so far, rows in all)


class ExportError(ValueError):
    """A bad request (format, options, path): nothing was written."""


@dataclass(frozen=True)
class ExportResult:
    path: Path  # the file or folder written
    rows: int  # rows written (pairs for trl and datasets)
    bytes: int  # its size on disk: the file, or every file of the folder together


def export_write(
    *,
    fmt: str,
    path,
    campaign_slug: str | None = None,
    include_weakest: bool = False,
    include_checks: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    """Write the ``fmt`` export to ``path`` (a folder for ``datasets``, else a JSONL file),
    reading the database a chunk at a time. The rows go to a temporary name beside
    ``path``, renamed into place once complete: on any error (progress raising included)
    nothing is left. ``progress(done, total)`` is called with 0 first, every
    ``PROGRESS_EVERY`` rows, and with the final count once in place; ``total`` is
    counted in the database before writing (rows arriving meanwhile may pass it)."""
    spec = export_format(fmt)
    options = _checked(
        spec,
        campaign_slug=campaign_slug,
        include_weakest=include_weakest,
        include_checks=include_checks,
    )
    path = Path(path)
    if not path.parent.is_dir():
        raise ExportError(f"directory {path.parent} does not exist")
    if spec.folder:
        check_folder_target(path)
    elif path.is_dir():
        raise ExportError(f"{path} is a directory; --format {fmt} writes a file")
    counter = _Counter(progress, spec.total(**options))
    rows = counter.count(spec.rows(**options))
    if spec.folder:
        from labeling.exports.hf_folder import write_dataset_folder

        write_dataset_folder(path, rows, include_checks=include_checks)
    else:
        write_jsonl(path, rows)
    counter.finish()
    return ExportResult(path, counter.done, _size(path))


def export_stream(
    fmt: str,
    *,
    campaign_slug: str | None = None,
    include_weakest: bool = False,
    include_checks: bool = False,
) -> Iterator[dict]:
    """The rows of a JSON-lines format, after the same checks as ``export_write`` (for
    writing to stdout)."""
    spec = export_format(fmt)
    if spec.folder:
        raise ExportError(f"--format {fmt} writes a folder: give it a folder path, not '-'")
    options = _checked(
        spec,
        campaign_slug=campaign_slug,
        include_weakest=include_weakest,
        include_checks=include_checks,
    )
    return spec.rows(**options)


def export_format(fmt: str) -> Format:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise ExportError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})") from None


def _checked(spec: Format, *, campaign_slug, include_weakest, include_checks) -> dict:
    if include_weakest and not spec.weakest:
        raise ExportError(f"--include-weakest means nothing for --format {spec.name}")
    if campaign_slug and not Campaign.objects.filter(slug=campaign_slug).exists():
        raise ExportError(f"no campaign {campaign_slug!r}")
    return options(include_weakest, campaign_slug, include_checks)


class _Counter:
    def __init__(self, progress: Progress | None, total: int | None):
        self.progress, self.total, self.done = progress, total, 0
        self._report()

    def count(self, rows: Iterator[dict]) -> Iterator[dict]:
        for row in rows:
            yield row
            self.done += 1
            if self.done % PROGRESS_EVERY == 0:
                self._report()

    def finish(self) -> None:
        if self.done % PROGRESS_EVERY:  # else it was just reported
            self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def check_folder_target(path: Path) -> None:
    """A folder export may replace an empty folder or an earlier datasets export, nothing
    else (``-o`` naming a home directory must not wipe it)."""
    if not path.exists():
        return
    earlier = (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    if not path.is_dir() or not (earlier or not any(path.iterdir())):
        raise ExportError(f"{path} exists and is not an empty folder or an earlier export")


def replace_folder(built: Path, path: Path) -> None:
    """Move the folder ``built`` (beside ``path``) to ``path``, replacing what
    ``check_folder_target`` allows; if the move fails, the earlier folder is put back."""
    check_folder_target(path)
    if not path.exists():
        os.replace(built, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    try:
        os.replace(path, old / "export")
        try:
            os.replace(built, path)
        except BaseException:
            os.replace(old / "export", path)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)

"""``--format datasets``: a Hugging Face ``datasets`` folder, built in bounded memory.

The folder (``PATH``) holds:

- ``data-*.arrow``, ``dataset_info.json``, ``state.json``: ``datasets.load_from_disk(PATH)``;
- ``parquet/train-00000-of-0000N.parquet``: the same rows as parquet, for any reader
  (pandas, DuckDB, ``datasets.load_dataset("parquet", data_files=...)``).

Columns: ``prompt``, ``chosen`` and ``rejected`` (TRL's conversational preference columns,
lists of ``{"role", "content"}``), then ``pairs.COLUMNS`` (the provenance, flattened; the
judgment's recorded provenance as one JSON string) and, with ``include_checks``,
``pairs.CHECK_COLUMNS``. One row per pair, as ``--format trl``.

Rows come from a generator; ``Dataset.from_generator`` writes them ``WRITER_BATCH`` at a
time into an arrow cache inside the temporary folder, and ``save_to_disk`` and
``to_parquet`` read that memory-mapped. ``datasets`` (with pyarrow and pandas) is imported
only here, when such an export is written.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from labeling.exports.pairs import CHECK_COLUMNS, COLUMNS, TRL_COLUMNS
from labeling.exports.writing import check_folder_target, replace_folder

WRITER_BATCH = 1000  # rows held in memory before the arrow writer flushes them
PARQUET_SHARD_ROWS = 100_000  # rows per parquet file


def features(*, include_checks: bool):
    """The columns and their types, so that an empty export has them too."""
    from datasets import Features, List, Value

    message = {"role": Value("string"), "content": Value("string")}
    columns = {name: List(message) for name in TRL_COLUMNS}
    columns |= {name: Value(kind) for name, kind in COLUMNS.items()}
    if include_checks:
        columns |= {name: Value(kind) for name, kind in CHECK_COLUMNS.items()}
    return Features(columns)


def write_dataset_folder(path: Path, rows: Iterator[dict], *, include_checks: bool) -> None:
    """Build the folder beside ``path`` and move it there once complete; on any error
    nothing is left (the error raised is the one that stopped the rows, not the wrapper
    ``datasets`` puts around it)."""
    check_folder_target(path)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        built = work / "export"
        with _quiet():
            dataset = _dataset(rows, features(include_checks=include_checks), work / "cache")
            # An empty dataset is saved with no shard at all (which load_from_disk refuses)
            # unless asked for one.
            dataset.save_to_disk(str(built), num_shards=None if len(dataset) else 1)
            shards = max(1, math.ceil(len(dataset) / PARQUET_SHARD_ROWS))
            (built / "parquet").mkdir()
            for index in range(shards):
                part = dataset.shard(num_shards=shards, index=index, contiguous=True)
                part.to_parquet(
                    str(built / "parquet" / f"train-{index:05d}-of-{shards:05d}.parquet")
                )
            del dataset, part  # their memory-mapped files are closed before the move
        replace_folder(built, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dataset(rows: Iterator[dict], columns, cache: Path):
    import datasets

    first = next(rows, None)
    if first is None:  # from_generator refuses to build an empty dataset
        return datasets.Dataset.from_dict({name: [] for name in columns}, features=columns)
    try:
        return datasets.Dataset.from_generator(
            lambda: itertools.chain([first], rows),
            features=columns,
            cache_dir=str(cache),
            fingerprint=uuid.uuid4().hex,  # nothing to reuse: never hash the rows
            writer_batch_size=WRITER_BATCH,
        )
    except datasets.exceptions.DatasetGenerationError as exc:
        raise (exc.__cause__ or exc) from None


@contextlib.contextmanager
def _quiet():
    """No progress bars from ``datasets`` (a worker's log is no terminal)."""
    from datasets.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    shown = not are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if shown:
            enable_progress_bars()

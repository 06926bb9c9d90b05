"""Exports: every format the lab writes, streamed to a path (``export_write``).

Formats (``FORMATS``, in ``registry``; ``manage.py export_preferences --format`` reads it):

- ``hh-rlhf``: ``{"chosen", "rejected"}`` transcripts per judgment of two;
- ``trl``: TRL's conversational preference rows, one per preferred/dispreferred pair
  (rankings of K give their pairs; ``pairs``);
- ``rankings``: ``{"context", "responses" preferred first[, "scores"]}`` per judgment of
  three or more;
- ``red-team``: one row per finished red-team conversation;
- ``datasets``: a Hugging Face ``datasets`` folder of the trl pairs with provenance columns,
  and parquet shards of it (``hf_folder``);
- ``provenance``: one row per judgment with everything known about it, for audits
  (``provenance``; how it differs from ``lab`` is said there);
- ``lab``: the lab's own training input, read back by ``training.lab_format``.

Chosen is always the preferred response under the question asked (the less harmful one
for "more_harmful"). By default only the judgments that count are exported, without the
weakest level ("about the same"); ``include_checks`` adds gold, paused and quiz rows
marked ``"excluded"`` (``export_rows``). Workers appear only as pseudonyms.

Every format reads the database a chunk at a time and writes as it reads; a file or
folder appears at its path only once complete. Imported by the management command and
by background tasks; ``datasets`` (pyarrow, pandas) is imported only to write that format.
"""

from labeling.exports.registry import FORMATS, Format
from labeling.exports.writing import (
    ExportError,
    ExportResult,
    export_format,
    export_stream,
    export_write,
)

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportResult",
    "Format",
    "export_format",
    "export_stream",
    "export_write",
]

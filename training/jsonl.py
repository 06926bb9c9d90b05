"""Writing JSON lines atomically: rows go to a temporary sibling, renamed into place once
all are written, so a reader never sees half a file and a failure leaves the old one. No
torch here: the web process writes exports with it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_jsonl(path, rows: Iterable[dict]) -> None:
    """Stream ``rows`` (one JSON object a line, UTF-8 kept as is) to ``path``."""
    target = Path(path)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise

"""Where tests find the public data kept beside the repository (``/shared`` is not in git).

``$LAB_HH_RLHF_DIR``, by default ``shared/data/hh-rlhf`` in the repository's parent folder.
A missing file FAILS the test that needs it: a skip would hide that nothing was checked.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HH_RLHF_DIR = Path(os.environ.get("LAB_HH_RLHF_DIR") or REPO.parent / "shared" / "data" / "hh-rlhf")
HARMLESS = "harmless-base-1812.jsonl"  # 1,812 public rows, 6 of them irregular (SOURCE.md)


def harmless_base() -> Path:
    path = HH_RLHF_DIR / HARMLESS
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: set LAB_HH_RLHF_DIR to the folder holding {HARMLESS} "
            "(default: shared/data/hh-rlhf beside the repository)",
            pytrace=False,
        )
    return path

"""Reading the panel's pages in tests: the figures they print in ``data-figure`` elements."""

from __future__ import annotations

import re


def figures(html: str) -> dict[str, str]:
    """``data-figure`` values of a page (or of a part of one), tags inside stripped; the
    first of each name (a worker's row repeats names: read it with ``worker_row``)."""
    found = re.findall(r'data-figure="(\w+)">(.*?)</(?:span|td|p|small)>', html, flags=re.S)
    result: dict[str, str] = {}
    for name, text in found:
        result.setdefault(name, " ".join(re.sub(r"<[^>]+>", " ", text).split()))
    return result


def worker_row(html: str, worker) -> str:
    return re.search(rf'<tr id="worker-{worker.pk}">.*?</tr>', html, flags=re.S).group(0)

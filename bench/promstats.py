"""The batch-size histogram in digitpass's ``/metrics``, and the mean batch between scrapes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.servers import http_get

METRIC = "digitpass_inference_batch_size"
_LINE = re.compile(rf'^{METRIC}_(sum|count)\{{[^}}]*model="([^"]+)"[^}}]*\}}\s+(\S+)$')


@dataclass(frozen=True)
class BatchTotals:
    """``_sum`` (rows) and ``_count`` (inference calls) of one model's histogram."""

    rows: float = 0.0
    calls: float = 0.0


def parse_batch_totals(text: str) -> dict[str, BatchTotals]:
    """Per model, the histogram's sum and count from a Prometheus text exposition."""
    found: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            kind, model, value = match.groups()
            found.setdefault(model, {})[kind] = float(value)
    return {m: BatchTotals(v.get("sum", 0.0), v.get("count", 0.0)) for m, v in found.items()}


def scrape(base_url: str, model: str) -> BatchTotals:
    status, body = http_get(base_url + "/metrics", timeout=5.0)
    if status != 200:
        raise RuntimeError(f"{base_url}/metrics answered {status}")
    return parse_batch_totals(body.decode()).get(model, BatchTotals())


def mean_batch(before: BatchTotals, after: BatchTotals) -> float | None:
    """Rows per inference call between two scrapes; None when there was no call."""
    calls = after.calls - before.calls
    return round((after.rows - before.rows) / calls, 2) if calls > 0 else None

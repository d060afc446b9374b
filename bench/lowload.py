"""Latency at concurrency 1, batching on vs off, in alternating short rounds.

At concurrency 1 every batch holds one request whatever ``MAX_BATCH_SIZE`` is, so the
two configurations differ by noise unless the batcher adds a cost of its own. One
10 s run each cannot tell those apart on a shared machine; many alternating rounds
against two servers that stay up can, by comparing the medians of their p50s.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from bench.loadgen import run_load
from bench.rows import Row
from bench.servers import Server

ON, OFF = "digitpass", "digitpass-batch1"


def run_low_load(
    rows: list[Row], body: bytes, log_dir: Path, *, rounds: int, duration_s: float, tool: str
) -> dict[str, Any] | None:
    """Alternate ``rounds`` times between batching on and off; None if a row is missing."""
    from bench.serving import _target, check_answers

    pair = [r for r in rows if r.key in (ON, OFF)]
    if len(pair) != 2:
        return None
    servers = [Server(f"{row.key}-lowload", row.spec, log_dir) for row in pair]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for server, row in zip(servers, pair, strict=True):
            server.start()
            server.wait_ready()
            check_answers(server, row, body)
        for index in range(rounds):
            order = list(zip(servers, pair, strict=True))
            for server, row in order if index % 2 == 0 else order[::-1]:
                for endpoint, path in row.paths.items():
                    target = _target(server, endpoint, path, body)
                    result = run_load(target, concurrency=1, duration_s=duration_s, tool=tool)
                    samples.setdefault((row.key, endpoint), []).append(
                        {"p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "errors": result.errors}
                    )
    finally:
        for server in servers:
            server.stop()
    summary = [
        {
            "row": row,
            "endpoint": endpoint,
            "median_p50_ms": round(statistics.median(s["p50_ms"] for s in runs), 3),
            "median_p99_ms": round(statistics.median(s["p99_ms"] for s in runs), 3),
            "errors": sum(int(s["errors"]) for s in runs),
            "p50_ms": [round(s["p50_ms"], 3) for s in runs],
        }
        for (row, endpoint), runs in samples.items()
    ]
    for entry in summary:
        print(
            f"bench: c=1 rounds {entry['row']:<17}{entry['endpoint']:<6}"
            f"median p50 {entry['median_p50_ms']:.3f} ms  p50s {entry['p50_ms']}",
            file=sys.stderr,
            flush=True,
        )
    return {"rounds": rounds, "duration_s": duration_s, "results": summary}

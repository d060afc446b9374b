"""Latency at concurrency 1, batching on vs off, in alternating short rounds.

At concurrency 1 every batch holds one request whatever ``MAX_BATCH_SIZE`` is, so the
two configurations differ by noise unless the batcher adds a cost of its own. One
10 s run each cannot tell those apart on a shared machine; many alternating rounds
against servers that stay up can, by comparing the medians of their p50s. Two
instances of each configuration are started in the order on, off, off, on: two
instances of the same configuration were measured 4-5% apart, the one started first
being slower, and this order cancels that.
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
    """``rounds`` rounds over two instances of each; None unless both rows are selected."""
    from bench.serving import _target, check_answers

    pair = [r for r in rows if r.key in (ON, OFF)]
    if len(pair) != 2:
        return None
    instances = [pair[0], pair[1], pair[1], pair[0]]  # on, off, off, on
    servers = [
        Server(f"{row.key}-lowload{i}", row.spec, log_dir) for i, row in enumerate(instances)
    ]
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        for server, row in zip(servers, instances, strict=True):
            server.start()
            server.wait_ready()
            check_answers(server, row, body)
        for index in range(rounds):
            order = list(zip(servers, instances, strict=True))
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

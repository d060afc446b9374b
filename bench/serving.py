"""The serving benchmark: every row at every level, interleaved, against its ceiling.

For each concurrency level, each row in turn is started fresh, checked, warmed up
and measured on each of its endpoints, then stopped; so the rows of one level are
measured minutes apart at most, and a noisy neighbour hits them all alike.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult, Target, run_load, wrk_available
from bench.lowload import run_low_load
from bench.machine import cpu_snapshot, group_cpu_s, others_cpu
from bench.payload import mnist_png, multipart_body, multipart_content_type
from bench.promstats import mean_batch, scrape
from bench.rows import Row, all_rows, asgi_ceiling_for, ceiling_for
from bench.servers import Server, ServerFailed, http_get

EXPECTED_DIGIT = 7  # MNIST test image 0


@dataclass(frozen=True)
class ServingConfig:
    levels: tuple[int, ...] = (1, 16, 64, 256)
    duration_s: float = 10.0
    warmup_s: float = 2.0
    tool: str = "auto"
    threads: int = 1
    rows: tuple[str, ...] | None = None  # None: every row
    low_load_rounds: int = 6  # alternating c=1 rounds, batching on vs off (0: none)


def select_rows(names: tuple[str, ...] | None) -> list[Row]:
    """The named rows (in report order), building LitServe's venv if it is among them."""
    wanted = set(names) if names else None
    python = None
    if wanted is None or "litserve" in wanted:
        from bench.litserve_env import ensure_litserve_venv

        python = str(ensure_litserve_venv())
    rows = [r for r in all_rows(python) if wanted is None or r.key in wanted]
    unknown = (wanted or set()) - {r.key for r in rows}
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; known: {[r.key for r in all_rows()]}")
    return rows


def _target(server: Server, endpoint: str, path: str, body: bytes) -> Target:
    if endpoint == "digit":
        return Target(server.url + path, "POST", body, multipart_content_type())
    return Target(server.url + path)


def check_answers(server: Server, row: Row, body: bytes) -> None:
    """One request per endpoint must succeed with the right answer before any load."""
    for endpoint, path in row.paths.items():
        if endpoint == "digit":
            request = urllib.request.Request(
                server.url + path, data=body, headers={"Content-Type": multipart_content_type()}
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = json.loads(response.read())
            if answer.get("digit") != EXPECTED_DIGIT:
                raise ServerFailed(f"{row.key}: digit answer {answer} is not {EXPECTED_DIGIT}")
        else:
            status, raw = http_get(server.url + path, timeout=30)
            if status != 200 or "probability" not in json.loads(raw or b"{}"):
                raise ServerFailed(f"{row.key}: {path} answered {status} {raw[:200]!r}")


def _measure(
    server: Server, row: Row, endpoint: str, target: Target, level: int, config: ServingConfig
) -> dict[str, Any]:
    if config.warmup_s > 0:
        run_load(target, concurrency=level, duration_s=config.warmup_s, tool=config.tool)
    model = "digit" if endpoint == "digit" else "pass"
    before = scrape(server.url, model) if row.batch_metrics else None
    snapshot = cpu_snapshot()
    result: LoadResult = run_load(
        target,
        concurrency=level,
        duration_s=config.duration_s,
        tool=config.tool,
        threads=config.threads,
    )
    after = cpu_snapshot()
    own_groups = {os.getpgrp(), server.pgid or -1}
    others = others_cpu(snapshot, after, own_groups)
    server_s = group_cpu_s(snapshot, after, server.pgid or -1)
    batch = mean_batch(before, scrape(server.url, model)) if before is not None else None
    return {
        "row": row.key,
        "endpoint": endpoint,
        **result.to_dict(),
        "errors": result.errors,
        "mean_batch": batch,
        "server_cpu_ms_per_req": round(server_s * 1000 / result.requests, 3)
        if result.requests
        else None,
        "other_cpu_s": round(sum(others.values()), 2),
        "other_top": dict(list(others.items())[:3]),
    }


def _progress(entry: dict[str, Any]) -> None:
    batch = entry["mean_batch"]
    print(
        f"bench: c={entry['concurrency']:<4d}{entry['row']:<23}{entry['endpoint']:<6}"
        f"{entry['rps']:9.1f} req/s  p50 {entry['p50_ms']:7.2f} ms  p99 {entry['p99_ms']:7.2f} ms"
        f"  errors {entry['errors']}  batch {batch if batch is not None else '-'}"
        f"  cpu {entry['server_cpu_ms_per_req']} ms/req"
        f"  others {entry['other_cpu_s']} cpu-s",
        file=sys.stderr,
        flush=True,
    )


def add_ratios(results: list[dict[str, Any]]) -> None:
    """req/s over a ceiling's req/s at the same level: ``ratio`` to the FastAPI ceiling
    (upload or GET), ``ratio_asgi`` to the plain-ASGI one (None where not measured)."""
    index = {(r["row"], r["endpoint"], r["concurrency"]): r for r in results if "rps" in r}
    for entry in index.values():
        for key, ceiling_of in (("ratio", ceiling_for), ("ratio_asgi", asgi_ceiling_for)):
            ceiling = index.get((*ceiling_of(entry["endpoint"]), entry["concurrency"]))
            ok = ceiling is not None and ceiling["rps"] > 0
            entry[key] = round(entry["rps"] / ceiling["rps"], 3) if ok else None


def run_serving(config: ServingConfig, log_dir: Path) -> dict[str, Any]:
    """Run every selected row at every level; return the results (see ``bench.report``)."""
    tool = config.tool if config.tool != "auto" else ("wrk" if wrk_available() else "python")
    config = ServingConfig(**{**config.__dict__, "tool": tool})
    rows = select_rows(config.rows)
    body = multipart_body(mnist_png(0))
    results: list[dict[str, Any]] = []
    started = time.time()
    for level in config.levels:
        for row in rows:
            server = Server(row.key, row.spec, log_dir)
            try:
                server.start()
                server.wait_ready()
                check_answers(server, row, body)
                for endpoint, path in row.paths.items():
                    target = _target(server, endpoint, path, body)
                    entry = _measure(server, row, endpoint, target, level, config)
                    results.append(entry)
                    _progress(entry)
            except (ServerFailed, RuntimeError, OSError) as error:
                print(f"bench: {row.key} at c={level} failed: {error}", file=sys.stderr)
                results.append({"row": row.key, "concurrency": level, "failed": str(error)})
            finally:
                server.stop()
    add_ratios(results)
    low_load = None
    if config.low_load_rounds:
        low_load = run_low_load(
            rows,
            body,
            log_dir,
            rounds=config.low_load_rounds,
            duration_s=min(config.duration_s, 2.0),
            tool=config.tool,
        )
    return {
        "low_load": low_load,
        "benchmark": "serving",
        "config": {**config.__dict__, "levels": list(config.levels), "rows": [r.key for r in rows]},
        "rows": [{"key": r.key, "label": r.label, "notes": r.notes} for r in rows],
        "results": results,
        "wall_s": round(time.time() - started, 1),
    }

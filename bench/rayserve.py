"""digitpass on Ray Serve against digitpass direct and against a Ray Serve baseline
written the way Ray's docs show (``bench/ray_baseline_app.py``), same run, interleaved.

* ``direct``: the default ``digitpass-serve`` (``workers=auto``);
* ``ray``: ``make serve-ray``'s command, a local loopback cluster with 2 replicas of
  1 CPU each (the cores of this machine), digitpass's own batcher in each;
* ``ray-baseline``: FastAPI ingress, ``@serve.batch`` (64 rows, 5 ms wait), PIL
  decoding in the handler, the same ONNX model, 2 replicas of 1 CPU.

Each round starts each side fresh and drives ``POST /predict/digit`` (a 28x28 MNIST
PNG, multipart) at concurrency 1 (the per-request overhead) and 64 (throughput),
after a warm-up. Server CPU is split by process: Ray's proxy, the replicas (with
their preprocessing workers), and the rest of Ray (raylet, GCS, controller,
dashboard): where the overhead goes.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

from bench import BENCH_DIR, MODELS_DIR, newest_version
from bench.loadgen import Target, run_load
from bench.machine import TICKS, cpu_snapshot
from bench.payload import mnist_png, multipart_body, multipart_content_type
from bench.servers import Server, ServerSpec

LEVELS = (1, 64)
SIDES = ("direct", "ray", "ray-baseline")
REPLICAS = 2


def _spec(side: str) -> ServerSpec:
    python = sys.executable
    env = {"DIGITPASS_MODEL_REPOSITORY": str(MODELS_DIR), "RAY_USAGE_STATS_ENABLED": "0"}
    if side == "direct":
        argv = [python, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
        return ServerSpec(argv, "/readyz", env)
    if side == "ray":
        argv = [python, "-m", "service.rayserve", "--host", "127.0.0.1", "--port", "{port}"]
        argv += ["--min-replicas", str(REPLICAS), "--max-replicas", str(REPLICAS)]
        return ServerSpec(argv, "/readyz", env)
    model = newest_version("digit") / "model.onnx"
    argv = [python, "-m", "bench.ray_baseline_app", "--port", "{port}", "--model", str(model)]
    return ServerSpec([*argv, "--replicas", str(REPLICAS)], "/readyz", env)


def _role(name: str) -> str:
    if name.startswith("ray::ProxyActor"):
        return "proxy"
    if name.startswith("ray::ServeRepli") or name.startswith("python"):
        return "replicas" if name.startswith("ray::") else "workers"
    return "ray-system"


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (Ray's actors run under its raylet, in
    sessions of their own, so the process group does not find them)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def cpu_by_role(
    before: dict[int, tuple[int, int, str]], after: dict[int, tuple[int, int, str]], root: int
) -> dict[str, float]:
    """CPU seconds of ``root``'s process tree, by role."""
    used: dict[str, float] = {}
    tree = descendants(root)
    for pid, (ticks, pgrp, name) in after.items():
        if pid not in tree:
            continue
        seconds = (ticks - before.get(pid, (0, pgrp, name))[0]) / TICKS
        if seconds > 0:
            used[_role(name)] = used.get(_role(name), 0.0) + seconds
    return used


def measure(side: str, duration_s: float, warmup_s: float, tool: str) -> dict[str, Any]:
    server = Server(f"rayserve-{side}", _spec(side), BENCH_DIR / "results" / "raw" / "logs")
    try:
        server.start()
        server.wait_ready()
        digit = Target(
            server.url + "/predict/digit",
            "POST",
            multipart_body(mnist_png(0)),
            multipart_content_type(),
        )
        if warmup_s > 0:
            run_load(digit, concurrency=64, duration_s=warmup_s, tool=tool)
        entry: dict[str, Any] = {"side": side}
        for level in LEVELS:
            before = cpu_snapshot()
            result = run_load(digit, concurrency=level, duration_s=duration_s, tool=tool)
            roles = cpu_by_role(before, cpu_snapshot(), server.pgid or -1)
            per_request = {
                role: round(seconds * 1000 / result.requests, 4) if result.requests else None
                for role, seconds in sorted(roles.items())
            }
            entry[f"c{level}"] = {
                "rps": round(result.rps, 1),
                "p50_ms": result.p50_ms,
                "p99_ms": result.p99_ms,
                "errors": result.errors,
                "cpu_ms_per_req": per_request,
            }
        return entry
    finally:
        server.stop(timeout_s=60)


def run_rayserve(rounds: int, duration_s: float, warmup_s: float, tool: str) -> dict[str, Any]:
    results = []
    for round_index in range(rounds):
        order = SIDES if round_index % 2 == 0 else SIDES[::-1]
        for side in order:
            entry = {"round": round_index, **measure(side, duration_s, warmup_s, tool)}
            results.append(entry)
            print(f"bench: rayserve {entry}", file=sys.stderr, flush=True)
    return {
        "benchmark": "rayserve",
        "config": {
            "rounds": rounds,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "levels": list(LEVELS),
            "replicas": REPLICAS,
            "tool": tool,
        },
        "results": results,
    }


def summary(data: dict[str, Any]) -> list[list[str]]:
    """One row per side: medians over rounds at each level, CPU per request by role."""
    rows = []
    for side in SIDES:
        entries = [r for r in data["results"] if r["side"] == side]
        if not entries:
            continue

        def pick(level: str, key: str, among: list[dict[str, Any]] = entries) -> float:
            return statistics.median([e[level][key] for e in among])

        roles = sorted({role for e in entries for role in e["c64"]["cpu_ms_per_req"]})
        cpu = ", ".join(
            f"{role} "
            f"{statistics.median(e['c64']['cpu_ms_per_req'].get(role) or 0 for e in entries):.3f}"
            for role in roles
        )
        rows.append(
            [
                side,
                f"{pick('c64', 'rps'):,.0f}",
                f"{pick('c64', 'p50_ms'):.1f}",
                f"{pick('c64', 'p99_ms'):.1f}",
                f"{pick('c1', 'p50_ms'):.2f}",
                f"{pick('c1', 'rps'):,.0f}",
                str(sum(e["c64"]["errors"] + e["c1"]["errors"] for e in entries)),
                cpu,
            ]
        )
    return rows


def verdicts(data: dict[str, Any]) -> list[str]:
    """digitpass on Ray against the baseline: req/s and p99 at concurrency 64."""

    def median(side: str, key: str) -> float:
        return statistics.median([r["c64"][key] for r in data["results"] if r["side"] == side])

    ours_rps, base_rps = median("ray", "rps"), median("ray-baseline", "rps")
    ours_p99, base_p99 = median("ray", "p99_ms"), median("ray-baseline", "p99_ms")
    return [
        f"req/s, digitpass on Ray / the baseline: {ours_rps / base_rps:.2f}x "
        f"({'beats it' if ours_rps > base_rps else '**does not beat it**'})",
        f"p99, digitpass on Ray / the baseline: {ours_p99 / base_p99:.2f}x "
        f"({'beats it' if ours_p99 < base_p99 else '**does not beat it**'})",
        f"req/s, digitpass on Ray / direct: {ours_rps / median('direct', 'rps'):.2f}x",
    ]

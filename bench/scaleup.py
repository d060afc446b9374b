"""Scale-up: the default ``digitpass-serve`` (``workers=auto``: one per usable core)
against the same defaults confined to one core (``taskset -c 0``), interleaved.

Each round starts each side fresh, in alternating order, and drives
``POST /predict/digit`` (a 28x28 MNIST PNG, multipart) at concurrency 64 with a
warm-up first. The load generator runs unconfined both times, on the same machine: on
a machine of few cores it takes a share of them from the default run, none from the
one-core run (which leaves it the other cores), so the ratio errs low.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from typing import Any

from bench import BENCH_DIR, MODELS_DIR
from bench.loadgen import Target, run_load
from bench.machine import cpu_snapshot, group_cpu_s
from bench.payload import mnist_png, multipart_body, multipart_content_type
from bench.servers import Server, ServerSpec

LEVEL = 64
TARGET_RATIO = 1.7
SIDES = ("default", "one-core")


def _spec(side: str) -> ServerSpec:
    argv = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
    if side == "one-core":
        taskset = shutil.which("taskset")
        if taskset is None:
            raise RuntimeError("the scale-up benchmark needs taskset (util-linux)")
        argv = [taskset, "-c", "0", *argv]
    return ServerSpec(argv, "/readyz", {"DIGITPASS_MODEL_REPOSITORY": str(MODELS_DIR)})


def measure(side: str, duration_s: float, warmup_s: float, tool: str) -> dict[str, Any]:
    server = Server(f"scaleup-{side}", _spec(side), BENCH_DIR / "results" / "raw" / "logs")
    digit = None
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
            run_load(digit, concurrency=LEVEL, duration_s=warmup_s, tool=tool)
        before = cpu_snapshot()
        result = run_load(digit, concurrency=LEVEL, duration_s=duration_s, tool=tool)
        cpu_s = group_cpu_s(before, cpu_snapshot(), server.pgid or -1)
        return {
            "side": side,
            "rps": round(result.rps, 1),
            "p50_ms": result.p50_ms,
            "p99_ms": result.p99_ms,
            "errors": result.errors,
            "server_cores": round(cpu_s / result.duration_s, 2) if result.duration_s else None,
        }
    finally:
        server.stop()


def run_scaleup(rounds: int, duration_s: float, warmup_s: float, tool: str) -> dict[str, Any]:
    results = []
    for round_index in range(rounds):
        for side in SIDES if round_index % 2 == 0 else SIDES[::-1]:
            entry = {"round": round_index, **measure(side, duration_s, warmup_s, tool)}
            results.append(entry)
            print(f"bench: scaleup {entry}", file=sys.stderr, flush=True)
    return {
        "benchmark": "scaleup",
        "config": {
            "rounds": rounds,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "level": LEVEL,
            "tool": tool,
            "cores": len(os.sched_getaffinity(0)),
        },
        "results": results,
    }


def summary(data: dict[str, Any]) -> list[list[str]]:
    """Rows: each side's median req/s, p99 and server cores; the ratio against the bar."""

    def side(name: str, key: str) -> float:
        return statistics.median([r[key] for r in data["results"] if r["side"] == name])

    default_rps, one_rps = side("default", "rps"), side("one-core", "rps")
    default_p99, one_p99 = side("default", "p99_ms"), side("one-core", "p99_ms")
    ratio = default_rps / one_rps if one_rps else 0.0
    return [
        [
            "req/s",
            f"{default_rps:,.0f}",
            f"{one_rps:,.0f}",
            f"{ratio:.2f}x",
            f"at least {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else '**missed**'}",
        ],
        [
            "p99 (ms)",
            f"{default_p99:.1f}",
            f"{one_p99:.1f}",
            f"{default_p99 / one_p99:.2f}x",
            f"no worse: {'met' if default_p99 <= one_p99 else '**missed**'}",
        ],
        [
            "p50 (ms)",
            f"{side('default', 'p50_ms'):.1f}",
            f"{side('one-core', 'p50_ms'):.1f}",
            "",
            "",
        ],
        [
            "server CPU (cores busy)",
            f"{side('default', 'server_cores'):.2f}",
            f"{side('one-core', 'server_cores'):.2f}",
            "",
            "",
        ],
        [
            "errors (all rounds)",
            str(sum(r["errors"] for r in data["results"] if r["side"] == "default")),
            str(sum(r["errors"] for r in data["results"] if r["side"] == "one-core")),
            "",
            "",
        ],
    ]

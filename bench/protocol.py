"""The Open Inference Protocol benchmark: samples/s of V2 REST (binary tensor data) and
V2 gRPC ``ModelInfer``, next to ``/predict/digit``, against one digitpass server.

Rows, each at ``concurrency`` (64) closed-loop clients, after a warm-up:

* ``/predict/digit``: one 28x28 MNIST PNG per request (multipart), wrk;
* V2 REST binary: one FP32 ``[1, 784]`` tensor per request (``Inference-Header-
  Content-Length``, then the raw tensor), wrk; and as one PNG in a BYTES tensor;
* V2 gRPC: the same tensor in ``raw_input_contents``, a grpc.aio client process;
* the same with 64 tensors (``[64, 784]``) per request, REST and gRPC, and
  ``/predict/digits`` with 64 PNGs, for comparison.

Samples/s = requests/s x rows per request; ``mean batch`` is rows per inference call
from the server's ``/metrics`` over the row's run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import MODELS_DIR
from bench.inference import mnist_batch
from bench.loadgen import LoadResult, Target, run_load
from bench.payload import BOUNDARY, mnist_png, multipart_body, multipart_content_type
from bench.promstats import mean_batch, scrape
from bench.servers import Server, ServerSpec, free_port

CONCURRENCY = 64
BATCH = 64


def v2_binary_body(rows: int) -> tuple[bytes, int]:
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [rows, 784],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": rows * 784 * 4},
                }
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return header + np.ascontiguousarray(mnist_batch(rows)).tobytes(), len(header)


def v2_png_body() -> tuple[bytes, int]:
    png = mnist_png(0)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image_bytes",
                    "shape": [1, 1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(png) + 4},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return header + len(png).to_bytes(4, "little") + png, len(header)


def multipart_many(count: int) -> bytes:
    png = mnist_png(0)
    part = (
        (
            f"--{BOUNDARY}\r\n"
            'Content-Disposition: form-data; name="images"; filename="digit.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + b"\r\n"
    )
    return part * count + f"--{BOUNDARY}--\r\n".encode()


@dataclass(frozen=True)
class ProtocolRow:
    key: str
    label: str
    rows_per_request: int
    run: Callable[[Server, int, float, float], LoadResult]


def _http(path: str, body: bytes, content_type: str, header_length: int | None = None):
    headers = (("Inference-Header-Content-Length", str(header_length)),) if header_length else ()

    def run(server: Server, grpc_port: int, duration_s: float, warmup_s: float) -> LoadResult:
        target = Target(server.url + path, "POST", body, content_type, headers)
        if warmup_s > 0:
            run_load(target, concurrency=CONCURRENCY, duration_s=warmup_s)
        return run_load(target, concurrency=CONCURRENCY, duration_s=duration_s)

    return run


def _grpc(rows: int):
    def run(server: Server, grpc_port: int, duration_s: float, warmup_s: float) -> LoadResult:
        argv = [
            sys.executable,
            "-m",
            "bench.grpcload",
            f"127.0.0.1:{grpc_port}",
            "--rows",
            str(rows),
            "--concurrency",
            str(CONCURRENCY),
        ]
        if warmup_s > 0:
            subprocess.run([*argv, "--duration", str(warmup_s)], check=True, capture_output=True)
        done = subprocess.run(
            [*argv, "--duration", str(duration_s)],
            check=True,
            capture_output=True,
            text=True,
            timeout=duration_s + 60,
        )
        line = next(x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON "))
        return LoadResult(**json.loads(line[len("BENCH_JSON ") :]))

    return run


def all_rows() -> list[ProtocolRow]:
    one, one_header = v2_binary_body(1)
    many, many_header = v2_binary_body(BATCH)
    png, png_header = v2_png_body()
    octets = "application/octet-stream"
    return [
        ProtocolRow(
            "predict-digit",
            "`/predict/digit`, 1 PNG",
            1,
            _http("/predict/digit", multipart_body(mnist_png(0)), multipart_content_type()),
        ),
        ProtocolRow(
            "v2-rest-binary",
            "V2 REST binary, FP32 [1, 784]",
            1,
            _http("/v2/models/digit/infer", one, octets, one_header),
        ),
        ProtocolRow(
            "v2-rest-png",
            "V2 REST binary, 1 PNG as BYTES",
            1,
            _http("/v2/models/digit/infer", png, octets, png_header),
        ),
        ProtocolRow("v2-grpc", "V2 gRPC, FP32 [1, 784]", 1, _grpc(1)),
        ProtocolRow(
            "predict-digits-64",
            "`/predict/digits`, 64 PNGs",
            BATCH,
            _http("/predict/digits", multipart_many(BATCH), multipart_content_type()),
        ),
        ProtocolRow(
            "v2-rest-binary-64",
            "V2 REST binary, FP32 [64, 784]",
            BATCH,
            _http("/v2/models/digit/infer", many, octets, many_header),
        ),
        ProtocolRow("v2-grpc-64", "V2 gRPC, FP32 [64, 784]", BATCH, _grpc(BATCH)),
    ]


def run_protocol(
    duration_s: float,
    warmup_s: float,
    log_dir: Path,
    keys: tuple[str, ...] | None = None,
    rounds: int = 3,
) -> dict[str, Any]:
    """Every row ``rounds`` times, interleaved (row 1, 2, ..., then again), so that a busy
    neighbour slows every row alike; each row's result is its median round by req/s."""
    grpc_port = free_port()
    spec = ServerSpec(
        [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"],
        "/readyz",
        {"DIGITPASS_MODEL_REPOSITORY": str(MODELS_DIR), "DIGITPASS_GRPC_PORT": str(grpc_port)},
    )
    server = Server("digitpass-protocol", spec, log_dir)
    rows = [row for row in all_rows() if not keys or row.key in keys]
    runs: dict[str, list[dict[str, Any]]] = {row.key: [] for row in rows}
    server.start()
    try:
        server.wait_ready()
        for round_number in range(rounds):
            for row in rows:
                entry = _measure(row, server, grpc_port, duration_s, warmup_s)
                runs[row.key].append(entry)
                print(
                    f"bench: round {round_number + 1} {row.key:<20} {entry['rps']:>8.0f} req/s "
                    f"{entry['samples_per_s']:>9.0f} samples/s  p99 {entry['p99_ms']:.1f} ms  "
                    f"batch {entry['mean_batch']}  errors {entry['errors']}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        server.stop()
    results = []
    for row in rows:
        ordered = sorted(runs[row.key], key=lambda e: e["rps"])
        median = dict(ordered[len(ordered) // 2])
        median["rounds_rps"] = [e["rps"] for e in runs[row.key]]
        median["errors"] = sum(e["errors"] for e in runs[row.key])  # every round's
        results.append(median)
    return {
        "benchmark": "protocol",
        "config": {
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "concurrency": CONCURRENCY,
            "rounds": rounds,
        },
        "results": results,
    }


def _measure(
    row: ProtocolRow, server: Server, grpc_port: int, duration_s: float, warmup_s: float
) -> dict[str, Any]:
    before = scrape(server.url, "digit")
    started = time.perf_counter()
    load = row.run(server, grpc_port, duration_s, warmup_s)
    return {
        "row": row.key,
        "label": row.label,
        "concurrency": CONCURRENCY,
        "rows_per_request": row.rows_per_request,
        **load.to_dict(),
        "samples_per_s": round(load.rps * row.rows_per_request, 1),
        "errors": load.errors,
        "mean_batch": mean_batch(before, scrape(server.url, "digit")),
        "wall_s": round(time.perf_counter() - started, 1),
    }


def protocol_table(data: dict[str, Any]) -> str:
    lines = [
        "| row | rows/request | req/s | samples/s | p50 ms | p99 ms | mean batch | errors "
        "| req/s, each round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["results"]:
        batch = "" if r["mean_batch"] is None else f"{r['mean_batch']:.1f}"
        lines.append(
            f"| {r['label']} | {r['rows_per_request']} | {r['rps']:.0f} | "
            f"{r['samples_per_s']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {batch} | "
            f"{r['errors']} | {', '.join(f'{x:.0f}' for x in r.get('rounds_rps', []))} |"
        )
    return "\n".join(lines)

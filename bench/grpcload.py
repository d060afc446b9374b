"""A closed-loop gRPC load generator: ``concurrency`` calls of ``ModelInfer`` in flight
on one channel (grpc.aio), for ``duration`` seconds; prints one JSON summary line.

Run as ``python -m bench.grpcload TARGET --rows 1 --concurrency 64 --duration 10`` in a
process of its own, so that the client's CPU is not the benchmark's event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from bench.inference import mnist_batch

TIMEOUT_S = 5.0


def infer_request(rows: int) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="digit")
    request.inputs.add(name="image", datatype="FP32", shape=[rows, 784])
    request.raw_input_contents.append(np.ascontiguousarray(mnist_batch(rows)).tobytes())
    return request


async def drive(target: str, rows: int, concurrency: int, duration_s: float) -> dict:
    request = infer_request(rows)
    latencies: list[float] = []
    errors = 0
    async with grpc.aio.insecure_channel(target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        await stub.ModelInfer(request, timeout=TIMEOUT_S)  # connected and warm
        started = time.perf_counter()
        deadline = started + duration_s

        async def caller() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    await stub.ModelInfer(request, timeout=TIMEOUT_S)
                    latencies.append(time.perf_counter() - sent)
                except grpc.aio.AioRpcError:
                    errors += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def percentile(fraction: float) -> float:
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))] * 1000

    return {
        "tool": "grpc.aio",
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": percentile(0.5),
        "p90_ms": percentile(0.9),
        "p99_ms": percentile(0.99),
        "max_ms": ordered[-1] * 1000 if ordered else 0.0,
        "non_2xx": errors,
        "socket_errors": 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpcload")
    parser.add_argument("target", help="host:port")
    parser.add_argument("--rows", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    summary = asyncio.run(drive(args.target, args.rows, args.concurrency, args.duration))
    print("BENCH_JSON " + json.dumps(summary), flush=True)


if __name__ == "__main__":
    sys.exit(main())

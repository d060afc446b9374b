"""A small closed-loop load generator in Python (asyncio + httpx): the fallback for wrk.

Used where wrk is not installed (``make test`` on a fresh machine), so the smoke test
always runs. It is far slower than wrk; numbers from it are not comparable to wrk's.
"""

from __future__ import annotations

import asyncio
import time

from bench.loadgen import LoadResult, Target

TIMEOUT_S = 5.0


def _percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


async def _drive(target: Target, concurrency: int, duration_s: float) -> LoadResult:
    import httpx

    latencies: list[float] = []
    counts = {"non_2xx": 0}
    detail: dict[str, int] = {}
    headers = {"content-type": target.content_type} if target.content_type else {}
    headers.update(target.headers)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=TIMEOUT_S) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def connection() -> None:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.request(
                        target.method, target.url, content=target.body, headers=headers
                    )
                except httpx.TransportError as error:
                    kind = (
                        "timeout"
                        if isinstance(error, httpx.TimeoutException)
                        else "connect"
                        if isinstance(error, httpx.ConnectError)
                        else "read"
                    )
                    detail[kind] = detail.get(kind, 0) + 1
                    continue
                latencies.append(time.perf_counter() - sent)
                if not 200 <= response.status_code < 300:
                    counts["non_2xx"] += 1

        await asyncio.gather(*(connection() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return LoadResult(
        tool="python",
        concurrency=concurrency,
        duration_s=round(elapsed, 3),
        requests=len(latencies),
        rps=round(len(latencies) / elapsed, 1),
        p50_ms=_percentile(ordered, 0.50) * 1000,
        p90_ms=_percentile(ordered, 0.90) * 1000,
        p99_ms=_percentile(ordered, 0.99) * 1000,
        max_ms=(ordered[-1] if ordered else 0.0) * 1000,
        non_2xx=counts["non_2xx"],
        socket_errors=sum(detail.values()),
        socket_detail=detail,
    )


def run_python_load(target: Target, *, concurrency: int, duration_s: float) -> LoadResult:
    return asyncio.run(_drive(target, concurrency, duration_s))

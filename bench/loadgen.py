"""What a load generator is given (a target) and what it gives back (a result)."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """One request, sent over and over: ``body`` is None for a GET."""

    url: str
    method: str = "GET"
    body: bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # more request headers


@dataclass(frozen=True)
class LoadResult:
    """One fixed-duration run at one concurrency (closed loop: one request per connection)."""

    tool: str
    concurrency: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int
    socket_detail: dict[str, int] = field(default_factory=dict)  # connect/read/write/timeout

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_load(
    target: Target, *, concurrency: int, duration_s: float, tool: str = "auto", threads: int = 1
) -> LoadResult:
    """Drive ``target`` with ``tool`` (``wrk``, ``python``, or ``auto``: wrk when installed)."""
    if tool == "auto":
        tool = "wrk" if wrk_available() else "python"
    if tool == "wrk":
        from bench.wrk import run_wrk

        return run_wrk(target, concurrency=concurrency, duration_s=duration_s, threads=threads)
    if tool == "python":
        from bench.pyload import run_python_load

        return run_python_load(target, concurrency=concurrency, duration_s=duration_s)
    raise ValueError(f"unknown load generator {tool!r}")

"""wrk with a generated Lua script: the body for uploads, and a JSON summary from ``done``."""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path

from bench.loadgen import LoadResult, Target

MARKER = "BENCH_JSON "
TIMEOUT_S = 5  # a request slower than this counts as a socket error (timeout)

# wrk calls done() once, in its main thread, with every thread's counts merged.
# Latencies are in microseconds.
DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "%s{\"duration_us\":%.0f,\"requests\":%.0f,\"p50_us\":%.0f,\"p90_us\":%.0f," ..
    "\"p99_us\":%.0f,\"max_us\":%.0f,\"connect\":%.0f,\"read\":%.0f,\"write\":%.0f," ..
    "\"status\":%.0f,\"timeout\":%.0f}\n",
    "BENCH_JSON ", summary.duration, summary.requests, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read,
    e.write, e.status, e.timeout))
end
"""


def _lua_string(text: str) -> str:
    """A Lua long-bracket string literal holding ``text`` verbatim."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def lua_script(target: Target, body_path: Path | None) -> str:
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if body_path is not None:
        lines += [
            f"local handle = assert(io.open({_lua_string(str(body_path))}, 'rb'))",
            "wrk.body = handle:read('*a')",
            "handle:close()",
        ]
    if target.content_type:
        lines.append(f'wrk.headers["Content-Type"] = {_lua_string(target.content_type)}')
    for name, value in target.headers:
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    return "\n".join(lines) + "\n" + DONE


def parse_summary(stdout: str, concurrency: int) -> LoadResult:
    """The ``BENCH_JSON`` line of wrk's output as a :class:`LoadResult`."""
    line = next((x for x in stdout.splitlines() if x.startswith(MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{stdout[-2000:]}")
    raw = json.loads(line[len(MARKER) :])
    duration_s = raw["duration_us"] / 1e6
    requests = int(raw["requests"])
    return LoadResult(
        tool="wrk",
        concurrency=concurrency,
        duration_s=round(duration_s, 3),
        requests=requests,
        rps=round(requests / duration_s, 1) if duration_s > 0 else 0.0,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        non_2xx=int(raw["status"]),
        socket_errors=int(raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]),
        socket_detail={k: int(raw[k]) for k in ("connect", "read", "write", "timeout") if raw[k]},
    )


def run_wrk(target: Target, *, concurrency: int, duration_s: float, threads: int) -> LoadResult:
    """One wrk run: ``threads`` threads (at most ``concurrency``), ``concurrency`` connections."""
    threads = max(1, min(threads, concurrency))
    seconds = max(1, math.ceil(duration_s))  # wrk takes whole seconds
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        body_path = None
        if target.body is not None:
            body_path = Path(tmp) / "body.bin"
            body_path.write_bytes(target.body)
        script = Path(tmp) / "load.lua"
        script.write_text(lua_script(target, body_path))
        argv = [
            "wrk",
            f"--threads={threads}",
            f"--connections={concurrency}",
            f"--duration={seconds}s",
            f"--timeout={TIMEOUT_S}s",
            "--latency",
            f"--script={script}",
            target.url,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return parse_summary(done.stdout, concurrency)

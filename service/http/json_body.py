"""Parsing a request's JSON body without stalling other requests.

``json.loads`` holds the GIL for the whole parse, so a thread would not free the event
loop: a body over ``INLINE_BYTES`` is parsed in a worker process (one of the
preprocessing stage's, when the caller hands one over, else this module's own). Before
any parse, the nesting depth is measured over the whole buffer with numpy (brackets
outside strings) and bounded. A ``transform`` may run on the parsed value in the same
process (for example turning long lists into numpy arrays, which come back as one
buffer instead of millions of objects).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from service.errors import MalformedRequest
from service.serving.subprocess_pool import SubprocessExecutor

INLINE_BYTES = 64 * 1024  # parsing this much takes well under a millisecond
MAX_DEPTH = 32
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1

Transform = Callable[[Any], Any]
RunInProcess = Callable[[Callable[[list[bytes]], Any], list[bytes], int], Awaitable[Any]]


class JsonBodyError(MalformedRequest):
    """Not JSON, or nested too deeply (400)."""


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (exact for valid JSON)."""
    data = np.frombuffer(body, dtype=np.uint8)
    if data.size == 0:
        return 0
    quotes = np.flatnonzero(data == _QUOTE)
    if quotes.size:
        # A quote is escaped when an odd number of backslashes precede it.
        index = np.arange(data.size)
        last_plain = np.maximum.accumulate(np.where(data != _BACKSLASH, index, -1))
        before = np.maximum(quotes - 1, 0)
        run = np.where(quotes > 0, before - last_plain[before], 0)
        quotes = quotes[run % 2 == 0]
    toggles = np.zeros(data.size, dtype=np.int8)
    toggles[quotes] = 1
    inside = (np.cumsum(toggles, dtype=np.int64) & 1).astype(bool)
    steps = _OPEN[data]
    steps[inside] = 0
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def too_deep(body: bytes, max_depth: int) -> bool:
    """Whether ``body`` nests deeper than ``max_depth``. Fewer opening brackets than that
    in all (most requests) settle it with two C-speed counts; otherwise numpy."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    return nesting_depth(body) > max_depth


def _parse(body: bytes, max_depth: int, transform: Transform | None) -> Any:
    if too_deep(body, max_depth):
        raise JsonBodyError(f"body: JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise JsonBodyError(
            f"body: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (UnicodeDecodeError, RecursionError):
        raise JsonBodyError("body: not valid JSON (bad encoding, or nested too deeply)") from None
    return transform(value) if transform is not None else value


def parse_job(max_depth: int, transform: Transform | None, rows: list[bytes]) -> Any:
    """What the worker process runs (module level: it pickles by name)."""
    return _parse(rows[0], max_depth, transform)


_own_worker: SubprocessExecutor | None = None


async def _own_process(job: Callable[[list[bytes]], Any], rows: list[bytes], cost: int) -> Any:
    global _own_worker
    if _own_worker is None:
        _own_worker = SubprocessExecutor(niceness=10)
    return await asyncio.get_running_loop().run_in_executor(_own_worker, job, rows)


def close() -> None:
    """Stop this module's worker process, if it was started (the app's lifespan calls it)."""
    global _own_worker
    if _own_worker is not None:
        _own_worker.shutdown(wait=True, cancel_futures=True)
        _own_worker = None


async def parse_json(
    body: bytes,
    *,
    max_depth: int = MAX_DEPTH,
    transform: Transform | None = None,
    run_in_process: RunInProcess | None = None,
) -> Any:
    """``body`` parsed as JSON (then ``transform``-ed); :class:`JsonBodyError` if not JSON.

    ``transform`` must be a module-level function (or a partial of one) when the body is
    large: it runs in the worker process.
    """
    if len(body) <= INLINE_BYTES:
        return _parse(body, max_depth, transform)
    job = functools.partial(parse_job, max_depth, transform)
    run = run_in_process or _own_process
    return await run(job, [body], len(body))

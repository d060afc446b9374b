"""The preprocessing stage: decoding and preprocessing uploads in a bounded pool of its own.

Untrusted, costly work (decoding an image, the preprocessing procedure) runs here,
neither on the event loop nor in a model's inference thread, so that one expensive
image delays only its own request. Jobs wait in one bounded queue (full: 503); each of
the ``workers`` threads takes what is waiting and runs it in one hand-off, small jobs
together (up to ``GROUP_BYTES`` of input) and a large one alone. A job whose request
has given up (timed out, client gone) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import QueueFull, RequestTimedOut, ServiceError

GROUP_BYTES = 256 * 1024  # inputs up to this size share one hand-off
GROUP_JOBS = 64

Prepare = Callable[[Sequence[Any]], np.ndarray]


@dataclass(eq=False)
class _Job:
    prepare: Prepare
    rows: Sequence[Any]
    size: int
    future: asyncio.Future[np.ndarray]
    enqueued_at: float = field(default_factory=time.monotonic)


def _input_size(rows: Sequence[Any]) -> int:
    return sum(len(row) if isinstance(row, bytes | bytearray) else 8 for row in rows)


class PreprocessStage:
    def __init__(self, *, workers: int, max_queue: int, timeout_s: float) -> None:
        self._workers = workers
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._pending: deque[_Job] = deque()
        self._busy = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preprocess")

    @property
    def queue_depth(self) -> int:
        return len(self._pending)

    async def run(self, prepare: Prepare, rows: Sequence[Any]) -> np.ndarray:
        """``prepare(rows)`` in the pool; raises what it raised, 503 when full, 504 late."""
        if len(self._pending) >= self._max_queue:
            raise QueueFull(f"preprocessing queue is full ({self._max_queue} requests)")
        loop = asyncio.get_running_loop()
        job = _Job(prepare, rows, _input_size(rows), loop.create_future())
        self._pending.append(job)
        self._dispatch(loop)
        timer = loop.call_later(self._timeout_s, self._expire, job.future)
        try:
            return await job.future
        finally:
            timer.cancel()
            if not job.future.done():  # cancelled: the client went away
                job.future.cancel()

    def _expire(self, future: asyncio.Future[np.ndarray]) -> None:
        if not future.done():
            future.set_exception(
                RequestTimedOut(f"preprocessing did not finish within {self._timeout_s:g} s")
            )

    def _dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self._pending and self._busy < self._workers:
            group = self._take()
            if not group:
                continue
            self._busy += 1
            handoff = loop.run_in_executor(self._executor, _prepare_group, group)
            handoff.add_done_callback(lambda done, g=group: self._finish(loop, g, done))

    def _take(self) -> list[_Job]:
        group: list[_Job] = []
        size = 0
        while self._pending and len(group) < GROUP_JOBS:
            job = self._pending[0]
            if job.future.done():
                self._pending.popleft()  # gave up while waiting: never run
                continue
            if group and size + job.size > GROUP_BYTES:
                break
            group.append(self._pending.popleft())
            size += job.size
        return group

    def _finish(self, loop: asyncio.AbstractEventLoop, group: list[_Job], done: Any) -> None:
        self._busy -= 1
        try:
            results = done.result()
        except BaseException as exc:  # the hand-off itself failed: fail its jobs
            results = [exc] * len(group)
        for job, result in zip(group, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        self._dispatch(loop)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _prepare_group(group: list[_Job]) -> list[np.ndarray | BaseException]:
    """Runs in a pool thread: each job on its own; a job's error fails only that job."""
    results: list[np.ndarray | BaseException] = []
    for job in group:
        if job.future.done():  # timed out or abandoned while its group waited
            results.append(RequestTimedOut("abandoned"))
            continue
        try:
            results.append(job.prepare(job.rows))
        except ServiceError as exc:
            results.append(exc)
        except Exception as exc:  # a bug in preparation fails its own request only
            results.append(exc)
    return results

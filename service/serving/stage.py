"""The preprocessing stage: decoding and preprocessing uploads in bounded pools of its own.

Untrusted, costly work (decoding an image, the preprocessing procedure) runs here,
neither on the event loop nor in a model's inference thread, so that one expensive
image delays only its own request. Jobs wait in one bounded queue (full: 503) and run
in one of two lanes, by their cost (``cost``, from the caller, in bytes of input):

* small jobs (a drawing, an MNIST crop: most traffic) in a pool of ``workers``
  threads; each hand-off takes what is waiting, up to ``GROUP_BYTES`` of it, so that
  one thread wake-up serves many requests;
* large jobs (a phone photo: ``LARGE_BYTES`` and more) one at a time in a worker
  process of their own at a lower CPU priority (``nice`` +10,
  ``service.serving.worker``): it holds no lock the event loop or the inference
  thread need, and the kernel serves them first. It starts with the service.

A job whose request has given up (timed out, client gone) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from service.errors import QueueFull, RequestTimedOut
from service.serving.subprocess_pool import SubprocessExecutor

GROUP_BYTES = 256 * 1024  # small inputs up to this much in all share one hand-off
GROUP_JOBS = 64
LARGE_BYTES = 256 * 1024  # from this cost on, a job runs in the large lane

Prepare = Callable[[Sequence[Any]], Any]


@dataclass(eq=False)
class _Job:
    prepare: Prepare
    rows: Sequence[Any]
    cost: int
    future: asyncio.Future[Any]
    enqueued_at: float = field(default_factory=time.monotonic)


class _Lane:
    """Jobs waiting for one pool, handed off a group at a time to ``workers`` workers."""

    def __init__(self, make_executor: Callable[[], Executor], workers: int, group_jobs: int):
        self._make_executor = make_executor
        self._executor: Executor | None = None
        self._workers = workers
        self._group_jobs = group_jobs
        self.pending: deque[_Job] = deque()
        self._busy = 0

    def dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.pending and self._busy < self._workers:
            group = self._take()
            if not group:
                continue
            if self._executor is None:
                self._executor = self._make_executor()
            self._busy += 1
            tasks = [(job.prepare, job.rows) for job in group]
            handoff = loop.run_in_executor(self._executor, prepare_all, tasks)
            handoff.add_done_callback(lambda done, g=group: self._finish(loop, g, done))

    def _take(self) -> list[_Job]:
        group: list[_Job] = []
        cost = 0
        while self.pending and len(group) < self._group_jobs:
            job = self.pending[0]
            if job.future.done():
                self.pending.popleft()  # gave up while waiting: never run
                continue
            if group and cost + job.cost > GROUP_BYTES:
                break
            group.append(self.pending.popleft())
            cost += job.cost
        return group

    def _finish(self, loop: asyncio.AbstractEventLoop, group: list[_Job], done: Any) -> None:
        self._busy -= 1
        try:
            results = done.result()
        except BaseException as exc:  # the hand-off itself failed (a pool that broke)
            results = [exc] * len(group)
        for job, result in zip(group, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        self.dispatch(loop)

    def warm_up(self) -> None:
        if self._executor is None:
            self._executor = self._make_executor()
        if isinstance(self._executor, SubprocessExecutor):
            self._executor.start()  # in the background; nobody waits for it

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


class PreprocessStage:
    def __init__(self, *, workers: int, max_queue: int, timeout_s: float) -> None:
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._small = _Lane(
            lambda: ThreadPoolExecutor(max_workers=workers, thread_name_prefix="preprocess"),
            workers,
            GROUP_JOBS,
        )
        self._large = _Lane(SubprocessExecutor, 1, 1)

    def start(self) -> None:
        """Start the large lane's process now, in the background, rather than at the
        first photo (whose answer would wait for it)."""
        self._large.warm_up()

    @property
    def queue_depth(self) -> int:
        return len(self._small.pending) + len(self._large.pending)

    async def run(self, prepare: Prepare, rows: Sequence[Any], cost: int = 0) -> Any:
        """``prepare(rows)`` in a pool; raises what it raised, 503 when full, 504 late.

        For the large lane, ``prepare`` and ``rows`` must pickle.
        """
        if self.queue_depth >= self._max_queue:
            raise QueueFull(f"preprocessing queue is full ({self._max_queue} requests)")
        loop = asyncio.get_running_loop()
        job = _Job(prepare, rows, cost, loop.create_future())
        lane = self._large if cost >= LARGE_BYTES else self._small
        lane.pending.append(job)
        lane.dispatch(loop)
        timer = loop.call_later(self._timeout_s, self._expire, job.future)
        try:
            return await job.future
        finally:
            timer.cancel()
            if not job.future.done():  # cancelled: the client went away
                job.future.cancel()

    def _expire(self, future: asyncio.Future[Any]) -> None:
        if not future.done():
            future.set_exception(
                RequestTimedOut(f"preprocessing did not finish within {self._timeout_s:g} s")
            )

    def close(self) -> None:
        self._small.close()
        self._large.close()


def prepare_all(tasks: list[tuple[Prepare, Sequence[Any]]]) -> list[Any]:
    """Runs in a pool: each task on its own; a task's error fails only that task."""
    results: list[Any] = []
    for prepare, rows in tasks:
        try:
            results.append(prepare(rows))
        except Exception as exc:  # a bad input, or a bug: its own request only
            results.append(exc)
    return results

"""The preprocessing stage: decoding and preprocessing uploads in bounded pools of its own.

Untrusted, costly work (decoding an image, the preprocessing procedure) runs here, in
worker processes of its own (``service.serving.worker``): never on the event loop,
never in a model's inference thread, and never holding the GIL they need, so that
an expensive image does not delay cheap ones. Jobs wait in one bounded queue
(full: 503) and run in one of two lanes, by their cost (``cost``, from the caller, in
bytes of input):

* small jobs (a drawing, an MNIST crop: most traffic) in ``workers`` processes; each
  hand-off takes what is waiting, up to ``GROUP_BYTES`` of it, so that one round trip
  serves many requests. A job is handed off at the end of the event loop's pass that
  queued it, not at once, so that even with a worker idle the requests parsed in the
  same pass go together (a hand-off's fixed cost, the pipe round trip, the wakeups and
  the batch it becomes, is paid once for all of them, at no added wait);
* large jobs (a phone photo: ``LARGE_BYTES`` and more) one at a time in a process at
  the lowest CPU priority (``nice`` 19), so that the kernel serves the rest first.
  They wait for one another, in arrival order: a request of many large images is one
  job, and holds the lane for all of them.

The processes start with the service; one that dies fails the jobs it held and is
started again for the next.

A job whose request has given up (timed out, client gone) is dropped before it runs;
in the large lane, where one job can hold many costly images, it is also stopped while
it runs (its worker process is killed, and started again for the next job).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from service.errors import QueueFull, RequestTimedOut
from service.serving.subprocess_pool import SubprocessExecutor

GROUP_BYTES = 256 * 1024  # small inputs up to this much in all share one hand-off
GROUP_JOBS = 64
LARGE_BYTES = 256 * 1024  # from this cost on, a job runs in the large lane
SMALL_NICENESS = 0
LARGE_NICENESS = 19  # the lowest: the kernel serves the event loop and inference first

Prepare = Callable[[Sequence[Any]], Any]


@dataclass(eq=False)
class _Job:
    prepare: Prepare
    rows: Sequence[Any]
    cost: int
    future: asyncio.Future[Any]  # the request's: it fails here, or goes on from on_ready
    on_ready: Callable[[Any], None] | None = None  # None: the prepared rows are the result


class _Lane:
    """Jobs waiting for ``workers`` worker processes, handed off a group at a time."""

    def __init__(
        self, niceness: int, workers: int, group_jobs: int, *, kill_abandoned: bool = False
    ) -> None:
        self._niceness = niceness
        self._kill_abandoned = kill_abandoned
        self._idle: list[SubprocessExecutor] = []
        self._all: list[SubprocessExecutor] = []
        self._workers = workers
        self._group_jobs = group_jobs
        self.pending: deque[_Job] = deque()
        self._dispatch_due = False  # a hand-off is scheduled for the end of this pass
        self._closed = False

    def _worker(self) -> SubprocessExecutor | None:
        if self._idle:
            return self._idle.pop()
        if len(self._all) < self._workers:
            worker = SubprocessExecutor(self._niceness)
            self._all.append(worker)
            return worker
        return None

    def dispatch_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """Hand off what is waiting once the event loop has run what is ready now."""
        if not self._dispatch_due:
            self._dispatch_due = True
            loop.call_soon(self._dispatch_now, loop)

    def _dispatch_now(self, loop: asyncio.AbstractEventLoop) -> None:
        self._dispatch_due = False
        if not self._closed:
            self.dispatch(loop)

    def dispatch(self, loop: asyncio.AbstractEventLoop) -> None:
        while self.pending:
            group = self._take()
            if not group:
                continue
            worker = self._worker()
            if worker is None:
                self.pending.extendleft(reversed(group))  # all busy: they wait their turn
                return
            tasks = [(job.prepare, job.rows) for job in group]
            handoff = loop.run_in_executor(worker, prepare_all, tasks)
            handoff.add_done_callback(
                lambda done, g=group, w=worker: self._finish(loop, g, w, done)
            )
            if self._kill_abandoned:
                for job in group:
                    job.future.add_done_callback(
                        lambda _, w=worker, h=handoff: None if h.done() else w.kill()
                    )

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

    def _finish(
        self,
        loop: asyncio.AbstractEventLoop,
        group: list[_Job],
        worker: SubprocessExecutor,
        done: Any,
    ) -> None:
        self._idle.append(worker)
        try:
            results = done.result()
        except BaseException as exc:  # the worker died during the hand-off
            results = [exc] * len(group)
        for job, result in zip(group, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            elif job.on_ready is None:
                job.future.set_result(result)
            else:
                try:
                    job.on_ready(result)  # the next stage takes it, with the same future
                except Exception as exc:  # it refused (a full queue, a shutdown)
                    job.future.set_exception(exc)
        self.dispatch(loop)

    def warm_up(self) -> None:
        while len(self._all) < self._workers:
            worker = self._worker()
            assert worker is not None
            worker.start()  # in the background; nobody waits for it
            self._idle.append(worker)

    def close(self) -> None:
        self._closed = True
        for worker in self._all:
            worker.shutdown(wait=True, cancel_futures=True)
        self._all.clear()
        self._idle.clear()


class PreprocessStage:
    def __init__(self, *, workers: int, max_queue: int, timeout_s: float) -> None:
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._small = _Lane(SMALL_NICENESS, workers, GROUP_JOBS)
        # One job at a time: a job abandoned while it runs (504, the client gone) is
        # stopped by killing its worker, which the next job starts again.
        self._large = _Lane(LARGE_NICENESS, 1, 1, kill_abandoned=True)

    def start(self) -> None:
        """Start the worker processes now, in the background, rather than at the first
        upload (whose answer would wait for them)."""
        self._small.warm_up()
        self._large.warm_up()

    @property
    def queue_depth(self) -> int:
        return len(self._small.pending) + len(self._large.pending)

    async def run(self, prepare: Prepare, rows: Sequence[Any], cost: int = 0) -> Any:
        """``prepare(rows)`` in a pool; raises what it raised, 503 when full, 504 late.

        For the large lane, ``prepare`` and ``rows`` must pickle.
        """
        future = asyncio.get_running_loop().create_future()
        self.submit(prepare, rows, cost, future)
        timer = future.get_loop().call_later(self._timeout_s, self._expire, future)
        try:
            return await future
        finally:
            timer.cancel()
            if not future.done():  # cancelled: the client went away
                future.cancel()

    def submit(
        self,
        prepare: Prepare,
        rows: Sequence[Any],
        cost: int,
        future: asyncio.Future[Any],
        on_ready: Callable[[Any], None] | None = None,
    ) -> None:
        """Queue ``prepare(rows)``; then ``on_ready(prepared)`` on the event loop, or
        ``future`` gets the prepared rows (or the error). ``future`` is the caller's,
        who times it out: a job whose future is done is dropped."""
        if self.queue_depth >= self._max_queue:
            raise QueueFull(f"preprocessing queue is full ({self._max_queue} requests)")
        lane = self._large if cost >= LARGE_BYTES else self._small
        lane.pending.append(_Job(prepare, rows, cost, future, on_ready))
        lane.dispatch_soon(future.get_loop())

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

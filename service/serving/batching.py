"""Dynamic batching: Triton's delay-0 batcher with a bounded queue, in asyncio.

Requests from every connection join one bounded queue per model. A single worker
takes everything waiting (up to ``max_batch_size`` rows), runs one inference call
for the whole batch in its own thread, and resolves each request's future. When
the model is idle a request runs at once; under load, batches grow by themselves
while the previous batch runs. ``max_delay_s > 0`` waits up to that long to fill
a batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from service.errors import InferenceFailed, ModelNotReady, QueueFull, RequestTimedOut
from service.logs import log_event

logger = logging.getLogger(__name__)

RunBatch = Callable[[list[Sequence[Any]]], Sequence[Any]]


@dataclass(eq=False)
class _Pending:
    rows: Sequence[Any]
    future: asyncio.Future[Any]
    enqueued_at: float = field(default_factory=time.monotonic)


def _noop_batch(rows: int, seconds: float) -> None:
    return None


def _noop_depth(depth: int) -> None:
    return None


class DynamicBatcher:
    """Batches concurrent ``submit`` calls into calls of ``run_batch``.

    ``run_batch`` runs in a worker thread. It gets one row sequence per request and
    returns one result per request, in order; a result that is an exception fails
    only its own request.
    """

    def __init__(
        self,
        name: str,
        run_batch: RunBatch | None,
        *,
        max_batch_size: int,
        max_delay_s: float,
        max_queue: int,
        timeout_s: float,
        on_batch: Callable[[int, float], None] = _noop_batch,
        on_queue_depth: Callable[[int], None] = _noop_depth,
    ) -> None:
        self.name = name
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_delay_s = max_delay_s
        self._max_queue = max_queue
        self._timeout_s = timeout_s
        self._on_batch = on_batch
        self._on_queue_depth = on_queue_depth
        self._pending: deque[_Pending] = deque()
        self._forming = 0  # requests taken into a batch that is waiting to fill
        self._wakeup = asyncio.Event()
        self._closing = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._worker: asyncio.Task[None] | None = None

    def set_runner(self, run_batch: RunBatch | None) -> None:
        """Set what runs each batch, when it could not be given at construction."""
        self._run_batch = run_batch

    @property
    def queue_depth(self) -> int:
        """Requests waiting to run: queued, or in a batch that is still filling."""
        return len(self._pending) + self._forming

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(
                self._work(), name=f"batcher-{self.name}"
            )

    async def stop(self) -> None:
        """Refuse new requests, finish every queued one, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, rows: Sequence[Any]) -> Any:
        """Queue one request's rows and wait for its result.

        Raises :class:`QueueFull` (503) when the queue is full, :class:`RequestTimedOut`
        (504) after the timeout, or whatever error ``run_batch`` gave this request.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self.enqueue(rows, future)
        # One timer handle per request: cheaper than asyncio.wait_for's extra future.
        timer = loop.call_later(self._timeout_s, self.expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def enqueue(self, rows: Sequence[Any], future: asyncio.Future[Any]) -> None:
        """Queue rows whose result goes to ``future`` (whose owner times it out).

        Raises :class:`ModelNotReady` or :class:`QueueFull` when they cannot be queued.
        """
        if self._closing:
            raise ModelNotReady(f"model '{self.name}' is shutting down")
        if self.queue_depth >= self._max_queue:
            raise QueueFull(f"model '{self.name}' queue is full ({self._max_queue} requests)")
        self._pending.append(_Pending(rows, future))
        self._on_queue_depth(self.queue_depth)
        self._wakeup.set()

    def expire(self, future: asyncio.Future[Any]) -> None:
        """Fail a request that is still waiting; the worker will skip it."""
        if not future.done():
            future.set_exception(
                RequestTimedOut(f"model '{self.name}' did not answer within {self._timeout_s:g} s")
            )

    async def _work(self) -> None:
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            batch = self._take()
            if self._max_delay_s > 0:
                self._forming = len(batch)
                self._on_queue_depth(self.queue_depth)
                await self._fill(batch)
                self._forming = 0
            self._on_queue_depth(self.queue_depth)
            live = [p for p in batch if not p.future.done()]  # timed out or client gone
            if live:
                await self._run(live)

    def _rows_in(self, batch: list[_Pending]) -> int:
        return sum(len(p.rows) for p in batch)

    def _take(self, batch: list[_Pending] | None = None) -> list[_Pending]:
        """Move waiting requests into ``batch`` while they fit in ``max_batch_size`` rows.

        The first request is always taken, even if it alone exceeds the limit.
        """
        batch = [] if batch is None else batch
        rows = self._rows_in(batch)
        while self._pending:
            size = len(self._pending[0].rows)
            if batch and rows + size > self._max_batch_size:
                break
            batch.append(self._pending.popleft())
            rows += size
        return batch

    async def _fill(self, batch: list[_Pending]) -> None:
        """Wait up to ``max_delay_s`` for more requests while the batch has room."""
        deadline = time.monotonic() + self._max_delay_s
        while self._rows_in(batch) < self._max_batch_size and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return
            before = len(batch)
            self._take(batch)
            self._forming = len(batch)
            self._on_queue_depth(self.queue_depth)
            if len(batch) == before and self._pending:
                return  # the next request does not fit: run what we have

    async def _run(self, live: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(
                self._executor, self._run_batch, [p.rows for p in live]
            )
            if len(results) != len(live):
                raise InferenceFailed(
                    f"model '{self.name}' returned {len(results)} results for {len(live)} requests"
                )
        except Exception as exc:
            log_event(
                logger,
                "inference_failed",
                logging.ERROR,
                model=self.name,
                batch_requests=len(live),
                error=repr(exc),
            )
            detail = exc.detail if isinstance(exc, InferenceFailed) else "inference failed"
            results = [InferenceFailed(detail) for _ in live]
        self._on_batch(self._rows_in(live), time.perf_counter() - started)
        for pending, result in zip(live, results, strict=True):
            if pending.future.done():
                continue
            if isinstance(result, BaseException):
                pending.future.set_exception(result)
            else:
                pending.future.set_result(result)

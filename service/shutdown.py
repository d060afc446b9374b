"""SIGTERM in two phases: first unready while the work in flight drains, then the
server's own graceful shutdown.

uvicorn's answer to SIGTERM is to close the listening socket at once and finish what
is in flight. A load balancer then learns of the shutdown only from refused
connections. Here, as in Triton, the first SIGTERM starts a drain instead:

1. ``/readyz`` (and the V2 readiness route) answer 503 "shutting down" at once, so
   that load balancers take this server out of rotation; every other request is still
   served, since a balancer keeps sending until its next probe;
2. once no request is in progress (``WorkGauge.in_flight`` is 0), or after
   ``drain_timeout_s``, uvicorn's handler runs: the socket closes, what is left
   finishes (up to its graceful timeout), the lifespan stops the batchers, exit 0.

A second SIGTERM, and SIGINT (Ctrl-C) always, skip the drain. Installed by the app's
lifespan, which runs in each worker process's main thread, after uvicorn has set its
own handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from uvicorn.server import Server

from service.logs import log_event

logger = logging.getLogger(__name__)

POLL_S = 0.02
Handler = Callable[[int, FrameType | None], Any]


class Drain:
    """The first SIGTERM's drain phase, before ``then`` (the server's own handler)."""

    def __init__(
        self,
        begin: Callable[[], None],
        in_flight: Callable[[], int],
        then: Handler,
        timeout_s: float,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._begin = begin
        self._in_flight = in_flight
        self._then = then
        self._timeout_s = timeout_s
        self._loop = loop
        self._task: asyncio.Task[None] | None = None
        self.started = False

    def handle(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler: runs in the main thread, between two bytecodes."""
        if self.started or sig != signal.SIGTERM:
            self._then(sig, frame)  # a second signal: no more waiting
            return
        self.started = True
        self._begin()
        self._loop.call_soon_threadsafe(self._start, sig, frame)

    def _start(self, sig: int, frame: FrameType | None) -> None:
        self._task = self._loop.create_task(self._wait_then(sig, frame), name="drain")

    async def _wait_then(self, sig: int, frame: FrameType | None) -> None:
        started = time.monotonic()
        deadline = started + self._timeout_s
        log_event(logger, "draining", in_flight=self._in_flight())
        while self._in_flight() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)  # polling a counter: nothing to wake on
        log_event(
            logger,
            "drained",
            seconds=round(time.monotonic() - started, 3),
            in_flight=self._in_flight(),
        )
        self._then(sig, frame)


@contextlib.contextmanager
def drain_on_sigterm(
    begin: Callable[[], None], in_flight: Callable[[], int], timeout_s: float
) -> Iterator[Drain | None]:
    """While the block runs, SIGTERM drains first (see the module's docstring).

    Only where uvicorn's server has installed its SIGTERM handler (in this, the main
    thread); elsewhere (the app driven in-process, a Ray replica) nothing changes.
    """
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except ValueError:  # not the main thread
        previous = None
    if not isinstance(getattr(previous, "__self__", None), Server) or timeout_s <= 0:
        yield None
        return
    drain = Drain(begin, in_flight, previous, timeout_s, asyncio.get_running_loop())
    try:
        signal.signal(signal.SIGTERM, drain.handle)
    except ValueError:  # not the main thread
        yield None
        return
    try:
        yield drain
    finally:
        if signal.getsignal(signal.SIGTERM) == drain.handle:
            signal.signal(signal.SIGTERM, previous)

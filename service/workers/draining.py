"""Readiness goes at the first SIGTERM, not when the drain is over.

uvicorn answers SIGTERM by closing its listening sockets and draining the requests in
progress (up to 30 s); only then does the app's lifespan shut down. Until this hook,
the runtime said ``ready`` all through the drain: the gRPC server (which stops in the
lifespan) kept answering ``ServerReady: true`` and taking new calls, and a kept-alive
connection busy with a request could still read 200 from ``/readyz``. The hook chains
onto the handler uvicorn installed and marks the runtime as stopping at once, so that
every readiness check (``/readyz``, ``/v2/health/ready``, gRPC ``ServerReady``, the
other workers' view of this one) says 503/false while the work in flight drains.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol


class Stoppable(Protocol):
    stopping: bool


def mark_stopping_on_sigterm(runtime: Stoppable) -> Callable[[], None]:
    """Chain onto this process's SIGTERM handler; returns the function that undoes it.

    Only from the main thread (where signals are handled), and only over a handler
    that is a Python callable (the server's): elsewhere (tests in a thread, a Ray
    replica) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return _nothing
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return _nothing

    def on_sigterm(signum: int, frame: Any) -> None:
        runtime.stopping = True
        previous(signum, frame)

    signal.signal(signal.SIGTERM, on_sigterm)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    return undo


def _nothing() -> None:
    pass

"""An ``Executor`` that runs each call in one worker process of its own
(``service.serving.worker``), started as a plain subprocess.

Unlike ``ProcessPoolExecutor`` it imports nothing of the parent's ``__main__`` and
inherits none of its threads or locks: the worker is a fresh interpreter. Calls run one
at a time, in order. A worker that dies fails the call it was running, and the next
call starts a new one.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from service.serving.worker import read_frame, write_frame


class WorkerDied(RuntimeError):
    """The worker process exited while it held a call."""


class SubprocessExecutor(Executor):
    def __init__(self, niceness: int = 19) -> None:
        self._niceness = niceness
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-io")
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if kwargs:
            raise TypeError("SubprocessExecutor.submit takes positional arguments only")
        return self._calls.submit(self._call, fn, args)

    def start(self) -> None:
        """Start the worker now (it is started at the first call otherwise)."""
        self._calls.submit(self._ensure_process)

    def _ensure_process(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "service.serving.worker", str(self._niceness)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    close_fds=True,
                )
            return self._process

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        process = self._ensure_process()
        assert process.stdin is not None and process.stdout is not None
        try:
            write_frame(process.stdin, pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL))
            frame = read_frame(process.stdout)
        except (BrokenPipeError, OSError):
            frame = None
        if frame is None:
            process.kill()
            process.wait()
            raise WorkerDied("the preprocessing worker process exited during the call")
        ok, value = pickle.loads(frame)
        if not ok:
            raise value
        return value

    def kill(self) -> None:
        """Kill the worker now, abandoning its call (it fails with :class:`WorkerDied`);
        the next call starts a new one."""
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.kill()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._calls.shutdown(wait=wait, cancel_futures=cancel_futures)
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()  # the worker exits at the end of its input
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

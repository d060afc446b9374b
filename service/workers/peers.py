"""What the server workers of one ``digitpass-serve`` share: a run folder.

``digitpass-serve`` makes the folder before the workers start (``DIGITPASS_RUN_DIR``)
and removes it when they are all gone. In it:

* ``worker-<pid>.json``, one per worker, rewritten (atomically) whenever its state
  changes: ready or not, the versions it serves, the last reload generation it ran;
* ``reload-generation``: a number that ``POST /admin/reload`` raises. Every worker
  watches it and rescans the repository when it goes up, so a reload asked of any
  worker reaches them all; the one asked waits until every live worker has run it.

``/readyz``, whichever worker answers, reads every live worker's file: ready only when
all the workers the server runs are up and ready. A worker that died (uvicorn's
supervisor starts another) leaves a file whose process is gone; it counts as not
ready until its replacement is.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.logs import log_event
from service.workers.processes import pid_alive

if TYPE_CHECKING:
    from service.serving.runtime import ServingRuntime

logger = logging.getLogger(__name__)

GENERATION_FILE = "reload-generation"
WATCH_INTERVAL_S = 0.05
STATUS_PREFIX = "worker-"


@dataclass(frozen=True)
class WorkerState:
    pid: int
    ready: bool
    stopping: bool
    models: dict[str, int]
    generation: int


@dataclass(frozen=True)
class Readiness:
    ready: int  # live workers that are ready
    expected: int
    models: dict[str, int]  # each model's lowest version among the ready workers

    @property
    def all_ready(self) -> bool:
        return self.ready >= self.expected

    def describe(self) -> str:
        return f"{self.ready} of {self.expected} workers ready"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_generation(folder: Path) -> int:
    try:
        return int((folder / GENERATION_FILE).read_text() or 0)
    except (OSError, ValueError):
        return 0


def bump_generation(folder: Path) -> int:
    """Raise the reload generation by one, under a lock; the new value."""
    with _locked(folder / (GENERATION_FILE + ".lock")):
        value = read_generation(folder) + 1
        _write_atomically(folder / GENERATION_FILE, str(value))
    return value


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def read_states(folder: Path) -> list[WorkerState]:
    """Every live worker's last state (files of dead workers are skipped)."""
    states = []
    for path in folder.glob(STATUS_PREFIX + "*.json"):
        try:
            data = json.loads(path.read_text())
            state = WorkerState(
                pid=int(data["pid"]),
                ready=bool(data["ready"]),
                stopping=bool(data["stopping"]),
                models={str(k): int(v) for k, v in data["models"].items()},
                generation=int(data["generation"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # being replaced right now, or not ours
        if pid_alive(state.pid):
            states.append(state)
        else:
            path.unlink(missing_ok=True)  # its process is gone: uvicorn starts another
    return states


class WorkerPeers:
    """This worker's view of the others, and its part in the shared state.

    ``snapshot`` gives this worker's own state; ``reload`` runs this worker's rescan.
    """

    def __init__(
        self,
        folder: Path,
        expected: int,
        snapshot: Callable[[], tuple[bool, bool, dict[str, int]]],
        reload: Callable[[], Any],
    ) -> None:
        self.folder = folder
        self.expected = expected
        self._snapshot = snapshot
        self._reload = reload
        self.pid = os.getpid()
        self._status = folder / f"{STATUS_PREFIX}{self.pid}.json"
        self._generation = read_generation(folder)  # reloads asked before this worker began
        self._published: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    def publish(self) -> None:
        """Write this worker's state, if it changed."""
        ready, stopping, models = self._snapshot()
        state = {
            "pid": self.pid,
            "ready": ready,
            "stopping": stopping,
            "models": models,
            "generation": self._generation,
        }
        if state != self._published:
            _write_atomically(self._status, json.dumps(state))
            self._published = state

    def start(self) -> None:
        self.publish()
        self._task = asyncio.create_task(self._watch(), name="worker-peers")

    async def stop(self) -> None:
        """At shutdown: stop watching and withdraw this worker's state."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._status.unlink(missing_ok=True)

    async def _watch(self) -> None:
        while True:
            try:
                await self._catch_up()
                self.publish()
            except Exception as exc:  # the watch must never die
                log_event(logger, "worker_peers_failed", logging.ERROR, error=repr(exc))
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def _catch_up(self) -> None:
        wanted = read_generation(self.folder)
        if wanted > self._generation:
            await self._reload()
            self._generation = wanted
            log_event(logger, "worker_reloaded", generation=wanted, pid=self.pid)

    async def reload_everywhere(self, timeout_s: float) -> bool:
        """After this worker's own rescan: have every other live worker rescan too, and
        wait (up to ``timeout_s``) until they have. False when some did not in time."""
        generation = bump_generation(self.folder)
        self._generation = generation
        self.publish()
        deadline = time.monotonic() + timeout_s
        while True:
            behind = [s.pid for s in read_states(self.folder) if s.generation < generation]
            if not behind:
                return True
            if time.monotonic() >= deadline:
                log_event(logger, "reload_not_everywhere", logging.WARNING, workers=behind)
                return False
            await asyncio.sleep(WATCH_INTERVAL_S)

    def readiness(self) -> Readiness:
        """How many of the expected workers are live and ready (this one included)."""
        self.publish()
        states = read_states(self.folder)
        ready = [s for s in states if s.ready and not s.stopping]
        models: dict[str, int] = {}
        for state in ready:
            for name, version in state.models.items():
                models[name] = min(version, models.get(name, version))
        return Readiness(ready=len(ready), expected=self.expected, models=models)


def join_peers(runtime: ServingRuntime) -> WorkerPeers | None:
    """This worker's part in its server's run folder; None when it runs alone."""
    settings = runtime.settings
    if settings.run_dir is None:
        return None
    from service.workers.gpus import pin_worker_gpu

    # Before any model loads: one GPU per worker (one worker per GPU with workers=auto).
    gpu = pin_worker_gpu(settings.run_dir)
    if gpu is not None:
        log_event(logger, "worker_gpu", gpu=gpu, pid=os.getpid())

    def snapshot() -> tuple[bool, bool, dict[str, int]]:
        models = {name: served.model.number for name, served in runtime.served.items()}
        return runtime.ready, runtime.stopping, models

    return WorkerPeers(settings.run_dir, settings.resolved_workers(), snapshot, runtime.reload)

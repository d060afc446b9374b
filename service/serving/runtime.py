"""Everything the lifespan owns: the registry, the served versions and their batchers,
the preprocessing stage, and the reload poller.

Every version a model's policy admits is served, each with its own batcher; a request
without a version goes to the highest one. A request leases the version it starts with,
so its rows are prepared for that version and run on it even if a newer one is swapped
in meanwhile; a replaced version's batcher stops once its last lease is returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from service.errors import ModelNotReady, NotFound
from service.logs import log_event
from service.metrics import ServiceMetrics
from service.models.kinds import KindOptions, Prediction
from service.models.loaded import LoadedModel, load_model
from service.models.registry import LoadFailure, ModelRegistry, ScanReport
from service.serving.batching import DynamicBatcher
from service.serving.collate import collate, split
from service.serving.stage import PreprocessStage
from service.settings import Settings

logger = logging.getLogger(__name__)


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's ``malloc_trim``), so that an
    unloaded version's memory leaves the process's RSS too; a no-op elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


class ServedModel:
    """One loaded version being served: its model, its batcher, and its leases."""

    def __init__(self, model: LoadedModel, batcher: DynamicBatcher) -> None:
        self.model = model
        self.batcher = batcher
        self.leases = 0
        self.retired = False

    def run_batch(self, items: list[Sequence[Any]]) -> list[np.ndarray]:
        """Called in the batcher's inference thread."""
        collated = collate(items, self.model.kind.stack)
        return split(self.model.run(collated.batch), collated)


class ServingRuntime:
    """Served models and their batchers, started and stopped by the app's lifespan."""

    def __init__(
        self,
        settings: Settings,
        metrics: ServiceMetrics,
        on_served_changed: Callable[[dict[str, LoadedModel]], list[tuple[str, str]]] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._on_served_changed = on_served_changed
        loader = partial(
            load_model,
            backend=settings.backend,
            device=settings.device,
            intra_op_threads=settings.resolved_intra_op_threads(),
            options=KindOptions(max_image_pixels=settings.max_image_pixels),
        )
        self.registry = ModelRegistry(
            settings.model_repository, backend=settings.backend, loader=loader
        )
        self.stage = PreprocessStage(
            workers=settings.resolved_preprocess_workers(),
            max_queue=settings.max_queue,
            timeout_s=settings.request_timeout_s,
        )
        self.versions: dict[str, dict[int, ServedModel]] = {}
        self.started = False
        self.stopping = False
        self.draining = False  # SIGTERM: unready while the work in flight finishes
        self._poller: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._reload_lock = asyncio.Lock()
        self._gauged: set[tuple[str, int]] = set()
        self._depths: dict[str, dict[int, int]] = {}  # per model, each version's queue

    @property
    def served(self) -> dict[str, ServedModel]:
        """Each model's default version: its highest served one."""
        return {name: versions[max(versions)] for name, versions in self.versions.items()}

    def all_served(self) -> list[ServedModel]:
        return [s for versions in self.versions.values() for s in versions.values()]

    def lookup(self, name: str, version: int | None = None) -> ServedModel:
        """The served ``version`` of ``name`` (None: the highest); 404 or 503 if none."""
        versions = self.versions.get(name)
        if not versions:
            if name in self.registry.unavailable():
                raise ModelNotReady(f"model '{name}' is not loaded")
            raise NotFound(f"unknown model '{name}'")
        if version is None:
            return versions[max(versions)]
        served = versions.get(version)
        if served is None:
            listed = ", ".join(str(v) for v in sorted(versions))
            raise NotFound(f"model '{name}' has no version {version} served (served: {listed})")
        return served

    async def start(self) -> None:
        await self.reload()
        if any(s.model.kind.heavy_inputs for s in self.all_served()):
            self.stage.start()  # the large lane's worker, so that no photo waits for it
        self.started = True
        if self.settings.reload_interval_s > 0:
            self._poller = asyncio.create_task(self._poll(), name="model-poller")
        log_event(
            logger,
            "service_started",
            backend=self.settings.backend,
            models={n: sorted(v) for n, v in self.versions.items()},
            unavailable=self.registry.unavailable(),
            max_batch_size=self.settings.max_batch_size,
            max_batch_delay_ms=self.settings.max_batch_delay_ms,
            intra_op_threads=self.settings.resolved_intra_op_threads(),
            preprocess_workers=self.settings.resolved_preprocess_workers(),
        )

    async def stop(self) -> None:
        """Stop polling, then let every batcher finish what is queued."""
        self.stopping = True
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await asyncio.gather(*(s.batcher.stop() for s in self.all_served()))
        await asyncio.gather(*self._retiring)
        self.stage.close()
        log_event(logger, "service_stopped")

    def begin_drain(self) -> None:
        """Answer not ready from now on (the server is going away); keep serving."""
        self.draining = True

    @property
    def ready(self) -> bool:
        """Ready once the first scan is done and something is served, until shutdown."""
        return self.started and not (self.stopping or self.draining) and bool(self.versions)

    async def reload(self) -> list[LoadFailure]:
        """Rescan the repository in a thread, off the event loop; swap new versions in."""
        async with self._reload_lock:
            report = await asyncio.to_thread(self.registry.scan)
            self._swap_in(report)
            return report.failures

    def _swap_in(self, report: ScanReport) -> None:
        for model in report.loaded:
            self.metrics.queue_depth.labels(model.name)  # its sample, in load order
            batcher = DynamicBatcher(
                model.name,
                None,  # set below: the batch runs on this served version
                max_batch_size=self.settings.max_batch_size,
                max_delay_s=self.settings.max_batch_delay_s,
                max_queue=self.settings.max_queue,
                timeout_s=self.settings.request_timeout_s,
                on_batch=partial(self._record_batch, model.name),
                on_queue_depth=partial(self._record_queue_depth, model.name, model.number),
            )
            served = ServedModel(model, batcher)
            batcher.set_runner(served.run_batch)
            batcher.start()
            versions = self.versions.setdefault(model.name, {})
            old = versions.get(model.number)
            versions[model.number] = served
            if old is not None:
                self._retire(old)
            self.metrics.reloads.labels(model.name, "loaded").inc()
        for failure in report.failures:
            self.metrics.reloads.labels(failure.name, "failed").inc()
        for name, number in report.unloaded:
            self._unserve(name, number)
        for name in report.removed:
            for number in list(self.versions.get(name, ())):
                self._unserve(name, number)
        if report.changed and self._on_served_changed is not None:
            refused = self._on_served_changed({n: s.model for n, s in self.served.items()})
            for name, reason in refused:
                self.registry.refuse(name, reason)
                for number in list(self.versions.get(name, ())):
                    self._unserve(name, number)
        self._publish_versions()

    def _unserve(self, name: str, number: int) -> None:
        versions = self.versions.get(name, {})
        served = versions.pop(number, None)
        if not versions:
            self.versions.pop(name, None)
        if served is not None:
            self._retire(served)

    def _publish_versions(self) -> None:
        """The version gauges: each model's default version, and every served one."""
        gauge, served_gauge = self.metrics.model_version, self.metrics.model_version_served
        shown = self._gauged
        now = {(n, v) for n, versions in self.versions.items() for v in versions}
        for name, number in sorted(shown - now):
            served_gauge.labels(name, str(number)).set(0)
        for name, number in sorted(now):  # in order: the exposition lists them so
            served_gauge.labels(name, str(number)).set(1)
        for name in {n for n, _ in shown} - set(self.versions):
            gauge.labels(name).set(0)
        for name, versions in self.versions.items():
            gauge.labels(name).set(max(versions))
        self._gauged = now

    def _retire(self, served: ServedModel) -> None:
        served.retired = True
        if served.leases == 0:
            self._stop_later(served)

    def _stop_later(self, served: ServedModel) -> None:
        task = asyncio.get_running_loop().create_task(self._stop_and_release(served))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _stop_and_release(served: ServedModel) -> None:
        """Stop the batcher, then break its cycle with the served version: what was
        loaded at startup is exempt from the garbage collector (``settle_heap``), so
        the version's memory goes back once nothing refers to it."""
        await served.batcher.stop()
        served.batcher.set_runner(None)
        del served
        gc.collect()
        release_free_memory()

    async def predict(
        self,
        name: str,
        rows: Sequence[Any],
        version: int | None = None,
        *,
        prepared: bool = False,
    ) -> Prediction:
        """Prepare ``rows`` for the served ``version`` of ``name`` (None: the highest),
        run them, return the answers. ``prepared``: the rows are model input already."""
        served = self.lookup(name, version)
        served.leases += 1
        try:
            kind = served.model.kind
            inputs: Sequence[Any] = rows
            if prepared:
                answers = await served.batcher.submit(rows)
            elif kind.heavy_inputs:
                inputs, answers = await self._prepare_and_run(served, rows)
            else:
                inputs = kind.prepare(rows)
                answers = await served.batcher.submit(inputs)
        finally:
            served.leases -= 1
            if served.retired and served.leases == 0:
                self._stop_later(served)
        model = served.model
        return Prediction(answers, model.name, model.number, model.labels, model.kind, inputs)

    async def _prepare_and_run(
        self, served: ServedModel, rows: Sequence[Any]
    ) -> tuple[Any, np.ndarray]:
        """Through the preprocessing stage into the batcher, as one future with one time
        limit: the stage hands each prepared job straight to the batcher, on the loop."""
        kind = served.model.kind
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        prepared: list[Any] = []

        def to_batcher(rows_ready: Any) -> None:
            prepared.append(rows_ready)
            served.batcher.enqueue(rows_ready, future)

        self.stage.submit(kind.prepare, rows, kind.cost(rows), future, to_batcher)
        timer = future.get_loop().call_later(
            self.settings.request_timeout_s, served.batcher.expire, future
        )
        try:
            answers = await future
        finally:
            timer.cancel()
            if not future.done():  # the client went away: drop the work wherever it is
                future.cancel()
        return prepared[0], answers

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.reload()
            except Exception as exc:  # polling must never die
                log_event(logger, "reload_failed", logging.ERROR, error=repr(exc))

    def _record_queue_depth(self, name: str, number: int, depth: int) -> None:
        """``digitpass_queue_depth`` of a model: its served versions' queues together."""
        depths = self._depths.setdefault(name, {})
        depths[number] = depth
        self.metrics.queue_depth.labels(name).set(sum(depths.values()))

    def _record_batch(self, name: str, rows: int, seconds: float) -> None:
        self.metrics.batch_size.labels(name).observe(rows)
        self.metrics.inference_duration.labels(name).observe(seconds)

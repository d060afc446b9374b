"""Everything the lifespan owns: the registry, one batcher per model, the poller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import Any

from service.batching import DynamicBatcher
from service.logs import log_event
from service.metrics import ServiceMetrics
from service.model import LoadedModel, load_model
from service.registry import LoadFailure, ModelRegistry
from service.settings import Settings

logger = logging.getLogger(__name__)

MODEL_NAMES = ("pass", "digit")


class ServingRuntime:
    """Loaded models and their batchers, started and stopped by the app's lifespan."""

    def __init__(self, settings: Settings, metrics: ServiceMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        loader = partial(
            load_model,
            backend=settings.backend,
            device=settings.device,
            intra_op_threads=settings.resolved_intra_op_threads(),
            max_image_pixels=settings.max_image_pixels,
        )
        self.registry = ModelRegistry(
            settings.model_repository,
            MODEL_NAMES,
            backend=settings.backend,
            loader=loader,
            on_loaded=self._record_loaded,
            on_failed=self._record_failed,
        )
        self.batchers: dict[str, DynamicBatcher] = {}
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.reload()
        for name in MODEL_NAMES:
            batcher = DynamicBatcher(
                name,
                partial(self._run_batch, name),
                max_batch_size=self.settings.max_batch_size,
                max_delay_s=self.settings.max_batch_delay_s,
                max_queue=self.settings.max_queue,
                timeout_s=self.settings.request_timeout_s,
                on_batch=partial(self._record_batch, name),
                on_queue_depth=self.metrics.queue_depth.labels(name).set,
            )
            batcher.start()
            self.batchers[name] = batcher
        if self.settings.reload_interval_s > 0:
            self._poller = asyncio.create_task(self._poll(), name="model-poller")
        log_event(
            logger,
            "service_started",
            backend=self.settings.backend,
            models={n: m.describe() for n, m in self.registry.loaded().items()},
            max_batch_size=self.settings.max_batch_size,
            max_batch_delay_ms=self.settings.max_batch_delay_ms,
            intra_op_threads=self.settings.resolved_intra_op_threads(),
        )

    async def stop(self) -> None:
        """Stop polling, then let every batcher finish what is queued."""
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await asyncio.gather(*(b.stop() for b in self.batchers.values()))
        log_event(logger, "service_stopped")

    async def reload(self) -> list[LoadFailure]:
        """Rescan the repository in a thread, off the event loop."""
        return await asyncio.to_thread(self.registry.reload)

    async def predict(self, name: str, rows: list[Any]) -> Any:
        self.registry.get(name)  # 503 at once when the model is not loaded
        return await self.batchers[name].submit(rows)

    def _run_batch(self, name: str, items: list[Any]) -> list[Any]:
        # Resolved per batch: a swap takes effect at the next batch boundary.
        return self.registry.get(name).predict(items)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            try:
                await self.reload()
            except Exception as exc:  # polling must never die
                log_event(logger, "reload_failed", logging.ERROR, error=repr(exc))

    def _record_batch(self, name: str, rows: int, seconds: float) -> None:
        self.metrics.batch_size.labels(name).observe(rows)
        self.metrics.inference_duration.labels(name).observe(seconds)

    def _record_loaded(self, model: LoadedModel) -> None:
        self.metrics.model_version.labels(model.name).set(model.version.version)
        self.metrics.reloads.labels(model.name, "loaded").inc()

    def _record_failed(self, failure: LoadFailure) -> None:
        self.metrics.reloads.labels(failure.name, "failed").inc()

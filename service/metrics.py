"""Prometheus metrics, in a registry of the app's own (no global state).

With several worker processes (``digitpass-serve --workers N``), each process writes
its samples to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, switched on by that variable before the workers start) and a
scrape, whichever process answers it, reads all of them: counters and histograms
summed over every process that ever served, gauges over the live ones.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

__all__ = ["CONTENT_TYPE_LATEST", "ServiceMetrics"]


class ServiceMetrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "digitpass_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_latency = Histogram(
            "digitpass_http_request_duration_seconds",
            "HTTP request latency by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "digitpass_inference_batch_size",
            "Rows per inference call.",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.inference_duration = Histogram(
            "digitpass_inference_duration_seconds",
            "Time for one batch in the model's inference thread (uploads are decoded and "
            "preprocessed before, in the preprocessing stage).",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "digitpass_queue_depth",
            "Requests waiting for a batch (all worker processes together).",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.model_version = Gauge(
            "digitpass_model_version",
            "Default version of each model now being served: the highest its policy "
            "admits (no sample until one is loaded; with several workers, the highest "
            "any of them serves).",
            ["model"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.model_version_served = Gauge(
            "digitpass_model_version_served",
            "1 for every version of each model now served (its version policy may admit "
            "several), 0 once it is unloaded.",
            ["model", "version"],
            registry=self.registry,
            multiprocess_mode="livemax",
        )
        self.reloads = Counter(
            "digitpass_model_reloads",
            "Model loads by outcome (loaded, failed).",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "digitpass_requests_refused",
            "Requests and connections refused by a limit (header cap, timeouts, work and "
            "connection caps, buffered bytes, full queues), by reason.",
            ["reason"],
            registry=self.registry,
        )

        # Labelled children, looked up once per (route, method, status), not per request.
        self._request_children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its latency."""
        labels = (route, method, str(status))
        children = self._request_children.get(labels)
        if children is None:
            children = (self.requests.labels(*labels), self.request_latency.labels(*labels))
            self._request_children[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        """The exposition text: this process's metrics, or every worker's."""
        if not multiprocess_mode():
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)

    def close(self) -> None:
        """At shutdown: in multiprocess mode, drop this process's live gauges."""
        if multiprocess_mode():
            prometheus_multiprocess.mark_process_dead(os.getpid())


def multiprocess_mode() -> bool:
    """Whether prometheus_client keeps its values in files (it decides at import)."""
    return MULTIPROCESS_DIR_VARIABLE in os.environ

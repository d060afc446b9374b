"""Each replica's Prometheus metrics, through Ray's metrics export.

Ray collects application metrics (``ray.util.metrics``) from every worker into its
node's metrics agent, which Prometheus scrapes on the node's metrics export port
(``ray start --metrics-export-port``). Every few seconds this mirrors each sample of
the replica's own registry there as a gauge of the same name and labels, plus
``replica`` (Ray's replica id): counters and histogram buckets keep their cumulative
values, so ``sum by (route) (rate(ray_digitpass_http_requests_total[1m]))`` and
``histogram_quantile`` over ``..._bucket`` work as they do on ``digitpass-serve``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from service.logs import log_event

logger = logging.getLogger(__name__)

EXPORT_INTERVAL_S = 2.0
REPLICA_TAG = "replica"


def replica_id() -> str:
    """This replica's id in Ray Serve ("" outside a replica)."""
    try:
        from ray import serve

        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # not in a replica (a test, a plain actor)
        return ""


class RayMetricsExport:
    """Mirrors the registry of ``state.runtime.metrics`` (once the app's lifespan has
    built it) into ``ray.util.metrics`` gauges, from a daemon thread."""

    def __init__(self, state: Any, interval_s: float = EXPORT_INTERVAL_S) -> None:
        self._state = state
        self._interval_s = interval_s
        self._gauges: dict[str, tuple[Any, tuple[str, ...]]] = {}
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray-metrics", daemon=True)
        self._replica = replica_id()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._halt.set()

    def _run(self) -> None:
        while not self._halt.wait(self._interval_s):
            try:
                self.export_once()
            except Exception as exc:  # exporting must never take the replica down
                log_event(logger, "ray_metrics_export_failed", logging.WARNING, error=repr(exc))

    def export_once(self) -> int:
        """Mirror every sample now; how many were mirrored."""
        runtime = getattr(self._state, "runtime", None)
        if runtime is None:
            return 0
        count = 0
        for family in runtime.metrics.registry.collect():
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue  # creation timestamps: not a value anyone scrapes
                self._gauge(sample.name, family.documentation, tuple(sorted(sample.labels))).set(
                    float(sample.value), tags={**sample.labels, REPLICA_TAG: self._replica}
                )
                count += 1
        return count

    def _gauge(self, name: str, documentation: str, label_names: tuple[str, ...]) -> Any:
        from ray.util.metrics import Gauge

        known = self._gauges.get(name)
        if known is None:
            gauge = Gauge(name, documentation, tag_keys=(*label_names, REPLICA_TAG))
            known = (gauge, label_names)
            self._gauges[name] = known
        return known[0]

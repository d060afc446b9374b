"""digitpass as a Ray Serve application: one deployment whose every replica runs the
whole digitpass app (``service.app.create_app``), as its ASGI ingress.

So the Ray ingress has the same HTTP contract as ``digitpass-serve`` by construction:
the same routes (the V2 routes too, where the app has them), pipeline, errors,
``/models``, ``/readyz`` and ``/metrics`` (of the replica that answers). Inside each
replica run digitpass's own dynamic batcher, its preprocessing stage and its reload
poller on the shared repository path; Ray's proxy only carries requests.

``build_app`` is the application builder that ``serve run``/``serve deploy`` and
``make serve-ray`` use (``import_path: service.rayserve.deployment:build_app``); its
``args`` are digitpass settings (``model_repository``, ``reload_interval_s``, ...),
on top of the ``DIGITPASS_*`` variables of the replicas' environment.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve import Application

from service.app import create_app
from service.rayserve.metrics_export import RayMetricsExport
from service.settings import Settings

DEPLOYMENT_NAME = "digitpass"
# The proxy hands a replica at most this many requests at once: enough to fill batches
# (Ray's default of 5 would cap every batch at 5 rows).
MAX_ONGOING_REQUESTS = 256
AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 4,
    "target_ongoing_requests": 64,  # a replica keeps up with this many, batching
    "upscale_delay_s": 10,
    "downscale_delay_s": 120,
}
GRACEFUL_SHUTDOWN_S = 30  # as digitpass-serve: queued requests finish
# Ray writes a log line per request in the proxy and in the replica (and ships them to
# the driver); digitpass has its own access log (DIGITPASS_ACCESS_LOG).
LOGGING = {"enable_access_log": False}


def replica_settings(overrides: dict[str, Any], assigned_cpus: float | None) -> Settings:
    """A replica's settings: one server process; its inference threads follow the CPUs
    Ray gave it (unless set). No gRPC server (Ray's proxy carries HTTP only; replicas
    would contend for one port), and the replica counts as reachable from anywhere
    (``host``: Ray's proxy decides who reaches it), so ``/admin/reload`` needs a token
    unless the deployment says the proxy listens on loopback."""
    values: dict[str, Any] = {
        "grpc_port": 0,
        "host": "0.0.0.0",
        **overrides,
        "workers": 1,
        "run_dir": None,
    }
    if "intra_op_threads" not in values and assigned_cpus:
        values["intra_op_threads"] = min(8, max(1, round(assigned_cpus)))
    return Settings(**values)


def _assigned_cpus() -> float | None:
    import ray

    return ray.get_runtime_context().get_assigned_resources().get("CPU")


@serve.ingress()
class DigitpassReplica:
    """One replica: the digitpass ASGI app, built when Ray starts the replica; its
    lifespan (models, batchers, preprocessing stage, reload poller) runs in here."""

    def __init__(self, settings: dict[str, Any] | None = None) -> None:
        self._overrides = dict(settings or {})
        self._export: RayMetricsExport | None = None

    def __serve_build_asgi_app__(self) -> Any:
        settings = replica_settings(self._overrides, _assigned_cpus())
        app = create_app(settings)
        self._export = RayMetricsExport(app.state)
        self._export.start()
        return app

    def __del__(self) -> None:
        if self._export is not None:
            self._export.stop()


DigitpassDeployment = serve.deployment(
    DigitpassReplica,
    name=DEPLOYMENT_NAME,
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    autoscaling_config=AUTOSCALING,
    ray_actor_options={"num_cpus": 1, "num_gpus": 0},
    graceful_shutdown_timeout_s=GRACEFUL_SHUTDOWN_S,
    logging_config=LOGGING,
)


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application: ``args`` are digitpass settings for every replica."""
    return DigitpassDeployment.bind(dict(args or {}))

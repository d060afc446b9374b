"""The gRPC server: ``GRPCInferenceService`` in the service's own process and event loop.

It shares everything with the REST routes: the runtime (its batchers, versions and
reload), the metrics (each call is counted as ``grpc:<method>`` with the HTTP status
it maps to), the body limit (the largest message it receives) and the process's cap on
requests in progress (``max_in_flight``, one count for REST and gRPC: past it,
``UNAVAILABLE`` at once). The health methods bypass the cap, as ``/healthz`` does; gRPC
itself serves at most ``max_in_flight`` plus ``HEALTH_HEADROOM`` calls at once, so that
messages waiting to be read are bounded too. The app's lifespan starts it after the
models are loaded and stops it before them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from service.errors import ModelNotReady, Overloaded, ServiceError, forget_tracebacks
from service.logs import log_event
from service.metrics import ServiceMetrics
from service.protocol.describe import model_config, model_metadata, server_metadata
from service.protocol.inference import infer
from service.rpc.convert import (
    config_message,
    metadata_message,
    request_from_grpc,
    response_to_grpc,
    version_of,
)
from service.rpc.handlers import register
from service.serving.runtime import ServingRuntime
from service.settings import Settings

logger = logging.getLogger(__name__)

STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}
SEND_LIMIT = 64 * 1024 * 1024
GRACE_S = 5.0
HEALTH_HEADROOM = 64  # calls past the work cap, for the health methods
# The status details travel in trailing metadata: past the client's limit (8 KiB by
# default) the client sees "metadata size exceeds limit" instead of the error.
MAX_DETAIL = 1024


class WorkCap(Protocol):
    """The process's count of requests in progress (``service.http.work.WorkGauge``)."""

    in_flight: int

    def full(self) -> bool: ...

    def detail(self) -> str: ...


class _Unlimited:
    in_flight = 0

    def full(self) -> bool:
        return False

    def detail(self) -> str:
        return ""


def _not_counted(reason: str) -> None:
    pass


class InferenceService(service_pb2_grpc.GRPCInferenceServiceServicer):
    """The KServe V2 methods; the others answer UNIMPLEMENTED (the generated default)."""

    def __init__(
        self,
        runtime: ServingRuntime,
        metrics: ServiceMetrics,
        work: WorkCap | None = None,
        refused: Callable[[str], None] = _not_counted,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.work: WorkCap = work if work is not None else _Unlimited()
        self.refused = refused  # counts a refusal by reason (the REST layers' summary)

    async def answer(self, method: str, context: Any, produce: Callable[[], Awaitable[Any]]) -> Any:
        started = time.perf_counter()
        status = 200
        work = self.work
        try:
            if work.full():
                raise Overloaded(work.detail(), refusal="work_cap")
            work.in_flight += 1
            try:
                return await produce()
            finally:
                work.in_flight -= 1
        except ServiceError as exc:
            status = exc.status_code
            code = STATUS_CODES.get(status, grpc.StatusCode.INTERNAL)
            detail = exc.detail
            if len(detail) > MAX_DETAIL:  # it may quote a name of megabytes
                detail = detail[:MAX_DETAIL] + "..."
            if exc.refusal is not None:
                self.refused(exc.refusal)
            forget_tracebacks(exc)
        except Exception as exc:  # never a stack trace to the client
            status = 500
            code, detail = grpc.StatusCode.INTERNAL, "internal server error"
            log_event(logger, "unhandled_error", logging.ERROR, path=method, error=repr(exc))
            forget_tracebacks(exc)
        finally:
            self.metrics.observe_request(
                f"grpc:{method}", "GRPC", status, time.perf_counter() - started
            )
        await context.abort(code, detail)

    async def ServerLive(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerLiveResponse(live=True)

    async def ServerReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=self.runtime.ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:  # noqa: N802
        try:
            self.runtime.lookup(request.name, version_of(request.version))
        except ServiceError:
            return service_pb2.ModelReadyResponse(ready=False)
        return service_pb2.ModelReadyResponse(ready=True)

    async def ServerMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return service_pb2.ServerMetadataResponse(**server_metadata())

    async def ModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def produce() -> Any:
            served = self.runtime.lookup(request.name, version_of(request.version))
            return metadata_message(model_metadata(self.runtime, served))

        return await self.answer("ModelMetadata", context, produce)

    async def ModelConfig(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def produce() -> Any:
            served = self.runtime.lookup(request.name, version_of(request.version))
            return config_message(model_config(self.runtime, served))

        return await self.answer("ModelConfig", context, produce)

    async def ModelInfer(self, request: Any, context: Any) -> Any:  # noqa: N802
        async def produce() -> Any:
            if self.runtime.stopping:
                raise ModelNotReady("shutting down")
            version = version_of(request.model_version)
            self.runtime.lookup(request.model_name, version)  # 404 first
            response = await infer(
                self.runtime, request.model_name, version, request_from_grpc(request)
            )
            return response_to_grpc(response)

        return await self.answer("ModelInfer", context, produce)


class GrpcServer:
    """Started and stopped by the app's lifespan, on its event loop."""

    def __init__(
        self,
        settings: Settings,
        runtime: ServingRuntime,
        metrics: ServiceMetrics,
        work: WorkCap | None = None,
        refused: Callable[[str], None] = _not_counted,
    ) -> None:
        self.settings = settings
        self.address = f"{settings.grpc_host}:{settings.grpc_port}"
        options = [
            # The edge limits of the HTTP server, for this port too: a connection must
            # complete its HTTP/2 handshake within the header timeout, and at most
            # max_connections are open (more are closed at once), so that half-open
            # connections cannot use up the descriptors that both servers share.
            ("grpc.server_handshake_timeout_ms", round(settings.header_timeout_s * 1000)),
            ("grpc.max_allowed_incoming_connections", settings.max_connections),
            ("grpc.max_receive_message_length", settings.max_upload_bytes),
            ("grpc.max_send_message_length", SEND_LIMIT),
            # Several server processes share the port (the kernel spreads connections);
            # one process alone must not share it with a stranger.
            ("grpc.so_reuseport", 1 if settings.resolved_workers() > 1 else 0),
        ]
        self._server = grpc.aio.server(
            options=options, maximum_concurrent_rpcs=settings.max_in_flight + HEALTH_HEADROOM
        )
        register(InferenceService(runtime, metrics, work, refused), self._server)
        self.port = 0

    async def start(self) -> None:
        self.port = self._server.add_insecure_port(self.address)
        await self._server.start()
        log_event(logger, "grpc_started", address=self.address)

    async def stop(self) -> None:
        await self._server.stop(GRACE_S)

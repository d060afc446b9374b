"""The app factory: settings, lifespan, the shared HTTP layers, routes, error handlers.

``uvicorn service.app:create_app --factory`` builds the app from the environment.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from service import __version__
from service.errors import ServiceError
from service.http import ops
from service.http.errors import error_body, error_response
from service.http.openapi import add_model_routes
from service.http.pipeline import REQUEST_ID_KEY, build_pipeline
from service.http.refusals import REFUSALS
from service.http.router import ModelRouter
from service.http.server import edge_limits
from service.http.v2 import V2Routes
from service.http.web import install_web
from service.http.work import WorkGauge
from service.logs import configure_logging, log_event
from service.metrics import ServiceMetrics
from service.rpc.server import GrpcServer
from service.serving.runtime import ServingRuntime
from service.settings import Settings
from service.shutdown import drain_on_sigterm
from service.workers.peers import join_peers

logger = logging.getLogger(__name__)

DESCRIPTION = """
Serves every model in the model repository, with dynamic batching and hot reload.
Each model answers at `/predict/<name>`, for example:

* `pass`: P(pass) from hours studied: `GET /predict/pass?hours=4`
* `digit`: a handwritten digit from an image: `curl -F image=@7.png .../predict/digit`
* `points`: points from hours studied: `GET /predict/points?hours=4`

Every error is JSON `{"detail": "..."}`.
"""


class DigitpassAPI(FastAPI):
    """FastAPI inside digitpass's own layers: every request passes the shared plain-ASGI
    layers (metrics, errors, body limit) and the model router, and what the router does
    not serve goes on to FastAPI's routing (operations, docs)."""

    def setup_layers(
        self, router: ModelRouter, metrics: ServiceMetrics, settings: Settings
    ) -> None:
        self.model_router = router
        self.work = WorkGauge(settings.max_in_flight)  # read by the server's protocol too
        self.v2_routes = V2Routes(router, settings.max_upload_bytes)
        self._layers = build_pipeline(
            self.v2_routes,
            metrics,
            max_body_bytes=settings.max_upload_bytes,
            access_log=settings.access_log,
            work=self.work,
            max_buffered_bytes=settings.max_buffered_bytes,
        )
        self.edge_limits = edge_limits(settings)  # read by the server's protocol
        self._openapi_generation = -1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._layers(scope, receive, send)

    async def fastapi_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document plus the routes of the models served right now."""
        router = self.model_router
        if self.openapi_schema is None or self._openapi_generation != router.generation:
            base = get_openapi(
                title=self.title,
                version=self.version,
                description=self.description,
                routes=self.routes,
            )
            self.openapi_schema = add_model_routes(base, router.routes())
            self._openapi_generation = router.generation
        return self.openapi_schema


# Net allocations between two collections of the youngest generation (CPython's default:
# 700). At the default, under 2000 connections of overload, nearly every object of a
# request in progress was promoted, the oldest generation filled with them, and a full
# collection (~50-65 ms, the event loop stopped) ran about once a second: 20 in 21 s,
# plus 238 of the middle generation (6-12 ms each). At 10,000, most of a request's
# objects are gone before a collection sees them: 2 middle and no full collections in
# the same 21 s, and /healthz's p99 under that attack went from 95-163 ms to 71-95 ms
# (38-47 ms with the refusal pauses drawn at random: service.http.edge).
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle_heap() -> tuple[int, int, int]:
    """Collect once, exempt everything alive now from the garbage collector, and collect
    the youngest generation less often (``YOUNG_COLLECTION_THRESHOLD``).

    What exists once the models are loaded (modules, the app, the models) lives as
    long as the process. Left in the collector's oldest generation, every full
    collection walked all of it, pausing the event loop for about 40 ms, several
    times a minute under load: the tail of the latency distribution.
    Returns the thresholds it replaced, for ``unsettle_heap`` at shutdown.
    Cyclic garbage is still collected: a young collection every 10,000 allocations
    (a few ms of requests) frees the cycles among young objects, as before.
    """
    gc.collect()
    gc.freeze()
    replaced = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *replaced[1:])
    return replaced


def unsettle_heap(thresholds: tuple[int, int, int]) -> None:
    """Undo ``settle_heap``: the startup heap back to the collector, ``thresholds`` back."""
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def create_app(settings: Settings | None = None) -> DigitpassAPI:
    """Build the app. Settings come from ``DIGITPASS_*`` variables unless given."""
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level)
    metrics = ServiceMetrics()
    REFUSALS.export_to(metrics.refusals)  # one app per process: its refusals, counted

    @asynccontextmanager
    async def lifespan(app: DigitpassAPI) -> AsyncIterator[None]:
        runtime = ServingRuntime(settings, metrics, on_served_changed=router.rebuild)
        app.state.runtime = runtime
        router.runtime = runtime
        app.v2_routes.runtime = runtime
        app.state.peers = peers = join_peers(runtime)  # the other workers, if any
        await runtime.start()
        if peers is not None:
            peers.start()
        grpc_server = None
        if settings.grpc_port:  # one work cap for REST and gRPC, one refusal summary
            grpc_server = GrpcServer(settings, runtime, metrics, app.work, REFUSALS.count)
        if grpc_server is not None:
            await grpc_server.start()
        thresholds = settle_heap()
        draining = drain_on_sigterm(
            runtime.begin_drain, lambda: app.work.in_flight, settings.drain_timeout_s
        )
        try:
            with draining:
                yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop()
            if peers is not None:
                await peers.stop()
            await runtime.stop()
            router.runtime = None
            app.v2_routes.runtime = None
            metrics.close()
            unsettle_heap(thresholds)

    app = DigitpassAPI(
        title="digitpass",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # install_web serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    router = ModelRouter(app.fastapi_call, None, settings.max_upload_bytes)
    app.setup_layers(router, metrics, settings)
    app.state.settings = settings
    app.include_router(ops.router)
    install_web(app)
    _install_error_handlers(app)
    return app


def _describe_validation_errors(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error["msg"])
    return "; ".join(parts) or "invalid request"


def request_id_of(request: Request) -> str | None:
    request_id = request.scope.get(REQUEST_ID_KEY)
    return request_id.decode("ascii") if request_id is not None else None


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def _install_error_handlers(app: FastAPI) -> None:
    """FastAPI's errors answer through the same mapping as the plain-ASGI layers."""

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> Response:
        reply = error_response(exc, request.url.path, request_id_of(request))
        return _json(reply.status, reply.body, reply.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _json(422, error_body(_describe_validation_errors(exc.errors())))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _json(exc.status_code, error_body(str(exc.detail)), dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to answer; 499 (nginx's "client closed request") is for metrics.
        log_event(logger, "client_disconnected", logging.DEBUG, path=request.url.path)
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        reply = error_response(exc, request.url.path, request_id_of(request))
        return _json(reply.status, reply.body)

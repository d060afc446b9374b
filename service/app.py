"""The app factory: settings, lifespan, routes, middleware and error handlers.

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
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from service import __version__
from service.api import ops, predict, replies
from service.api.fastpath import FastPredictRoutes
from service.errors import ServiceError
from service.logs import configure_logging, log_event
from service.metrics import ServiceMetrics
from service.middleware import BodyLimitMiddleware, MetricsMiddleware
from service.runtime import ServingRuntime
from service.settings import Settings

logger = logging.getLogger(__name__)

DESCRIPTION = """
Serves two models from the model repository, with dynamic batching and hot reload:

* `pass`: P(pass) from hours studied: `GET /predict/pass?hours=4`
* `digit`: a handwritten digit from an image: `curl -F image=@7.png .../predict/digit`

Every error is JSON `{"detail": "..."}`.
"""


class DigitpassAPI(FastAPI):
    """FastAPI, with the hot prediction requests answered before its routing.

    ``fast_routes`` is set by the lifespan once the models are loaded; what it
    declines (and everything while it is unset) goes through FastAPI as usual.
    """

    fast_routes: FastPredictRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fast = self.fast_routes
        if fast is not None and await fast.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def settle_heap() -> None:
    """Collect once, then exempt everything alive now from the garbage collector.

    What exists once the models are loaded (modules, the app, the models) lives as
    long as the process. Left in the collector's oldest generation, every full
    collection walked all of it, pausing the event loop for about 40 ms, several
    times a minute under load: the tail of the latency distribution.
    ``gc.unfreeze`` at shutdown hands it back.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None) -> DigitpassAPI:
    """Build the app. Settings come from ``DIGITPASS_*`` variables unless given."""
    settings = settings if settings is not None else Settings()
    configure_logging(settings.log_level)
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: DigitpassAPI) -> AsyncIterator[None]:
        runtime = ServingRuntime(settings, metrics)
        app.state.runtime = runtime
        await runtime.start()
        if settings.fast_path:
            app.fast_routes = FastPredictRoutes(runtime, metrics, settings.max_upload_bytes)
        settle_heap()
        try:
            yield
        finally:
            await runtime.stop()
            app.fast_routes = None
            metrics.close()
            gc.unfreeze()

    app = DigitpassAPI(
        title="digitpass",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(predict.router)
    app.include_router(ops.router)
    _install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _describe_validation_errors(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors:
        location = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error["msg"])
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        replies.note_service_error(request.url.path, exc)
        return _error(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _describe_validation_errors(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # Nobody is left to answer; 499 (nginx's "client closed request") is for metrics.
        log_event(logger, "client_disconnected", logging.DEBUG, path=request.url.path)
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        replies.note_unexpected_error(request.url.path, exc)
        return _error(500, "internal server error")

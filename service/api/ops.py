"""Operations routes: health, readiness, model info, reload and metrics."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Response

from service.api.deps import RuntimeDep, SettingsDep
from service.api.schemas import ErrorResponse, Health, ModelsResponse, Readiness, ReloadResponse
from service.errors import ModelNotReady, Unauthorized
from service.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: 200 while the process runs")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: 200 when every model is loaded, else 503",
    responses={503: {"model": ErrorResponse}},
)
async def readyz(runtime: RuntimeDep) -> Readiness:
    loaded = runtime.registry.loaded()
    missing = [name for name in runtime.registry.names if name not in loaded]
    if missing:
        raise ModelNotReady(f"not loaded: {', '.join(missing)}")
    return Readiness(status="ready", models={name: m.version.version for name, m in loaded.items()})


@router.get("/models", summary="What is being served, and how")
async def models(runtime: RuntimeDep) -> ModelsResponse:
    loaded = runtime.registry.loaded()
    return ModelsResponse.model_validate({"models": [m.describe() for m in loaded.values()]})


@router.post(
    "/admin/reload",
    summary="Rescan the model repository now",
    responses={401: {"model": ErrorResponse}},
)
async def reload(
    runtime: RuntimeDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
) -> ReloadResponse:
    token = settings.admin_token
    if token and not secrets.compare_digest(authorization or "", f"Bearer {token}"):
        raise Unauthorized("admin token required: Authorization: Bearer <token>")
    failures = await runtime.reload()
    loaded = runtime.registry.loaded()
    return ReloadResponse.model_validate(
        {
            "models": [m.describe() for m in loaded.values()],
            "failures": [vars(f) for f in failures],
        }
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

"""Operations routes: health, readiness, model info, reload and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from service.errors import ModelNotReady
from service.http.admin import AdminDep
from service.http.deps import PeersDep, RuntimeDep, SettingsDep
from service.http.schemas import ErrorResponse, Health, ModelsResponse, Readiness, ReloadResponse
from service.metrics import CONTENT_TYPE_LATEST
from service.serving.runtime import ServingRuntime

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: 200 while the process runs")
@router.head("/healthz", include_in_schema=False)
async def healthz() -> Health:
    return Health(status="ok")


@router.head("/readyz", include_in_schema=False)
@router.get(
    "/readyz",
    summary="Readiness: 200 when the models are loaded, else 503",
    responses={503: {"model": ErrorResponse}},
)
async def readyz(runtime: RuntimeDep, peers: PeersDep) -> Readiness:
    if not runtime.ready:
        reason = "shutting down" if runtime.stopping or runtime.draining else "no model is loaded"
        raise ModelNotReady(f"not ready: {reason}")
    models = {name: s.model.number for name, s in runtime.served.items()}
    if peers is not None:  # every worker of this server: the version all of them serve
        workers = peers.readiness()
        if not workers.all_ready:
            raise ModelNotReady(f"not ready: {workers.describe()}")
        models = workers.models
    return Readiness(
        status="ready",
        models=models,
        versions={name: sorted(v, reverse=True) for name, v in runtime.versions.items()},
    )


def _models(runtime: ServingRuntime) -> dict[str, Any]:
    return {
        "models": [
            runtime.versions[name][number].model.describe()
            for name in runtime.versions
            for number in sorted(runtime.versions[name], reverse=True)
        ],
        "unavailable": [
            {"name": name, "reason": reason}
            for name, reason in sorted(runtime.registry.unavailable().items())
        ],
    }


@router.get("/models", summary="What is being served, and how")
async def models(runtime: RuntimeDep) -> ModelsResponse:
    return ModelsResponse.model_validate(_models(runtime))


@router.post(
    "/admin/reload",
    summary="Rescan the model repository now",
    responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
)
async def reload(
    _admin: AdminDep, runtime: RuntimeDep, settings: SettingsDep, peers: PeersDep
) -> ReloadResponse:
    await runtime.reload()
    if peers is not None:  # every other worker of this server rescans too, before the answer
        await peers.reload_everywhere(settings.request_timeout_s)
    failures = [vars(f) for f in runtime.registry.skipped()]
    return ReloadResponse.model_validate({**_models(runtime), "failures": failures})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)

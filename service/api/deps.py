"""Request dependencies, as ``Annotated`` aliases (FastAPI full-stack template style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.runtime import ServingRuntime
from service.settings import Settings


def runtime_of(request: Request) -> ServingRuntime:
    """The lifespan's runtime. The prediction routes call this directly: resolving a
    dependency costs more per request than the rest of a ``/predict/pass`` handler."""
    return request.app.state.runtime


# ``async``: FastAPI runs plain ``def`` dependencies in a thread pool, one hop per request.
async def get_runtime(request: Request) -> ServingRuntime:
    return runtime_of(request)


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


RuntimeDep = Annotated[ServingRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

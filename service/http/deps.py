"""Request dependencies, as ``Annotated`` aliases (FastAPI full-stack template style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.serving.runtime import ServingRuntime
from service.settings import Settings


# ``async``: FastAPI runs plain ``def`` dependencies in a thread pool, one hop per request.
async def get_runtime(request: Request) -> ServingRuntime:
    return request.app.state.runtime


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


RuntimeDep = Annotated[ServingRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

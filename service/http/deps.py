"""Request dependencies, as ``Annotated`` aliases (FastAPI full-stack template style)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.serving.runtime import ServingRuntime
from service.settings import Settings
from service.workers.peers import WorkerPeers


# ``async``: FastAPI runs plain ``def`` dependencies in a thread pool, one hop per request.
async def get_runtime(request: Request) -> ServingRuntime:
    return request.app.state.runtime


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_peers(request: Request) -> WorkerPeers | None:
    """The other server workers of this ``digitpass-serve``; None when it runs alone."""
    return getattr(request.app.state, "peers", None)


RuntimeDep = Annotated[ServingRuntime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PeersDep = Annotated[WorkerPeers | None, Depends(get_peers)]

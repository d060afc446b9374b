"""Bodies of the operations routes, as they appear in the OpenAPI document.

The prediction routes' bodies belong to their model kinds (``service.models.kinds``).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.models.kinds.schemas import ErrorResponse

__all__ = ["ErrorResponse", "Health", "ModelsResponse", "Readiness", "ReloadResponse"]


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    models: dict[str, int] = Field(
        examples=[{"pass": 1, "digit": 1}],
        description="Each model's default version: the highest served, for requests that name none",
    )
    versions: dict[str, list[int]] = Field(
        examples=[{"pass": [1], "digit": [2, 1]}],
        description="Every version served, highest first (the version policy admits them)",
    )


class ModelInfo(BaseModel):
    name: str
    version: int
    task: str
    backend: str
    device: str
    providers: list[str]
    metrics: dict[str, object]
    labels: list[str]
    created_at: str | None
    loaded_at: str


class UnavailableModel(BaseModel):
    name: str
    reason: str


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    unavailable: list[UnavailableModel] = Field(
        description="Model folders that serve nothing, and why"
    )


class LoadFailureInfo(BaseModel):
    name: str
    version: int
    reason: str


class ReloadResponse(ModelsResponse):
    failures: list[LoadFailureInfo] = Field(description="Every version now skipped, and why")

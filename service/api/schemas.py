"""Request and response bodies, as they appear in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

MAX_HOURS = 10_000

Hours = Annotated[
    float,
    Field(ge=0, le=MAX_HOURS, allow_inf_nan=False, description="Hours studied", examples=[4.0]),
]


class ErrorResponse(BaseModel):
    detail: str = Field(examples=["no digit found"])


class ModelRef(BaseModel):
    name: str = Field(examples=["digit"])
    version: int = Field(examples=[1])


class PassPrediction(BaseModel):
    hours: float = Field(examples=[4.0])
    probability: float = Field(ge=0, le=1, examples=[0.97])
    passed: bool = Field(examples=[True])


class PassResponse(PassPrediction):
    model: ModelRef


class PassBatchRequest(BaseModel):
    hours: list[Hours] = Field(min_length=1, max_length=1024, examples=[[1, 2.5, 7]])


class PassBatchResponse(BaseModel):
    predictions: list[PassPrediction]
    model: ModelRef


class DigitPrediction(BaseModel):
    digit: int = Field(ge=0, le=9, examples=[7])
    confidence: float = Field(ge=0, le=1, examples=[0.998])
    probabilities: list[float] = Field(min_length=10, max_length=10)


class DigitResponse(DigitPrediction):
    model: ModelRef


class DigitsResponse(BaseModel):
    predictions: list[DigitPrediction]
    model: ModelRef


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    models: dict[str, int] = Field(examples=[{"pass": 1, "digit": 1}])


class ModelInfo(BaseModel):
    name: str
    version: int
    backend: str
    device: str
    providers: list[str]
    metrics: dict[str, object]
    labels: list[str]
    created_at: str | None
    loaded_at: str


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class LoadFailureInfo(BaseModel):
    name: str
    version: int
    reason: str


class ReloadResponse(ModelsResponse):
    failures: list[LoadFailureInfo]

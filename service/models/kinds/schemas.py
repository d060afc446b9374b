"""Response pieces that every kind's replies share."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ModelRef(BaseModel):
    name: str = Field(examples=["digit"])
    version: int = Field(examples=[1])


class ErrorResponse(BaseModel):
    detail: str = Field(examples=["no digit found"])

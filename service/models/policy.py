"""A model's version policy (Triton's ``version_policy``), from ``<name>/config.json``.

The model-level file of the repository contract (docs/model-repository.md)::

    {"version_policy": {"latest": {"num_versions": 2}}}
    {"version_policy": {"specific": {"versions": [1, 3]}}}
    {"version_policy": {"all": {}}}

Without the file (or without ``version_policy``) the policy is ``latest: 1``: the
highest version that loads. Unlike Triton, ``latest: N`` counts versions that *load*:
a version that fails is skipped and the next one down serves in its place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.models.repository import read_small_file

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 64 * 1024


class PolicyError(ValueError):
    """``config.json`` is unreadable or does not follow the schema."""


class _Latest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_versions: int = Field(1, ge=1, le=1000)


# A version as the repository names its folders: positive, at most 18 digits (so it
# fits Triton's int64 fields, in the gRPC model configuration too).
_Version = Annotated[int, Field(ge=1, lt=10**18)]


class _Specific(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    versions: list[_Version] = Field(min_length=1, max_length=1000)


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    latest: _Latest | None = None
    specific: _Specific | None = None
    all: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> _Policy:
        if sum(p is not None for p in (self.latest, self.specific, self.all)) != 1:
            raise ValueError("give exactly one of latest, specific, all")
        return self


class _ModelConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    version_policy: _Policy | None = None


@dataclass(frozen=True)
class VersionPolicy:
    kind: Literal["latest", "specific", "all"] = "latest"
    count: int = 1  # latest: how many
    versions: tuple[int, ...] = ()  # specific: which

    def candidates(self, published: list[int]) -> tuple[list[int], int | None]:
        """The versions to try, highest first, and how many of them to load (None: all)."""
        newest_first = sorted(published, reverse=True)
        if self.kind == "latest":
            return newest_first, self.count
        if self.kind == "specific":
            return [v for v in newest_first if v in self.versions], None
        return newest_first, None

    def to_config(self) -> dict[str, Any]:
        """As Triton's model configuration writes it."""
        if self.kind == "latest":
            return {"latest": {"num_versions": self.count}}
        if self.kind == "specific":
            return {"specific": {"versions": list(self.versions)}}
        return {"all": {}}


DEFAULT_POLICY = VersionPolicy()


def read_policy(model_dir: Path) -> VersionPolicy:
    """The policy in ``model_dir/config.json``; the default when there is no file."""
    try:
        raw = read_small_file(model_dir / CONFIG_FILE, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        return DEFAULT_POLICY
    except OSError:
        raise PolicyError(f"{CONFIG_FILE} is unreadable, a link or not a regular file") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise PolicyError(f"{CONFIG_FILE} is over {MAX_CONFIG_BYTES} bytes")
    try:
        config = _ModelConfig.model_validate(json.loads(raw))
    except RecursionError:
        raise PolicyError(f"{CONFIG_FILE}: not JSON (nested too deeply)") from None
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise PolicyError(f"{CONFIG_FILE}: {where}: {first['msg']}") from None
        raise PolicyError(f"{CONFIG_FILE}: not JSON") from None
    policy = config.version_policy
    if policy is None:
        return DEFAULT_POLICY
    if policy.latest is not None:
        return VersionPolicy("latest", count=policy.latest.num_versions)
    if policy.specific is not None:
        return VersionPolicy("specific", versions=tuple(sorted(set(policy.specific.versions))))
    return VersionPolicy("all")

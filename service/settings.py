"""The service's one settings object, read from ``DIGITPASS_*`` environment variables.

It is built by the app factory (never at import time) and handed to everything
that needs it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.workers.capacity import auto_workers, usable_cores

KiB = 1024
MiB = 1024 * 1024


class Settings(BaseSettings):
    """Runtime configuration. Every field maps to ``DIGITPASS_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="DIGITPASS_",
        extra="ignore",
        frozen=True,
        protected_namespaces=("settings_",),
    )

    model_repository: Path = Field(Path("models"), description="Root of the model repository.")
    backend: Literal["onnx", "torchscript"] = Field("onnx", description="Inference runtime.")
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: the GPU when one is usable, else the CPU."
    )
    max_batch_size: int = Field(64, ge=1, le=4096, description="Rows per inference call.")
    max_batch_delay_ms: float = Field(
        0.0, ge=0, le=10_000, description="How long to wait to fill a batch; 0 = greedy."
    )
    max_queue: int = Field(1024, ge=1, le=1_000_000, description="Queued requests per model.")
    request_timeout_s: float = Field(10.0, gt=0, le=3600, description="Queue wait limit.")
    max_upload_bytes: int = Field(5 * MiB, ge=1024, description="Largest request body.")
    max_image_pixels: int = Field(25_000_000, ge=1, description="Largest decoded image.")
    reload_interval_s: float = Field(2.0, ge=0, description="Repository polling; 0 = off.")
    host: str = Field(
        "127.0.0.1",
        description="The address the server listens on (the CLI's --host sets it). Without "
        "an admin token, /admin/reload is open only when this is a loopback address.",
    )
    admin_token: str | None = Field(
        None,
        description="POST /admin/reload needs 'Authorization: Bearer <token>'. Unset: the "
        "route is off (403) unless the server listens on loopback only. Empty: an error.",
    )
    max_header_bytes: int = Field(
        16 * KiB,
        ge=1024,
        le=1 * MiB,
        description="Request line and headers, in all; larger: 431 (per connection).",
    )
    header_timeout_s: float = Field(
        10.0, gt=0, le=600, description="Time for a request's headers to arrive; then 408/close."
    )
    min_body_rate: int = Field(
        1024,
        ge=0,
        description="Bytes a second a request body must keep up, over 5 s windows; slower: 408.",
    )
    body_timeout_s: float = Field(
        60.0, gt=0, le=3600, description="Time for a whole request body to arrive; then 408."
    )
    max_connections: int = Field(
        4096, ge=1, le=1_000_000, description="Open connections per worker process; more: 503."
    )
    max_in_flight: int = Field(
        256,
        ge=1,
        le=1_000_000,
        description="Requests in progress per worker process (all but /healthz, /readyz and "
        "/metrics); more: 503 at once.",
    )
    max_buffered_bytes: int = Field(
        64 * MiB,
        ge=1024,
        description="Request body bytes held in memory at once per worker process, in all; "
        "more: 503.",
    )
    drain_timeout_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, /readyz answers 503 while the requests in progress finish, "
        "for at most this long; then the server closes its socket. 0 = close at once.",
    )
    preprocess_workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Worker processes that decode and preprocess small uploads; 0 = auto: 1 "
        "(large uploads go to one more, at the lowest CPU priority).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workers: int | Literal["auto"] = Field(
        "auto",
        description="Server processes; auto: one per visible GPU on CUDA, else one per "
        "usable core (CPU affinity and container CPU quota).",
    )
    intra_op_threads: int = Field(
        0,
        ge=0,
        le=256,
        description="Threads per inference call; 0 = auto: cores / workers - 1, from 1 to 8.",
    )

    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="Port of the Open Inference Protocol over gRPC (Triton's 8001); 0 = off.",
    )
    grpc_host: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=255,
        description="Address the gRPC server binds (digitpass-serve sets it to --host).",
    )
    run_dir: Path | None = Field(
        None,
        description="Set by digitpass-serve for its workers: the folder through which they "
        "share readiness and /admin/reload.",
    )

    access_log: bool = Field(
        False, description="One JSON line per request (method, path, status, duration, id)."
    )

    @field_validator("admin_token")
    @classmethod
    def _token_not_empty(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty: unset it, or set a secret of printable ASCII")
        if value is not None and not (value.isascii() and value.isprintable()):
            raise ValueError("must be printable ASCII (it travels in an HTTP header)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("workers")
    @classmethod
    def _workers_in_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 64:
            raise ValueError("must be auto or from 1 to 64")
        return value

    @property
    def max_batch_delay_s(self) -> float:
        return self.max_batch_delay_ms / 1000.0

    def listens_on_loopback_only(self) -> bool:
        """Whether only this host can connect: a loopback address or ``localhost``."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host.strip("[]")).is_loopback
        except ValueError:
            return False

    def resolved_preprocess_workers(self) -> int:
        """Worker processes of the preprocessing stage's small lane: 1 unless set.

        One keeps up with the event loop of one server process on small uploads (each
        round trip carries all that waits); large uploads have a process of their own.
        """
        return self.preprocess_workers or 1

    def resolved_intra_op_threads(self) -> int:
        """Threads for one inference call.

        Each worker process gets an equal share of the cores, less one for its event
        loop (HTTP parsing, multipart, JSON), and no more than 8: these models are
        small, and beyond a few threads an inference call only pays for the handoff.
        """
        if self.intra_op_threads:
            return self.intra_op_threads
        return min(8, max(1, usable_cores() // self.resolved_workers() - 1))

    def resolved_workers(self) -> int:
        """Server processes: the number set, else one per visible GPU when the models
        run on CUDA, else one per usable core."""
        if isinstance(self.workers, int):
            return self.workers
        return auto_workers(self.device, visible_gpus(self.backend, self.device), usable_cores())


SECRET_FIELDS = frozenset({"admin_token"})


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad ``DIGITPASS_*`` variable, its value and what is allowed."""
    parts = []
    for item in error.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"])
        variable = f"{Settings.model_config.get('env_prefix', '')}{field}".upper()
        value = item.get("input")
        secret = field in SECRET_FIELDS  # a startup error goes to logs: never the secret
        shown = f"={value!r}" if isinstance(value, str | int | float) and not secret else ""
        parts.append(f"{variable}{shown}: {item['msg']}")
    return "; ".join(parts)


def visible_gpus(backend: str, device: str) -> int:
    """GPUs the models would run on: 0 with ``device=cpu`` or without a CUDA runtime."""
    if device == "cpu":
        return 0
    from service.models.backends.device import CUDA_PROVIDER, nvidia_gpu_count

    if backend == "onnx":
        import onnxruntime

        if CUDA_PROVIDER not in onnxruntime.get_available_providers():
            return 0
    return nvidia_gpu_count()

"""The rows of the serving benchmark: which server, started how, answering which routes."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from bench import MODELS_DIR, newest_version
from bench.servers import ServerSpec

UPLOAD_CEILING = ("ceiling", "digit")
GET_CEILING = ("ceiling", "pass")
ASGI_CEILING = "asgi-ceiling"


@dataclass(frozen=True)
class Row:
    """One server configuration. ``paths`` maps an endpoint (pass, digit) to its route."""

    key: str
    label: str
    spec: ServerSpec
    paths: dict[str, str]
    batch_metrics: bool = False  # one digitpass process: /metrics sees every batch
    notes: str = ""


def _bench_app(module: str) -> list[str]:
    return [sys.executable, "-m", "bench.launch", f"{module}:app", "--port", "{port}"]


def _digitpass(*extra_args: str, **env: str) -> ServerSpec:
    argv = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
    # No gRPC server unless a row asks for one (two servers would both want port 8001).
    settings = {"DIGITPASS_MODEL_REPOSITORY": str(MODELS_DIR), "DIGITPASS_GRPC_PORT": "0", **env}
    return ServerSpec([*argv, *extra_args], "/readyz", settings)


DIGITPASS_PATHS = {"pass": "/predict/pass?hours=4", "digit": "/predict/digit"}


def all_rows(litserve_python: str | None = None) -> list[Row]:
    """Every row, in report order. LitServe's needs its venv's python (None: not built yet)."""
    litserve_argv = [
        litserve_python or "bench/.venv-litserve/bin/python",
        "bench/litserve_app.py",
        "--port",
        "{port}",
        "--model",
        str(newest_version("digit") / "model.onnx"),
    ]
    return [
        Row(
            "ceiling",
            "HTTP ceiling (FastAPI, no model)",
            ServerSpec(_bench_app("bench.ceiling_app"), "/healthz"),
            dict(DIGITPASS_PATHS),
        ),
        Row(
            ASGI_CEILING,
            "HTTP ceiling (plain ASGI, digitpass's parsers, no model)",
            ServerSpec(_bench_app("bench.asgi_ceiling_app"), "/healthz"),
            dict(DIGITPASS_PATHS),
            notes="the bound for digitpass's fast path, which skips FastAPI's routing",
        ),
        Row("digitpass", "digitpass, defaults", _digitpass(), dict(DIGITPASS_PATHS), True),
        Row(
            "digitpass-batch1",
            "digitpass, MAX_BATCH_SIZE=1",
            _digitpass(DIGITPASS_MAX_BATCH_SIZE="1"),
            dict(DIGITPASS_PATHS),
            True,
        ),
        Row(
            "digitpass-torchscript",
            "digitpass, BACKEND=torchscript",
            _digitpass(DIGITPASS_BACKEND="torchscript"),
            dict(DIGITPASS_PATHS),
            True,
        ),
        Row(
            "digitpass-workers2",
            "digitpass, --workers 2",
            _digitpass("--workers", "2"),
            dict(DIGITPASS_PATHS),
            notes="per-process /metrics: mean batch not aggregated",
        ),
        Row(
            "naive",
            "naive FastAPI + torchvision + eager PyTorch",
            ServerSpec(_bench_app("bench.naive_app"), "/healthz"),
            dict(DIGITPASS_PATHS),
        ),
        Row(
            "litserve",
            "LitServe + ONNX Runtime (batch 64, 5 ms)",
            ServerSpec(litserve_argv, "/health"),
            {"digit": "/predict"},
            notes="digit only: LitServe endpoints are POST",
        ),
    ]


def ceiling_for(endpoint: str) -> tuple[str, str]:
    """The (row, endpoint) a result is divided by: the upload or the GET ceiling."""
    return UPLOAD_CEILING if endpoint == "digit" else GET_CEILING


def asgi_ceiling_for(endpoint: str) -> tuple[str, str]:
    """The (row, endpoint) of the plain-ASGI ceiling for ``endpoint``."""
    return ASGI_CEILING, endpoint

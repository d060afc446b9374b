"""``digitpass-serve`` / ``python -m service``: run the service under uvicorn."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import uvicorn

from service.workers.run_folder import shared_run_folder

if TYPE_CHECKING:
    from service.settings import Settings

GRACEFUL_SHUTDOWN_S = 30
# prometheus_client's switch to multiprocess mode (see service/metrics.py). Named here
# rather than imported: this process must not import prometheus_client before it is set.
MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitpass-serve",
        description="Serve the digitpass models. Other settings: DIGITPASS_* variables.",
    )
    parser.add_argument("--host", default=os.environ.get("DIGITPASS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=os.environ.get("DIGITPASS_PORT", "8000"))
    parser.add_argument(
        "--workers",
        type=workers_value,
        default=os.environ.get("DIGITPASS_WORKERS", "auto"),
        help="server processes (each loads the models); auto (the default): one per visible "
        "GPU on CUDA, else one per usable core",
    )
    return parser


def workers_value(text: str) -> str:
    """``auto`` or a whole number; Settings checks the range."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return str(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not auto or a number: {text!r}") from None


def _already_handled(signum: int, frame: object) -> None:
    """uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; absorb it."""


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, a fresh folder for their Prometheus samples, for this run.

    Set before the workers start, so that each one's prometheus_client writes there
    and any one can answer a scrape for all. A folder the operator chose through
    ``PROMETHEUS_MULTIPROC_DIR`` is used as it is (empty it between runs) and kept.
    """
    if workers < 2 or MULTIPROCESS_DIR_VARIABLE in os.environ:
        yield
        return
    folder = tempfile.mkdtemp(prefix="digitpass-metrics-")
    os.environ[MULTIPROCESS_DIR_VARIABLE] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR_VARIABLE]
        shutil.rmtree(folder, ignore_errors=True)


def check_settings() -> Settings:
    """Refuse bad ``DIGITPASS_*`` variables in one line, exit 2, before any worker starts."""
    from pydantic import ValidationError

    from service.settings import Settings, describe_settings_error

    try:
        return Settings()
    except ValidationError as error:
        print(f"digitpass-serve: error: {describe_settings_error(error)}", file=sys.stderr)
        raise SystemExit(2) from None


def main(args: argparse.Namespace) -> None:
    # Where it listens decides whether /admin/reload may go without a token.
    os.environ["DIGITPASS_HOST"] = args.host
    # The gRPC server listens where HTTP does, unless told otherwise.
    os.environ.setdefault("DIGITPASS_GRPC_HOST", args.host)
    os.environ["DIGITPASS_WORKERS"] = str(args.workers)
    from service.settings import visible_gpus

    settings = check_settings()
    args.workers = settings.resolved_workers()
    # Several workers on CUDA take a GPU each (service/workers/gpus.py).
    gpus = visible_gpus(settings.backend, settings.device) if args.workers > 1 else 0
    # Each worker process builds its own Settings; this lets them size thread pools.
    os.environ["DIGITPASS_WORKERS"] = str(args.workers)
    # After a graceful shutdown uvicorn restores the previous handlers and re-raises the
    # signal. With this handler in place, the process then exits 0 instead of dying of
    # SIGTERM, which is what process supervisors expect of a clean stop.
    signal.signal(signal.SIGTERM, _already_handled)
    with shared_metrics(args.workers), shared_run_folder(args.workers, gpus):
        _serve(args)


def _serve(args: argparse.Namespace) -> None:
    from service.http.server import raise_descriptor_limit, uvicorn_options
    from service.settings import Settings

    settings = Settings()
    # HTTP's connections, and as many again on the gRPC port when it is on.
    raise_descriptor_limit(settings.max_connections * (2 if settings.grpc_port else 1))
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        access_log=False,
        # Nothing here uses client addresses; skip X-Forwarded-* rewriting per request.
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **uvicorn_options(settings),
    )


def run(argv: Sequence[str] | None = None) -> None:
    main(build_parser().parse_args(argv))


if __name__ == "__main__":
    run()

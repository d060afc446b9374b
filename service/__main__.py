"""``digitpass-serve`` / ``python -m service``: run the service under uvicorn."""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Sequence

import uvicorn

GRACEFUL_SHUTDOWN_S = 30


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="digitpass-serve",
        description="Serve the digitpass models. Other settings: DIGITPASS_* variables.",
    )
    parser.add_argument("--host", default=os.environ.get("DIGITPASS_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DIGITPASS_PORT", "8000")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("DIGITPASS_WORKERS", "1")),
        help="server processes (each loads the models)",
    )
    return parser


def _already_handled(signum: int, frame: object) -> None:
    """uvicorn shuts down gracefully on SIGTERM, then re-raises the signal; absorb it."""


def main(args: argparse.Namespace) -> None:
    # Each worker process builds its own Settings; this lets them size thread pools.
    os.environ["DIGITPASS_WORKERS"] = str(args.workers)
    # After a graceful shutdown uvicorn restores the previous handlers and re-raises the
    # signal. With this handler in place, the process then exits 0 instead of dying of
    # SIGTERM, which is what process supervisors expect of a clean stop.
    signal.signal(signal.SIGTERM, _already_handled)
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
    )


def run(argv: Sequence[str] | None = None) -> None:
    main(build_parser().parse_args(argv))


if __name__ == "__main__":
    run()

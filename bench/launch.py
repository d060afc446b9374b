"""``python -m bench.launch MODULE:APP --port N``: serve a bench app like digitpass serves.

Same uvicorn call as ``service/__main__.py``: default (auto) event loop and HTTP
implementation, so uvloop and httptools when installed; no access log; no logging
config of uvicorn's own; one worker.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.launch")
    parser.add_argument("app", help="import string, e.g. bench.ceiling_app:app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        workers=1,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()

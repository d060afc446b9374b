"""Structured logging: one JSON object per line, one line per event."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# uvicorn's records carry the message again with ANSI colours, for its own formatter.
_RESERVED = {*vars(logging.makeLogRecord({})), "color_message"}


class JsonFormatter(logging.Formatter):
    """Formats a record as ``{"ts", "level", "logger", "event", ...extra fields}``."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str) -> None:
    """Route the root, uvicorn and service loggers through one JSON handler on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One warning per malformed upload would let a hostile client flood the log; the
    # client gets its 400 either way.
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    # Loggers that uvicorn configured get our handler instead of theirs; one it switched
    # off (no handler, no propagation: the access log with access_log=False) stays off.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if logger.handlers:
            logger.handlers[:] = [handler]
            logger.propagate = False


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as top-level JSON keys."""
    logger.log(level, event, extra=fields)

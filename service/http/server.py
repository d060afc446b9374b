"""How uvicorn is configured: the protocol with the edge limits, keep-alive, the backlog.

``service.__main__`` passes :func:`uvicorn_options` to ``uvicorn.run``. The protocol
(``service.http.edge.EdgeProtocol``: uvicorn's httptools protocol, plus the header cap,
the header and body timeouts and the connection cap) finds its limits on the app that
each worker process builds (:func:`edge_limits`), so every worker enforces the same
settings.
"""

from __future__ import annotations

import resource
from typing import Any

from service.http.edge import EdgeLimits, EdgeProtocol
from service.settings import Settings

KEEP_ALIVE_S = 5  # uvicorn's default: an idle kept-alive connection is closed after it
SPARE_DESCRIPTORS = 256  # model files, worker pipes, logs: beyond the connections


def edge_limits(settings: Settings) -> EdgeLimits:
    return EdgeLimits(
        max_header_bytes=settings.max_header_bytes,
        header_timeout_s=settings.header_timeout_s,
        min_body_rate=settings.min_body_rate,
        body_timeout_s=settings.body_timeout_s,
        max_connections=settings.max_connections,
    )


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config``."""
    return {
        "http": EdgeProtocol,
        "ws": "none",  # no WebSocket routes: an upgrade must not bypass the edge limits
        "timeout_keep_alive": KEEP_ALIVE_S,
        "backlog": min(settings.max_connections, 4096),
        # Only used if the h11 protocol is chosen instead; the same cap.
        "h11_max_incomplete_event_size": settings.max_header_bytes,
    }


def raise_descriptor_limit(connections: int) -> int:
    """Raise this process's open-file limit (soft, up to the hard one) to fit
    ``connections`` and some spare; returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft

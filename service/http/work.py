"""The cap on requests in progress in one worker process, shared by the server's protocol
and the ASGI layers.

Under overload the refusal must cost the server less than the request costs the
client, or the event loop saturates and every client, health checks included, waits.
So the protocol (``service.http.edge``) refuses a request over the cap as soon as its
headers are parsed, with :func:`refuse_overloaded` (a few lines, no framework, no
body read); :class:`service.http.pipeline.WorkLimitLayer` keeps the count and catches
the requests that passed the protocol's check together. Health, readiness and metrics
are never refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.http.asgi import Receive, Scope, Send, send_json
from service.http.errors import error_body, protocol_error, protocol_path
from service.http.refusals import REFUSALS

# Routes that must answer under any load: liveness, readiness, metrics (and the
# Open Inference Protocol's health routes).
UNCAPPED_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}
)
RETRY_AFTER = {"Retry-After": "1"}


@dataclass
class WorkGauge:
    """Requests in progress in this process, and the most there may be."""

    max_in_flight: int
    in_flight: int = 0

    def full(self) -> bool:
        return self.in_flight >= self.max_in_flight

    def detail(self) -> str:
        return (
            f"the server is at its limit of {self.max_in_flight} requests in progress; retry later"
        )


class OverloadedApp:
    """The ASGI app that answers a request refused by the work cap: JSON 503, body unread."""

    def __init__(self, gauge: WorkGauge) -> None:
        self.body = error_body(gauge.detail())
        self.protocol_body = protocol_error(503, gauge.detail())[1]  # the V2 routes'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        REFUSALS.count("work_cap")
        body = self.protocol_body if protocol_path(scope.get("path", "")) else self.body
        await send_json(send, 503, body, RETRY_AFTER)

"""Refused requests and connections, summarised: one log line a second at most, with counts.

Under attack a refusal per request would flood the log (and cost the event loop the
formatting of every line). Each refusal is counted here by its reason instead; the
first one in a quiet period arms a timer, and when it fires one WARNING line,
``requests_refused``, carries the counts of everything refused since. An access log,
where one is switched on (``DIGITPASS_ACCESS_LOG``), is separate.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from service.logs import log_event

logger = logging.getLogger("service.refusals")

SUMMARY_INTERVAL_S = 1.0


class RefusalLog:
    """Counts refusals by reason and logs them in one line per interval."""

    def __init__(self, interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._counts: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self.totals: Counter[str] = Counter()  # since the start, for tests and metrics
        self.metric: Any = None  # a prometheus Counter labelled by reason, once set

    def export_to(self, metric: Any) -> None:
        """Count every refusal in ``metric`` too (``digitpass_requests_refused_total``)."""
        self.metric = metric

    def count(self, reason: str) -> None:
        self._counts[reason] += 1
        self.totals[reason] += 1
        if self.metric is not None:
            self.metric.labels(reason).inc()
        if self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # outside the event loop (a test): log at once
            self.flush()
            return
        self._timer = loop.call_later(self.interval_s, self.flush)

    def flush(self) -> None:
        self._timer = None
        if not self._counts:
            return
        counts, self._counts = dict(self._counts), Counter()
        log_event(
            logger,
            "requests_refused",
            logging.WARNING,
            counts=counts,
            total=sum(counts.values()),
            interval_s=self.interval_s,
        )


REFUSALS = RefusalLog()  # one per worker process: the protocol and the ASGI layers share it

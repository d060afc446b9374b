"""Helpers for the browser tests: find Debian's Chromium, cut the network off, draw.

Playwright drives the Chromium of Debian's ``chromium`` package (``make browser``
installs it) through ``executable_path``; Playwright's own browser downloads are
never used. Without a browser the tests are skipped, and under ``CI`` they fail.
"""

from __future__ import annotations

import base64
import itertools
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

Point = tuple[float, float]
Stroke = Sequence[Point]

# Digits as strokes in canvas units (0..1 across, 0..1 down), drawn with the page's pen.
DIGIT_STROKES: dict[int, list[list[Point]]] = {
    1: [[(0.47, 0.15), (0.55, 0.85)]],
    7: [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    0: [
        [
            (
                0.5 + 0.22 * math.sin(2 * math.pi * i / 32),
                0.5 - 0.32 * math.cos(2 * math.pi * i / 32),
            )
            for i in range(33)
        ]
    ],
}


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def chromium_path() -> str | None:
    """``$DIGITPASS_CHROMIUM``, else ``chromium`` on the PATH, else Debian's path."""
    for candidate in (
        os.environ.get("DIGITPASS_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def require_browser() -> str:
    """The Chromium to drive; skip (fail under CI) with the reason when there is none."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed: pip install -e '.[dev]'"
    path = chromium_path()
    if reason is None and path is None:
        reason = "no Chromium (/usr/bin/chromium): run `make browser` (apt-get install chromium)"
    if reason is not None:
        if ci():
            pytest.fail(reason)
        pytest.skip(reason)
    assert path is not None
    return path


class NetworkGuard:
    """Lets through requests to the server only; every other one is aborted and kept."""

    def __init__(self, server_url: str) -> None:
        self.origin = server_url.rstrip("/")
        self.seen: list[str] = []
        self.blocked: list[str] = []

    def allowed(self, url: str) -> bool:
        return url.startswith((f"{self.origin}/", "data:", "blob:")) or url == self.origin

    def install(self, context: Any) -> None:
        context.on("request", lambda request: self.seen.append(request.url))

        def route(route: Any) -> None:
            if self.allowed(route.request.url):
                route.fallback()
            else:
                self.blocked.append(route.request.url)
                route.abort("internetdisconnected")

        context.route("**/*", route)

    def assert_only_the_server(self) -> None:
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        others = [url for url in self.seen if not self.allowed(url)]
        assert others == [], f"requests to other hosts: {others}"


def draw(page: Any, strokes: Sequence[Stroke], spacing: float = 0.03) -> None:
    """Draw on the page's canvas with real pointer events: press, move along, release.

    Each segment is walked in moves at most ``spacing`` (canvas units) apart."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    assert box is not None

    def at(point: Point) -> Point:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    for stroke in strokes:
        page.mouse.move(*at(stroke[0]))
        page.mouse.down()
        for start, end in itertools.pairwise(stroke):
            steps = max(1, math.ceil(math.dist(start, end) / spacing))
            for step in range(1, steps + 1):
                t = step / steps
                page.mouse.move(
                    *at((start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t))
                )
        page.mouse.up()


def data_url_bytes(url: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix), url[:40]
    return base64.b64decode(url[len(prefix) :])


def canvas_png(page: Any) -> bytes:
    """The page's canvas, exactly as a PNG."""
    return data_url_bytes(
        page.get_by_test_id("digit-canvas").evaluate("c => c.toDataURL('image/png')")
    )


def draw_by_cdp(page: Any, strokes: Sequence[Stroke], pointer: str, spacing: float = 0.03) -> None:
    """As ``draw``, with a finger (``"touch"``) or a pen (``"pen"``): the browser's own
    input events, sent through the DevTools protocol (Playwright's mouse is a mouse)."""
    box = page.get_by_test_id("digit-canvas").bounding_box()
    assert box is not None
    cdp = page.context.new_cdp_session(page)

    def at(point: Point) -> dict[str, float]:
        return {"x": box["x"] + point[0] * box["width"], "y": box["y"] + point[1] * box["height"]}

    def send(kind: str, point: Point | None) -> None:
        if pointer == "touch":
            touch = {"touchStart": "touchStart", "move": "touchMove", "up": "touchEnd"}
            points = [at(point)] if point is not None and kind != "up" else []
            cdp.send(
                "Input.dispatchTouchEvent",
                {"type": touch.get(kind, kind), "touchPoints": points},
            )
        else:
            mouse = {"touchStart": "mousePressed", "move": "mouseMoved", "up": "mouseReleased"}
            assert point is not None
            cdp.send(
                "Input.dispatchMouseEvent",
                {
                    "type": mouse[kind],
                    **at(point),
                    "button": "left",
                    "buttons": 0 if kind == "up" else 1,
                    "clickCount": 1,
                    "pointerType": pointer,
                },
            )

    for stroke in strokes:
        send("touchStart", stroke[0])
        for start, end in itertools.pairwise(stroke):
            steps = max(1, math.ceil(math.dist(start, end) / spacing))
            for step in range(1, steps + 1):
                t = step / steps
                send(
                    "move", (start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
                )
        send("up", stroke[-1])
    cdp.detach()

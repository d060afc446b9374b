"""Long straight step edges in a photo of paper: the edges of hard shadows.

A hard shadow (a hand, a phone) darkens the paper by one factor over a region whose
outline is made of long straight (or gently curved) edges; across each, the level
steps from lit paper to shadowed paper by that factor and stays there. A digit's
strokes are short or curved, and dark on both sides of a line only as wide as the pen;
ruled lines are thin ridges, not steps. So a shadow's edge is found without knowing
how wide the shadow or the pen is: a line of the log-gradient field (a Hough vote by
each edge pixel, along its own gradient direction) long enough, whose profile across
is a step by a shadow's factor, consistent along its length, and flat for a while on
the dark side.

What this gives is *seeds*: pixels just inside the shadow along such an edge, at the
shadow's own level (a stroke crossing the edge is darker and is left out), from which
the background can be grown over the whole shadow (``service.imaging.regrow``).

Cost: a few vectorised passes over the (at most 512 px) working image, one
``np.bincount`` for the votes, and per line a pass over its edge pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.imaging.hough import edge_pixels, strongest_lines

MIN_LENGTH = 0.15  # a shadow's edge is at least this share of the shorter side long...
MIN_PIXELS = 24  # ... and this many pixels
MAX_LINES = 16  # strongest lines examined
GAP = 6.0  # pixels along the line that a segment may skip
STEP_OUT = 3  # pixels from the edge where its two levels are read...
FLAT_OUT = 8  # ... and how far the dark side stays at its level (a stroke does not)
LIGHTEST = 0.8  # the shadowed level is at most this share of the lit one...
DARKEST = 0.3  # ... and at least this share (ink is darker)
STEADY = 0.1  # the ratio varies along the edge by at most this (interquartile range)
FLAT_TOL = 0.08  # the dark side's level further in is within this share of it ...
FLAT_SHARE = 0.5  # ... at this share of the places along the edge (a stroke's is not)
BAND_DEEPEST = 32  # a stroke's dark side ends within this many pixels ...
BAND_SHARE = 0.8  # ... at this share of the places along it ...
BAND_SPREAD = 0.25  # ... its width steady (interquartile range over the median; a wedge's grows)
BAND_LENGTH = 5.0  # ... or the edge fewer than this many such widths long
INK_DEPTHS = (5, 8, 12, 16)  # the dark side is not darker still at these depths ...
INK_SHARE = 0.3  # ... at more than this share of the places (a digit crossing it may be)
SMOOTH = 0.05  # the dark side's level steps along the edge by at most this share (wood does)
SAMPLE_EVERY = 3  # pixels between the profiles read along a segment
SEED_DEPTH = (3, 4, 5, 6)  # pixels inside the shadow where seeds are put


@dataclass(frozen=True)
class ShadowEdge:
    """One straight edge of a hard shadow: the shadow's level beside it, the seed
    pixels just inside (row and column indices), and where it lies: the segment from
    ``start`` to ``stop`` along the line ``x cos + y sin = rho`` (``cos``, ``sin``: its
    normal, towards the lit side)."""

    level: float
    rows: np.ndarray
    cols: np.ndarray
    cos: float
    sin: float
    rho: float
    start: float
    stop: float

    @property
    def length(self) -> float:
        return self.stop - self.start


def shadow_edges(values: np.ndarray, *, strict: bool = False) -> list[ShadowEdge]:
    """The long straight edges of hard shadows in ``values`` (paper: light is high).

    ``strict``: also not darker further in (a stroke's lighter flank beside its core,
    on a drawing, is otherwise as straight and flat as a shadow's edge; in a photo the
    table, in shadow too, may lie there)."""
    height, width = values.shape
    if min(height, width) < 4 * FLAT_OUT:
        return []
    pixels = edge_pixels(values)
    if pixels is None:
        return []  # nothing, or too much (texture, noise) to tell a shadow's edge in
    min_length = max(MIN_LENGTH * min(height, width), MIN_PIXELS)
    found = []
    for line in strongest_lines(pixels, min_length, MAX_LINES):
        normal = np.array([np.cos(line.theta), np.sin(line.theta)], dtype=np.float32)
        for start, stop in _segments(line.along, min_length):
            edge = _shadow_edge(values, normal, line.rho, start, stop, strict)
            if edge is not None:
                found.append(edge)
    return found


def shadow_seeds(values: np.ndarray) -> np.ndarray:
    """Bool mask of pixels just inside hard shadows of ``values`` (paper: light is
    high), at the shadow's own level, along its long straight edges."""
    seeds = np.zeros(values.shape, dtype=bool)
    for edge in shadow_edges(values):
        seeds[edge.rows, edge.cols] = True
    return seeds


def _segments(along: np.ndarray, least: float) -> list[tuple[float, float]]:
    """The stretches of a line's pixels (sorted positions along it) with no gap over
    ``GAP``, at least ``least`` long."""
    if along.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(along) > GAP)
    starts = np.concatenate(([0], breaks + 1))
    stops = np.concatenate((breaks, [along.size - 1]))
    keep = along[stops] - along[starts] >= least
    return list(zip(along[starts[keep]].tolist(), along[stops[keep]].tolist(), strict=True))


def _shadow_edge(
    values: np.ndarray, normal: np.ndarray, rho: float, start: float, stop: float, strict: bool
) -> ShadowEdge | None:
    """The segment as a shadow's edge, with its seeds, if its profile is a shadow's step:
    sharp, by a shadow's factor, steady along it, flat and smooth on both sides."""
    height, width = values.shape
    cos, sin = float(normal[0]), float(normal[1])
    t = np.arange(start, stop, SAMPLE_EVERY, dtype=np.float32)
    base_x, base_y = rho * cos - t * sin, rho * sin + t * cos  # points on the line

    def read(offset: float) -> np.ndarray:
        x = np.clip(np.round(base_x + offset * cos).astype(np.intp), 0, width - 1)
        y = np.clip(np.round(base_y + offset * sin).astype(np.intp), 0, height - 1)
        return values[y, x]

    lit, dark, deep = read(STEP_OUT), read(-STEP_OUT), read(-FLAT_OUT)
    if np.mean(np.abs(read(FLAT_OUT) - lit) <= FLAT_TOL * lit) < FLAT_SHARE:
        return None  # a soft edge (a blurred stroke's flank), or lit only as wide as a gap
    ratio = dark / np.maximum(lit, 1.0)
    low, middle, high = np.percentile(ratio, (25, 50, 75))
    if not DARKEST <= middle <= LIGHTEST or high - low > STEADY:
        return None
    level = float(np.median(dark))
    if dark.size > 1 and float(np.median(np.abs(np.diff(dark)))) > SMOOTH * level:
        return None  # a textured surface (wood grain, stone) beside the edge, not a shadow
    if np.mean(np.abs(deep - level) <= FLAT_TOL * level) < FLAT_SHARE:
        return None  # dark only as wide as a stroke: not a shadow
    if _a_stroke(read, level, stop - start):
        return None  # as wide as a thick pen all along: a stroke, not a shadow
    for depth in INK_DEPTHS if strict else ():
        if np.mean(read(-depth) < (1.0 - FLAT_TOL) * level) > INK_SHARE:
            return None  # darker further in: a stroke's lighter flank beside its core
    rows, cols = [], []
    for depth in SEED_DEPTH:
        x = np.round(base_x - depth * cos).astype(np.intp)
        y = np.round(base_y - depth * sin).astype(np.intp)
        here = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        x, y = x[here], y[here]
        own = np.abs(values[y, x] - level) <= FLAT_TOL * level
        rows.append(y[own])
        cols.append(x[own])
    return ShadowEdge(
        level,
        np.concatenate(rows),
        np.concatenate(cols),
        cos,
        sin,
        float(rho),
        float(start),
        float(stop),
    )


def _a_stroke(read: Callable[[float], np.ndarray], level: float, length: float) -> bool:
    """Whether the dark side of an edge (``read(-depth)``: levels at that depth, along
    it) is a stroke's: lighter again within a thick pen's width nearly all along, and
    that width steady (a shadow's wedge widens) or the edge only a few widths long."""
    depths = np.arange(STEP_OUT + 1, BAND_DEEPEST + 1, 2)
    lighter = np.stack([read(-d) > (1.0 + 2.0 * FLAT_TOL) * level for d in depths])
    ended = lighter.any(axis=0)
    if ended.mean() < BAND_SHARE:
        return False
    widths = depths[lighter[:, ended].argmax(axis=0)]
    low, middle, high = np.percentile(widths, (25, 50, 75))
    return bool(high - low <= max(BAND_SPREAD * middle, 2.0) or length < BAND_LENGTH * middle)

"""A sheet of paper found by its straight sides, whatever shadows fall across it.

A hard shadow across a sheet and the table darkens both by one factor, so that the
shadowed paper may be as dark as the lit table, and a threshold on grey levels (what
``service.imaging.sheet`` searches first with) no longer tells paper from table. In
the log image, though, the sheet's edge is the same step all along its length, lit or
shadowed: each of the sheet's sides is one long straight line of log-gradient pixels
from corner to corner (or to the frame), with the lighter side inwards.

So the sheet is sought as a convex region bounded by two to four such lines (the
frame bounding it elsewhere), their normals roughly at right angles or opposite, each
supported by edge pixels nearly all along the part of it that bounds the region, and
the region lighter inside than outside along each. A shadow's edge is a straight step
too, but its lighter side faces away from the shadow: it bounds the lit part of the
sheet, never a region larger than the sheet, whose sides would then run on past the
sheet's corners where no edge supports them. Of the regions found, the largest is the
sheet.

Cost: the Hough lines of ``service.imaging.hough`` (a few vectorised passes over the
working image), then per combination of lines a few small vectorised operations; the
lines and their combinations are capped.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from service.imaging.hough import Line, edge_pixels, strongest_lines

FLOOR = 16.0  # grey levels: darker is raised to this before the log (a dark table's noise)
MAX_LINES = 14  # strongest lines considered
MIN_SIDE = 0.2  # a side is at least this share of the image's shorter side long
MIN_PIXELS = 24  # ... and this many pixels
MAX_COMBINATIONS = 1500  # combinations of lines examined, at most
BIN = 4.0  # pixels along a line per support bin
COVER = 0.85  # a side has edge pixels in this share of its bins (a neighbour counts) ...
END_BINS = 1  # ... and in one of this many bins at each end (a corner, or the frame)
SQUARE = 35.0  # degrees: adjacent sides' normals within this of a right angle ...
OPPOSITE = 35.0  # ... opposite sides' within this of opposite directions
MIN_SHARE = 0.08  # the region covers at least this share of the image ...
MAX_SHARE = 0.95  # ... and at most this
READ_OUT = 4  # pixels either side of a side where paper and table are read ...
MAX_RATIO = 0.8  # ... the table at most this share of the paper's level (median) ...
STEADY = 0.25  # ... steadily so (interquartile range of the log ratio)
SAMPLE_EVERY = 3  # pixels between the places read along a side
INSET = 4  # pixels the crop keeps inside the sides (the edge is blurred)
FILL_SPAN = 5  # pixels averaged for the level the surround is painted with
SMOOTH_ROWS = 9  # ... averaged over this many neighbouring rows
GRID = 48  # sample points along each axis for the region's area


@dataclass(frozen=True)
class Sides:
    """The sheet's bounding lines: unit normals (towards the paper) and distances, so
    that the sheet is where ``normals @ (x, y) >= rhos`` for every line."""

    normals: np.ndarray
    rhos: np.ndarray


def find_sides(gray: np.ndarray) -> Sides | None:
    """The sides of the largest sheet in ``gray`` bounded by two to four straight
    edges (lighter inside, supported all along), or None."""
    height, width = gray.shape
    pixels = edge_pixels(gray, FLOOR)
    if pixels is None:
        return None
    least = max(MIN_SIDE * min(height, width), MIN_PIXELS)
    lines = [line for line in strongest_lines(pixels, least, MAX_LINES) if line.along.size]
    if len(lines) < 2:
        return None
    support = [_support(line) for line in lines]
    thetas = np.array([line.theta for line in lines])
    turn = np.degrees(np.abs((thetas[:, None] - thetas[None, :] + np.pi) % (2 * np.pi) - np.pi))
    fits = (np.abs(turn - 90.0) <= SQUARE) | (turn >= 180.0 - OPPOSITE)
    ys, xs = np.mgrid[0:GRID, 0:GRID].astype(np.float32)
    points = np.stack(((xs.ravel() + 0.5) * width / GRID, (ys.ravel() + 0.5) * height / GRID))
    best, best_area, examined = None, MIN_SHARE * points.shape[1], 0
    for size in (2, 3, 4):
        for chosen in combinations(range(len(lines)), size):
            if not all(fits[a, b] for a, b in combinations(chosen, 2)):
                continue
            examined += 1
            if examined > MAX_COMBINATIONS:
                return best
            normals = np.array([[np.cos(thetas[i]), np.sin(thetas[i])] for i in chosen])
            rhos = np.array([lines[i].rho for i in chosen])
            area = int(np.count_nonzero((normals @ points >= rhos[:, None]).all(axis=0)))
            if area <= best_area or area > MAX_SHARE * points.shape[1]:
                continue
            sides = Sides(normals, rhos)
            if all(
                _a_side(gray, sides, k, lines[i], support[i], least) for k, i in enumerate(chosen)
            ):
                best, best_area = sides, area
    return best


def _support(line: Line) -> tuple[float, np.ndarray]:
    """Where along ``line`` it has edge pixels: the first bin's position and a bool per
    ``BIN`` pixels, a neighbouring bin's pixels counting too."""
    start = float(line.along[0])
    bins = ((line.along - start) / BIN).astype(np.intp)
    has = np.zeros(int(bins[-1]) + 1, dtype=bool)
    has[bins] = True
    near = has.copy()
    near[1:] |= has[:-1]
    near[:-1] |= has[1:]
    return start, near


def _extent(sides: Sides, k: int, height: int, width: int) -> tuple[float, float] | None:
    """The positions along side ``k`` (``-x sin + y cos``) between which it bounds the
    region: inside the other sides' half-planes and the frame."""
    cos, sin = sides.normals[k]
    base = sides.rhos[k] * sides.normals[k]  # the line's point nearest the origin
    direction = np.array([-sin, cos])
    low, high = -np.inf, np.inf
    normals = np.vstack((sides.normals, [[1, 0], [-1, 0], [0, 1], [0, -1]]))
    rhos = np.concatenate((sides.rhos, [0.0, 1.0 - width, 0.0, 1.0 - height]))
    for j in range(len(normals)):
        if j == k:
            continue
        rate = float(normals[j] @ direction)
        gap = float(rhos[j] - normals[j] @ base)  # need rate * t >= gap
        if abs(rate) < 1e-9:
            if gap > 0:
                return None
        elif rate > 0:
            low = max(low, gap / rate)
        else:
            high = min(high, gap / rate)
    return (low, high) if low < high else None


def _a_side(
    gray: np.ndarray,
    sides: Sides,
    k: int,
    line: Line,
    support: tuple[float, np.ndarray],
    least: float,
) -> bool:
    """Whether line ``k`` is a sheet's side where it bounds the region: long, with edge
    pixels nearly all along, and lighter inside than outside, steadily."""
    height, width = gray.shape
    extent = _extent(sides, k, height, width)
    if extent is None or extent[1] - extent[0] < least:
        return False
    start, near = support
    first = int((extent[0] - start) / BIN)
    last = int((extent[1] - start) / BIN)
    if first < -END_BINS or last >= near.size + END_BINS:
        return False  # the side runs on past the edge pixels' stretch
    inside = near[max(first, 0) : last + 1]
    if inside.sum() < COVER * inside.size:
        return False
    if not (inside[:END_BINS].any() and inside[-END_BINS:].any()):
        return False  # unsupported at an end: a line that runs on past a sheet's corner
    cos, sin = sides.normals[k]
    t = np.arange(extent[0] + INSET, extent[1] - INSET, SAMPLE_EVERY)
    base_x = sides.rhos[k] * cos - t * sin
    base_y = sides.rhos[k] * sin + t * cos

    def read(offset: float) -> np.ndarray:
        x = np.clip(np.round(base_x + offset * cos).astype(np.intp), 0, width - 1)
        y = np.clip(np.round(base_y + offset * sin).astype(np.intp), 0, height - 1)
        return gray[y, x]

    ratio = np.log(np.maximum(read(-READ_OUT), 1.0) / np.maximum(read(READ_OUT), 1.0))
    low, middle, high = np.percentile(ratio, (25, 50, 75))
    return bool(middle <= np.log(MAX_RATIO) and high - low <= STEADY)


def share_inside(sides: Sides, box: tuple[int, int, int, int]) -> float:
    """The share of ``box`` (top, bottom, left, right; pixels) inside ``sides``."""
    top, bottom, left, right = box
    ys, xs = np.mgrid[0:GRID, 0:GRID].astype(np.float32) + 0.5
    points = np.stack(
        (left + xs.ravel() * (right - left) / GRID, top + ys.ravel() * (bottom - top) / GRID)
    )
    return float((sides.normals @ points >= sides.rhos[:, None]).all(axis=0).mean())


def crop_to_sides(gray: np.ndarray, sides: Sides) -> np.ndarray:
    """``gray`` cropped to the box of the region ``INSET`` pixels inside ``sides``,
    what lies outside that region painted with the level of the paper next to it (a
    median of ``FILL_SPAN`` pixels, shadows carried on), along its row or its column,
    whichever reaches the region sooner."""
    height, width = gray.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    margins = np.stack(
        [
            xs * np.float32(cos) + ys * np.float32(sin) - np.float32(rho + INSET)
            for (cos, sin), rho in zip(sides.normals, sides.rhos, strict=True)
        ]
    )
    inside = (margins >= 0).all(axis=0)
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if rows.size < 2 or cols.size < 2:
        return gray
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = gray[top:bottom, left:right]
    inside = inside[top:bottom, left:right]
    by_rows, row_distance = _fill_rows(crop, inside)
    by_columns, column_distance = _fill_rows(crop.T, inside.T)
    painted = np.where(row_distance > column_distance.T, by_columns.T, by_rows)
    return np.where(inside, crop, painted).astype(gray.dtype)


def _fill_rows(values: np.ndarray, inside: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` with each row's pixels before its first ``inside`` one and after its
    last painted with the median of the ``FILL_SPAN`` inside pixels there (every row
    holds some: the region is convex and the box is its own), and each pixel's
    distance along its row from the pixels it was painted from."""
    span = values.shape[1]
    first = inside.argmax(axis=1)[:, None]
    last = span - 1 - inside[:, ::-1].argmax(axis=1)[:, None]
    steps = np.arange(FILL_SPAN)
    lines = np.arange(values.shape[0])[:, None]
    start = _smooth(np.median(values[lines, np.minimum(first + steps, last)], axis=1))
    end = _smooth(np.median(values[lines, np.maximum(last - steps, first)], axis=1))
    columns = np.arange(span)[None, :]
    start, end = start[:, None], end[:, None]
    filled = np.where(columns < first, start, values)
    distance = np.maximum(np.maximum(first - columns, columns - last), 0)
    return np.where(columns > last, end, filled), distance


def _smooth(levels: np.ndarray) -> np.ndarray:
    """Running mean of ``SMOOTH_ROWS`` neighbouring rows' levels (ends replicated): row
    by row, the noise would paint stripes, which read as lines of ink."""
    padded = np.pad(levels, SMOOTH_ROWS // 2, mode="edge")
    return np.convolve(padded, np.full(SMOOTH_ROWS, 1.0 / SMOOTH_ROWS), mode="valid")

"""Long straight step edges of the log image, found by a Hough vote.

Shared by the two searches that look for straight edges in a photo of paper: hard
shadows' edges (``service.imaging.edges``) and a sheet's sides
(``service.imaging.sides``). Each pixel where the log level changes fast enough votes
(one ``np.bincount``) for the lines through it across its own gradient direction,
give or take a few degrees; the strongest local maxima are refitted to their own
pixels. A line's direction is that of its normal, which points to the lighter side.

Cost: a few vectorised passes over the (at most 512 px) working image, one
``np.bincount`` for the votes, and per line a pass over its edge pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ANGLES = 360  # line directions (1 degree each, over the full circle) ...
SPREAD = 3  # ... an edge pixel votes for its gradient's and this many on either side
RHO_STEP = 2.0  # pixels per distance bin of the votes
EDGE_LOG = 0.05  # an edge pixel's log-level changes by at least this per pixel
BUSIEST = 0.12  # edge pixels over this share of the image: too busy to look (bounds the cost)
EDGE_THICKNESS = 1.5  # edge pixels across a sharp edge, at least (for the votes)
NEAR = 2.0  # pixels from the line that support it
PEAKS_PER_LINE = 3  # vote peaks looked at per line returned (duplicates are dropped) ...
SAME_TURN = np.radians(2.0)  # ... lines this close in direction ...
SAME_SHIFT = 4.0  # ... and in distance (pixels) being one


@dataclass(frozen=True)
class EdgePixels:
    """The pixels of ``values`` where the log level changes fast: positions (rows
    ``ys``, columns ``xs``) and the direction bin of each one's gradient."""

    ys: np.ndarray
    xs: np.ndarray
    bins: np.ndarray
    height: int
    width: int


@dataclass(frozen=True)
class Line:
    """A line ``x cos(theta) + y sin(theta) = rho`` (the normal towards the lighter
    side), and the sorted positions along it (``-x sin + y cos``) of its own pixels."""

    theta: float
    rho: float
    along: np.ndarray


def edge_pixels(values: np.ndarray) -> EdgePixels | None:
    """The fast-changing pixels of ``values`` (3x3-smoothed log), or None where there
    are none or too many (texture, noise) to tell lines in."""
    height, width = values.shape
    log = np.log(np.maximum(values, 1.0)).astype(np.float32)
    log = _box3(log)
    gy = 0.5 * (log[2:, 1:-1] - log[:-2, 1:-1])
    gx = 0.5 * (log[1:-1, 2:] - log[1:-1, :-2])
    strong = np.hypot(gx, gy) > EDGE_LOG
    ys, xs = np.nonzero(strong)
    if ys.size == 0 or ys.size > BUSIEST * strong.size:
        return None
    angle = np.arctan2(gy[ys, xs], gx[ys, xs])  # towards the lighter side
    bins = np.round(angle / (2 * np.pi) * ANGLES).astype(np.intp) % ANGLES
    ys, xs = (ys + 1).astype(np.float32), (xs + 1).astype(np.float32)
    return EdgePixels(ys, xs, bins, height, width)


def strongest_lines(pixels: EdgePixels, least: float, count: int) -> list[Line]:
    """The ``count`` strongest lines with at least ``least`` pixels' worth of votes,
    each refitted to its own pixels (those of nearby directions, within ``NEAR``)."""
    lines: list[Line] = []
    for theta, rho in _peaks(pixels, least, PEAKS_PER_LINE * count):
        # Only the pixels of nearby directions can be the line's (and its refit's).
        near = np.abs((pixels.bins - round(theta / (2 * np.pi) * ANGLES)) % ANGLES - ANGLES // 2)
        near = near >= ANGLES // 2 - 2 * SPREAD
        line = _refit(pixels.ys[near], pixels.xs[near], pixels.bins[near], theta, rho, least)
        # The votes' plateau across a line's directions holds several peaks, which refit
        # to the same line: one is kept, and the next strongest line gets its place.
        if not any(_same(line, other) for other in lines):
            lines.append(line)
        if len(lines) == count:
            break
    return lines


def _same(line: Line, other: Line) -> bool:
    """Whether two refitted lines are one: directions within ``SAME_TURN`` and distances
    within ``SAME_SHIFT`` pixels."""
    turn = abs((line.theta - other.theta + np.pi) % (2 * np.pi) - np.pi)
    return turn <= SAME_TURN and abs(line.rho - other.rho) <= SAME_SHIFT


def _peaks(pixels: EdgePixels, least: float, count: int) -> list[tuple[float, float]]:
    """(direction, distance) of the strongest lines: each edge pixel votes for the lines
    through it across its own gradient direction, give or take ``SPREAD`` degrees."""
    ys, xs, bins = pixels.ys, pixels.xs, pixels.bins
    reach = int(np.hypot(pixels.height, pixels.width) / RHO_STEP) + 2
    centres = (np.arange(ANGLES) * 2 * np.pi / ANGLES).astype(np.float32)
    b = (bins[None, :] + np.arange(-SPREAD, SPREAD + 1)[:, None]) % ANGLES
    rho = xs * np.cos(centres[b]) + ys * np.sin(centres[b])
    r = np.round(rho / RHO_STEP).astype(np.intp) + reach
    votes = np.bincount((b * 2 * reach + r).reshape(-1), minlength=ANGLES * 2 * reach)
    grid = votes.reshape(ANGLES, 2 * reach)
    # Local maxima over neighbouring directions (circular) and distances, separably.
    padded = np.concatenate((grid[-SPREAD:], grid, grid[:SPREAD]))
    around = padded[:ANGLES].copy()
    for i in range(1, 2 * SPREAD + 1):
        np.maximum(around, padded[i : i + ANGLES], out=around)
    padded = np.pad(around, ((0, 0), (2, 2)))
    around = np.max([padded[:, j : j + 2 * reach] for j in range(5)], axis=0)
    # A sharp edge is two pixels thick or more, each voting once for its line.
    peak = (grid >= around) & (grid >= EDGE_THICKNESS * least)
    flat = np.flatnonzero(peak.reshape(-1))
    order = flat[np.argsort(grid.reshape(-1)[flat])[::-1][:count]]
    return [
        (float(centres[i // (2 * reach)]), float((i % (2 * reach) - reach) * RHO_STEP))
        for i in order
    ]


def _refit(
    ys: np.ndarray, xs: np.ndarray, bins: np.ndarray, theta: float, rho: float, least: float
) -> Line:
    """The line refitted to its own edge pixels, with their positions along it (none
    where fewer than ``least``). The votes' bins are coarse: the line is fitted again
    to the pixels near it."""
    for reach in (NEAR + RHO_STEP, NEAR):
        centre = round(theta / (2 * np.pi) * ANGLES) % ANGLES
        turn = np.abs((bins - centre + ANGLES // 2) % ANGLES - ANGLES // 2)
        cos, sin = np.cos(theta), np.sin(theta)
        offset = xs * cos + ys * sin - rho
        own = (turn <= SPREAD) & (np.abs(offset) <= reach)
        if np.count_nonzero(own) < least:
            return Line(theta, rho, np.zeros(0, dtype=np.float32))
        along = -xs[own] * sin + ys[own] * cos
        if reach > NEAR:  # offset = a + b * along, least squares: turn and shift the line
            slope, shift = np.polyfit(along, offset[own], 1)
            turn_by = float(np.arctan(slope))
            theta, rho = theta - turn_by, (rho + float(shift)) * float(np.cos(turn_by))
    return Line(theta, rho, np.sort(along))


def _box3(values: np.ndarray) -> np.ndarray:
    """3x3 mean, edges replicated."""
    padded = np.pad(values, 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0

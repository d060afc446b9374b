"""Ruled and grid lines, margins: long straight lines across a photo's ink residual.

Along a row of the image sheared to the lines' tilt, the 20th percentile is the
background unless over 80% of the row is inked, which a digit never is but a ruled
line (or a margin line) is; such rows' excess is subtracted. The tilt is found first
(the peakiest row projection), up to 10 degrees.
"""

from __future__ import annotations

import numpy as np

LINE_SHARE = 0.2  # rows/columns inked beyond all but this share of their length are lines
LINE_TILT = np.radians(10.0)  # lines are looked for up to this tilt ...
LINE_COARSE = np.radians(1.0)  # ... in steps of this, then around the best
LINE_FINE = np.radians(0.1)  # ... in steps of this
LINE_STEP = 6  # the tilt is judged on every this-many-th column
LINE_SIGMAS = 4.0  # a tilted row is a line if inked this many spreads over the others
LINE_CONTRAST = 10.0  # ... and by this many grey levels at least


def remove_lines(residual: np.ndarray) -> None:
    """Subtract, in place, lines inked across most of the image: ruled and grid lines,
    margins, at the tilt of the sheet.

    Along a row of the image sheared to the lines' tilt, the 20th percentile is the
    background unless over 80% of the row is inked, which a digit never is but a
    ruled line (or a margin line) is. The tilt is the ruled lines'; a grid's (or a
    margin's) vertical lines are tilted the other way by the same angle.
    """
    slope = _line_slope(residual)
    _remove_rows(residual, 0.0)  # lines along the frame (its edges, a flat sheet's rules)
    _remove_rows(residual, slope)
    columns = np.ascontiguousarray(residual.T)
    _remove_rows(columns, 0.0)
    _remove_rows(columns, -slope)
    residual[...] = columns.T


def _remove_rows(values: np.ndarray, slope: float) -> None:
    """Subtract the excess of rows (sheared by ``slope``) inked across most of their length."""
    height, width = values.shape
    shift = np.rint(slope * (np.arange(width) - (width - 1) / 2.0)).astype(np.intp)
    reach = int(np.abs(shift).max())
    if reach == 0 and slope != 0.0:
        return  # as good as flat: done by the flat pass
    rows = values
    if reach:
        padded = np.pad(values, ((reach, reach), (0, 0)))
        index = np.arange(height)[:, None] + (shift + reach)[None, :]
        rows = np.take_along_axis(padded, index, axis=0)
    if reach:  # a line rounded onto whole rows wavers by one: take three rows at once
        rows = np.maximum(np.maximum(rows[:-2], rows[1:-1]), rows[2:])
        rows = np.pad(rows, ((1, 1), (0, 0)), mode="edge")
    rank = int(LINE_SHARE * (width - 1))
    level = np.partition(rows, rank, axis=1)[:, rank]
    middle = _median(level)
    excess = np.maximum(level - middle, 0.0)
    if reach:  # only rows that stand clear of the rows' spread: a line, not noise
        spread = 1.4826 * _median(np.abs(level - middle))
        excess[excess <= max(LINE_SIGMAS * spread, LINE_CONTRAST)] = 0.0
    if excess.max() <= 0.0:
        return
    if not reach:
        values -= excess[:, None]
        return
    excess = np.maximum(np.maximum(excess[:-2], excess[1:-1]), excess[2:])
    excess = np.pad(excess, 1, mode="edge")
    # image row y lies on sheared row y - shift(x)
    padded = np.pad(excess, reach)
    index = np.arange(height)[:, None] - shift[None, :] + reach
    values -= padded[index]


def _line_slope(values: np.ndarray) -> float:
    """The tilt (rows per column) of long straight lines across the image, 0 if none:
    the one whose row projection is peakiest (lines add up along their rows only),
    coarse then fine, judged on every ``LINE_STEP``-th column."""
    height, width = values.shape
    if width < 2 * LINE_STEP or height < 2:
        return 0.0
    columns = np.arange(0, width, LINE_STEP)
    weights = values[:, columns].reshape(-1)
    offsets = (columns - (width - 1) / 2.0).astype(np.float32)[None, :]
    ys = np.arange(height, dtype=np.float32)[:, None] + float(height)

    def peakiness(angle: float) -> float:
        bins = np.rint(ys - np.float32(np.tan(angle)) * offsets).astype(np.intp)
        profile = np.bincount(bins.reshape(-1), weights=weights, minlength=3 * height)
        return float(np.dot(profile, profile))

    best = 0.0
    for step, span in ((LINE_COARSE, LINE_TILT), (LINE_FINE, LINE_COARSE / 2)):
        angles = best + np.arange(-span, span + step / 2, step)
        best = float(angles[int(np.argmax([peakiness(float(a)) for a in angles]))])
    return float(np.tan(best))


def _median(values: np.ndarray) -> float:
    """Upper median, without ``np.median``'s overhead on small arrays."""
    middle = values.size // 2
    return float(np.partition(values, middle)[middle])

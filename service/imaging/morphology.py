"""Grey morphology on 2-D float arrays (or batches of them), vectorised: running min/max
by window doubling."""

from __future__ import annotations

import numpy as np


def opening(values: np.ndarray, size: int) -> np.ndarray:
    """Grey opening by a ``size`` x ``size`` square (odd): erosion, then dilation."""
    return extreme_filter(extreme_filter(values, size, np.minimum), size, np.maximum)


def closing(values: np.ndarray, size: int) -> np.ndarray:
    """Grey closing by a ``size`` x ``size`` square (odd): dilation, then erosion."""
    return extreme_filter(extreme_filter(values, size, np.maximum), size, np.minimum)


def extreme_filter(values: np.ndarray, size: int, pick: np.ufunc) -> np.ndarray:
    """Running ``pick`` (np.minimum or np.maximum) over ``size`` x ``size`` centred windows
    of the last two axes (an image, or a batch of them), edges replicated: separable,
    and along each axis by window doubling (log2(size) passes)."""
    return _running(_running(values, size, pick, -2), size, pick, -1)


def _running(values: np.ndarray, size: int, pick: np.ufunc, axis: int) -> np.ndarray:
    """Running ``pick`` along ``axis`` over centred windows of ``size`` (odd) entries."""
    moved = np.moveaxis(values, axis, 0)
    rows = moved.shape[0]
    widths = [(size // 2, size // 2)] + [(0, 0)] * (moved.ndim - 1)
    run = np.pad(moved, widths, mode="edge")
    span = 1
    while 2 * span <= size:  # run[i] = pick of padded rows i .. i + 2 * span - 1
        run = pick(run[:-span], run[span:])
        span *= 2
    rest = size - span  # windows of span rows -> of size rows: two overlapping ones
    return np.moveaxis(pick(run[:rows], run[rest : rest + rows]), 0, axis)

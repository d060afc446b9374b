"""Grey morphology on 2-D float arrays, vectorised: running min/max by window doubling."""

from __future__ import annotations

import numpy as np


def opening(values: np.ndarray, size: int) -> np.ndarray:
    """Grey opening by a ``size`` x ``size`` square (odd): erosion, then dilation."""
    return extreme_filter(extreme_filter(values, size, np.minimum), size, np.maximum)


def closing(values: np.ndarray, size: int) -> np.ndarray:
    """Grey closing by a ``size`` x ``size`` square (odd): dilation, then erosion."""
    return extreme_filter(extreme_filter(values, size, np.maximum), size, np.minimum)


def extreme_filter(values: np.ndarray, size: int, pick: np.ufunc) -> np.ndarray:
    """Running ``pick`` (np.minimum or np.maximum) over ``size`` x ``size`` centred windows,
    edges replicated: separable, and along each axis by window doubling (log2(size) passes)."""
    return _running(_running(values, size, pick).T, size, pick).T


def _running(values: np.ndarray, size: int, pick: np.ufunc) -> np.ndarray:
    """Running ``pick`` along axis 0 over centred windows of ``size`` (odd) rows."""
    rows = values.shape[0]
    run = np.pad(values, ((size // 2, size // 2), (0, 0)), mode="edge")
    span = 1
    while 2 * span <= size:  # run[i] = pick of padded rows i .. i + 2 * span - 1
        run = pick(run[:-span], run[span:])
        span *= 2
    rest = size - span  # windows of span rows -> of size rows: two overlapping ones
    return pick(run[:rows], run[rest : rest + rows])

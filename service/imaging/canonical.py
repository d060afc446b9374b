"""Pass-through for images that already are a model canvas.

An upload that is exactly what the preprocessing would produce (a 28x28 crop with a
clean background, the ink's box fitted to ``fit_box`` and centred by mass, as every
MNIST image is) goes to the model as it is: the full procedure could only resample
it a little, and costs several times more than the decode itself.
"""

from __future__ import annotations

import functools

import numpy as np

from service.imaging.levels import BOX_LEVEL, STROKE_PEAK

CLEAN_LEVEL = 8.0  # background pixels may differ from pure black (or white) by this much
BOX_SLACK = 1  # the ink box's longer side may differ from fit_box by this many pixels
MASS_SLACK = 1.5  # the centre of mass may be this many pixels from the canvas centre


def canonical_canvas(gray: np.ndarray, height: int, width: int, fit_box: int) -> np.ndarray | None:
    """The uint8 canvas if ``gray`` already is one (either polarity), else ``None``.

    Written as a dozen whole-array numpy calls: it runs on every small upload.
    """
    if gray.shape != (height, width):
        return None
    row_peak, col_peak = gray.max(axis=1), gray.max(axis=0)
    if max(row_peak[0], row_peak[-1], col_peak[0], col_peak[-1]) <= CLEAN_LEVEL:
        ink = gray
    else:
        row_low, col_low = gray.min(axis=1), gray.min(axis=0)
        if min(row_low[0], row_low[-1], col_low[0], col_low[-1]) < 255.0 - CLEAN_LEVEL:
            return None
        ink = 255.0 - gray
        row_peak, col_peak = 255.0 - row_low, 255.0 - col_low
    if row_peak.max() < STROKE_PEAK:  # faint: the full procedure stretches it
        return None
    longest = max(_extent(row_peak > BOX_LEVEL), _extent(col_peak > BOX_LEVEL))
    if abs(longest - fit_box) > BOX_SLACK:
        return None
    row_mass, col_mass = ink.sum(axis=1), ink.sum(axis=0)
    mass = float(row_mass.sum())
    centre_y = float(np.dot(row_mass, _positions(height))) / mass
    centre_x = float(np.dot(col_mass, _positions(width))) / mass
    if (
        abs(centre_y - (height - 1) / 2) > MASS_SLACK
        or abs(centre_x - (width - 1) / 2) > MASS_SLACK
    ):
        return None
    return np.rint(ink).astype(np.uint8)


def _extent(flags: np.ndarray) -> int:
    """Pixels from the first to the last set flag (at least one is set)."""
    first = int(flags.argmax())
    last = flags.size - 1 - int(flags[::-1].argmax())
    return last - first + 1


@functools.cache
def _positions(size: int) -> np.ndarray:
    return np.arange(size, dtype=np.float32)

"""Grey levels and helpers that several stages of the image pipeline share.

Levels are on the 0-255 scale of the ink image (light digit on black, stretched so
that full ink is about 255), as ``ink`` makes it and ``box`` and ``canonical`` read it.
"""

from __future__ import annotations

import numpy as np

FULL = 255.0
NO_DIGIT = "no digit found"  # the detail of every NoDigitFound
BOX_LEVEL = 0.2 * FULL  # ink at or above this counts for the ink's bounding box
STROKE_PEAK = 0.5 * FULL  # a stroke's ink gets at least this bright somewhere


def border_pixels(gray: np.ndarray) -> np.ndarray:
    """The outermost rows and columns, each pixel once."""
    return np.concatenate((gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]))

"""From the cropped ink to the model's canvas, as MNIST was made.

MNIST's digits were scaled so that the longer side of the ink box is 20 px (aspect
ratio kept, antialiased) and pasted into 28x28 so that the centre of mass falls on
the centre. MNIST strokes are also fairly thick for that size (about 1.8 px by the
measure below; under 1 px for only 1% of the test set, over 3.5 px for 1%), which a
thin pen line in a photo is not: such strokes are thickened first, at four times the
target scale. A marker's or a blurred stroke, thicker than MNIST's ever are, is
thinned the same way (grey erosion).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

MIN_STROKE = 1.0  # stroke width (px at the fit scale) under which strokes are thickened
TARGET_STROKE = 1.8  # ... to about this, MNIST's median
SUPERSAMPLE = 4  # thickening happens at this multiple of the fit scale
MAX_STROKE = 4.5  # stroke width over which strokes are thinned (7 MNIST test digits of 10000) ...
THICK_STROKE = 3.0  # ... to about this (MNIST: 90% under 2.6)


def stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: ink mass over half the perimeter of its half-level mask."""
    mask = ink > 127.5
    inner = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(mask[:, 1:] != mask[:, :-1])
    edges = np.count_nonzero(mask[[0, -1]]) + np.count_nonzero(mask[:, [0, -1]])
    perimeter = inner + edges
    return float(ink.sum()) / 255.0 / max(perimeter / 2.0, 1.0)


def fit_patch(crop: np.ndarray, longest: int, fit_box: int) -> np.ndarray:
    """Scale the ink crop so that ``longest`` pixels become ``fit_box``; float32 ``[0, 255]``.

    ``longest`` is the longer side of the ink box; the crop may be a little larger (a
    faint fringe, kept so that it still counts for the centre of mass).
    """
    width_at_fit = stroke_width(crop) * fit_box / longest
    # Thickening needs room: grow in a supersampled (or the original) resolution.
    work = min(longest, SUPERSAMPLE * fit_box)
    patch = crop
    if work < longest:
        patch = _resize(crop, work / longest, Image.Resampling.BOX)
    passes = round((TARGET_STROKE - width_at_fit) * work / fit_box / 2)
    if width_at_fit < MIN_STROKE and passes > 0:
        patch = _dilate(patch, passes)  # the grown strokes stretch the box by 2 * passes
    elif width_at_fit > MAX_STROKE:
        # A marker's or a blurred stroke, thicker than any MNIST digit's: thinned to the
        # thick end of MNIST's. The box shrinks by 2 * passes, the patch as much.
        passes = -round((width_at_fit - THICK_STROKE) * work / fit_box / 2)
        if passes < 0:
            patch = _erode(patch, -passes)
    else:
        passes = 0
    if work + 2 * passes != fit_box:
        patch = _resize(patch, fit_box / (work + 2 * passes), Image.Resampling.LANCZOS)
    np.clip(patch, 0.0, 255.0, out=patch)
    top = float(patch.max())
    if 0.0 < top < 254.0:  # MNIST digits all reach 254-255; thin lines lose it in scaling
        patch *= 255.0 / top
    return patch


def place_by_mass(patch: np.ndarray, height: int, width: int) -> np.ndarray:
    """Paste ``patch`` into a ``height x width`` uint8 canvas with its centre of mass central.

    The shift is whole pixels (no resampling blur), like MNIST's; the patch is kept
    inside the canvas. The target is ``(height / 2, width / 2)`` in pixel-index units,
    which is where MNIST's centres of mass lie (mean 13.99, 14.01 on the test set).
    """
    rows, cols = patch.shape
    total = float(patch.sum())
    if total > 0:
        com_y = float((patch.sum(axis=1) * np.arange(rows)).sum()) / total
        com_x = float((patch.sum(axis=0) * np.arange(cols)).sum()) / total
    else:
        com_y, com_x = (rows - 1) / 2.0, (cols - 1) / 2.0
    top = min(max(round(height / 2.0 - com_y), 0), max(height - rows, 0))
    left = min(max(round(width / 2.0 - com_x), 0), max(width - cols, 0))
    canvas = np.zeros((height, width), dtype=np.uint8)
    region = patch[: height - top, : width - left]
    canvas[top : top + region.shape[0], left : left + region.shape[1]] = np.rint(region)
    return canvas


def _resize(values: np.ndarray, scale: float, resample: Image.Resampling) -> np.ndarray:
    height, width = values.shape
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))
    return np.array(image.resize(size, resample), dtype=np.float32)


def _erode(values: np.ndarray, passes: int) -> np.ndarray:
    """Grey erosion by a 3x3 square, ``passes`` times, outside taken as zero; the result
    loses ``passes`` pixels on each side (only eroded-away edges)."""
    shrunk = values
    for _ in range(passes):
        edge = np.pad(shrunk, 1)
        rows = np.minimum(np.minimum(edge[:-2], edge[1:-1]), edge[2:])
        shrunk = np.minimum(np.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    rows, cols = shrunk.shape
    if min(rows, cols) <= 2 * passes:
        return shrunk
    return shrunk[passes : rows - passes, passes : cols - passes]


def _dilate(values: np.ndarray, passes: int) -> np.ndarray:
    """Grey dilation by a 3x3 square, ``passes`` times, on a zero-padded copy."""
    grown = np.pad(values, passes)
    for _ in range(passes):
        edge = np.pad(grown, 1)
        rows = np.maximum(np.maximum(edge[:-2], edge[1:-1]), edge[2:])
        grown = np.maximum(np.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])
    return grown

"""The pen's stroke width in a photo, from a mask of its clearly inked pixels.

Twice the area over the perimeter is the width of a long stroke. In a photo the mask
can also hold wide dark regions (a hard shadow, a strip of table): their area would
make the "stroke" many times wider, and the background's opening, a few stroke widths
wide, would then take the shadow for ink. So the pixels much thicker than the thin
ones (thickness: the shorter of the row and column runs of the mask through the
pixel) are left out first: a digit's strokes and junctions stay, wide regions go.
"""

from __future__ import annotations

import numpy as np

THIN_QUANTILE = 0.5  # the typical thickness is this quantile of the pixels' ...
THICK_RATIO = 3.0  # ... and pixels over this many times it are no stroke


def stroke_width(mask: np.ndarray) -> float:
    """Rough stroke width in pixels of the strokes in ``mask`` (bool, 2-D)."""
    if not mask.any():
        return 0.0
    thickness = np.minimum(_run_lengths(mask), _run_lengths(mask.T).T)
    inked = thickness[mask]
    rank = int(THIN_QUANTILE * (inked.size - 1))
    thin = float(np.partition(inked, rank)[rank])
    strokes = mask & (thickness <= THICK_RATIO * thin)
    return _area_over_perimeter(strokes)


def _area_over_perimeter(mask: np.ndarray) -> float:
    """Twice the area over the perimeter: the width of long strokes."""
    perimeter = np.count_nonzero(mask[1:] != mask[:-1]) + np.count_nonzero(
        mask[:, 1:] != mask[:, :-1]
    )
    return 2.0 * np.count_nonzero(mask) / max(perimeter, 1)


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For each pixel, the length of the run of set pixels along its row (0 if unset)."""
    height, width = mask.shape
    padded = np.zeros((height, width + 1), dtype=bool)
    padded[:, :width] = mask
    flat = padded.reshape(-1)  # rows end with an unset pixel: no run crosses them
    starts = flat & ~np.concatenate(([False], flat[:-1]))
    run = np.cumsum(starts)  # run number of each pixel (runs counted from 1)
    lengths = np.bincount(run, weights=flat, minlength=int(run[-1]) + 1)
    out = np.where(flat, lengths[run], 0.0)
    return out.reshape(height, width + 1)[:, :width]

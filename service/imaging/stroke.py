"""The pen's stroke width in a photo, from a mask of its clearly inked pixels.

Twice the area over the perimeter is the width of a long stroke. In a photo the mask
can also hold wide dark regions (a hard shadow, a strip of table): their area would
make the "stroke" many times wider, and the background's opening, a few stroke widths
wide, would then take the shadow for ink. So the pixels much thicker than the typical
one (thickness: the shorter of the row and column runs of the mask through the
pixel; typical: counted by runs, not by pixels) are left out first: a digit's strokes
and junctions stay, wide regions go.
"""

from __future__ import annotations

import numpy as np

THICK_RATIO = 3.0  # pixels this many times thicker than the typical one are no stroke
WIDE_SHARE = 0.25  # ... where they are at least this share of the mask


def stroke_width(mask: np.ndarray) -> float:
    """Rough stroke width in pixels of the strokes in ``mask`` (bool, 2-D)."""
    if not mask.any():
        return 0.0
    thickness = np.minimum(_run_lengths(mask), _run_lengths(mask.T).T)
    # The typical thickness: the median over the runs, each pixel weighted by one over
    # its thickness (a wide region's many pixels count as few runs as a stroke's).
    inked = np.sort(thickness[mask])
    weight = np.cumsum(1.0 / inked)
    typical = float(inked[int(np.searchsorted(weight, 0.5 * weight[-1]))])
    strokes = mask & (thickness <= THICK_RATIO * typical)
    if np.count_nonzero(strokes) >= (1.0 - WIDE_SHARE) * inked.size:
        strokes = mask  # no wide region, only a few junctions or loops filled in
    return area_over_perimeter(strokes, mask)


def area_over_perimeter(kept: np.ndarray, mask: np.ndarray) -> float:
    """Twice the area of ``kept`` (part of ``mask``) over its perimeter against the
    pixels outside ``mask``: the width of long strokes, where cutting a wide region
    out of the mask adds no perimeter to the strokes that touch it."""
    outside = ~mask
    perimeter = (
        np.count_nonzero(kept[1:] & outside[:-1])
        + np.count_nonzero(kept[:-1] & outside[1:])
        + np.count_nonzero(kept[:, 1:] & outside[:, :-1])
        + np.count_nonzero(kept[:, :-1] & outside[:, 1:])
    )
    return 2.0 * np.count_nonzero(kept) / max(perimeter, 1)


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

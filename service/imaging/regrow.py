"""Background that follows wide regions into their narrow parts (hard shadows' wedges).

A grey opening (``service.imaging.ink``) takes for background everything wider than a
few stroke widths. A hard shadow is wide, but its wedge-shaped ends and thin slivers
are as narrow as a stroke there, so the opening leaves them in as "ink". What tells
them from a stroke is the shape: a sliver is the narrow end of a region that is wide
somewhere, at the same level; a stroke is narrow all along and darker than the
paper (or the shadow) it lies on.

So the opening is grown back (a tolerant grey reconstruction): a pixel takes on its
own level as background when a neighbour's background is already within ``tol`` of
it, starting from the opening and repeated until nothing changes: it follows a
lighting gradient along a sliver, but not the steep flank of a stroke, and a stroke
inside a shadow (darker than the shadow by more than ``tol``) stays ink. A shadow
darkens paper by at most ``SHADOW_DEPTH`` of the lit paper's level nearby (a max
filter of the paper level over a quarter of the image): nothing grows darker than
that, so a thick digit's blob, as wide as the opening and as dark as ink, does not
spread to its strokes; and only a shadow grows (at least ``SHALLOWEST`` darker than
the lit paper), not the lit paper, which would eat the faint edges of every stroke.
(``shadows_only=False`` drops both limits, for dark regions of any depth.)

The growing runs on a coarse grid (max-pooled: a sliver or a stroke is never lost),
at most ``MAX_PASSES`` vectorised passes over at most 128x128 cells, and is brought
back to full resolution only where it raised the background, there exactly to the
image's own level.
"""

from __future__ import annotations

import numpy as np

from service.imaging.morphology import extreme_filter

MAX_PASSES = 160  # growing passes at most (a sliver this many cells long is followed)
CHECK_EVERY = 8  # passes between the checks for convergence
COARSE_SIDE = 128  # the growing grid's longer side, at most
SHADOW_DEPTH = 0.6  # a shadow darkens paper by at most this share (ink is darker)
SHALLOWEST = 0.2  # ... and by at least this share (lighting gradients less)
LIT_WINDOW = 0.25  # the lit paper level is the lightest within this share of the side


def regrow(
    light: np.ndarray,
    opening: np.ndarray,
    tol: float,
    *,
    shadows_only: bool = True,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """``opening`` (a background under ``light``, the negative of paper: ink is high)
    grown into the narrow parts of wide regions: wherever ``light`` is reached from it
    by steps of at most ``tol``; ``shadows_only``: only from levels a shadow on the
    paper can have, and no darker.

    ``seeds`` (bool, optional): grow from these pixels instead, at their own level
    (found inside hard shadows by their straight edges, ``service.imaging.edges``),
    down to the darkest of them (a shadow's depth is then known, not assumed); the
    opening is still the background wherever nothing grows."""
    height, width = light.shape
    factor = max(1, -(-max(height, width) // COARSE_SIDE))
    coarse_light = _max_pool(light, factor)
    coarse_open = _max_pool(opening, factor)
    deepest, shallowest = np.float32(np.inf), np.float32(-np.inf)
    if shadows_only:
        window = int(LIT_WINDOW * max(coarse_open.shape)) | 1
        lit = 255.0 - extreme_filter(coarse_open, window, np.minimum)
        deepest = 255.0 - (1.0 - SHADOW_DEPTH) * lit
        shallowest = 255.0 - (1.0 - SHALLOWEST) * lit
    if seeds is None:
        grown = np.minimum(coarse_open, deepest)
    else:
        # A cell's seed level is its seeds' own (not a stroke's beside them).
        grown = _max_pool(np.where(seeds, light, -np.inf), factor)
        if not np.isfinite(grown).any():
            return opening
        deepest = np.float32(grown.max() + tol)
    for step in range(MAX_PASSES):
        near = _dilate3(grown)
        take = (coarse_light <= near + tol) & (near >= shallowest)
        updated = np.where(take, np.maximum(grown, coarse_light), grown)
        np.minimum(updated, deepest, out=updated)
        np.maximum(updated, grown, out=updated)
        if step % CHECK_EVERY == CHECK_EVERY - 1 and np.array_equal(updated, grown):
            break
        grown = updated
    raised = grown > coarse_open
    if not raised.any():
        return opening
    up = np.repeat(np.repeat(grown, factor, axis=0), factor, axis=1)[:height, :width]
    mask = np.repeat(np.repeat(raised, factor, axis=0), factor, axis=1)[:height, :width]
    result = opening.copy()
    result[mask] = np.minimum(np.maximum(up[mask], opening[mask]), light[mask])
    return result


def _max_pool(values: np.ndarray, factor: int) -> np.ndarray:
    """Max over ``factor`` x ``factor`` blocks (the last ones padded by replication)."""
    if factor == 1:
        return values.astype(np.float32, copy=True)
    height, width = values.shape
    rows, cols = -(-height // factor), -(-width // factor)
    padded = np.pad(values, ((0, rows * factor - height), (0, cols * factor - width)), mode="edge")
    return padded.reshape(rows, factor, cols, factor).max(axis=(1, 3)).astype(np.float32)


def _dilate3(values: np.ndarray) -> np.ndarray:
    """3x3 grey dilation (running max), edges replicated."""
    padded = np.pad(values, 1, mode="edge")
    rows = np.maximum(np.maximum(padded[:-2], padded[1:-1]), padded[2:])
    return np.maximum(np.maximum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])

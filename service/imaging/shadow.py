"""Whether an image with a uniform border holds a hard shadow: a wide, sharp-edged region.

A uniform border usually means a drawing (a web canvas, a scan, an MNIST crop), whose
background is flat at the border's level. A photo of paper with a uniform border (a
cropped sheet, a page filling the frame, evenly lit) can hold a hard shadow too, and
measured against the border's level the shadow is "ink". What tells a shadow from a
digit's own wide parts (a blurred or thick stroke, a filled loop) is its edge: a
shadow is many stroke widths wide and steps from its level to the paper's within a
pixel or three, while a blurred stroke's profile is a smooth bump as wide as the
stroke. So: the wide part of the ink (a grey opening a few stroke widths wide) must
cover a real share of the image away from the strokes (a thin pen's faint halo, a
blocky digit's grey blocks lie right beside them), and just outside it, away from the
strokes too, the ink must have fallen most of the way to the background. A shadow as
dark as the ink counts as strokes and is not found here.

Cost: the stroke width, one opening and two running maxima of the (at most 512 px)
working image.
"""

from __future__ import annotations

import numpy as np

from service.imaging.morphology import extreme_filter, opening
from service.imaging.stroke import stroke_width

STROKE_LEVEL = 0.6  # share of the ink's contrast that counts as stroke for its width
OPENING_STROKES = 3.0  # a wide region is wider than this many stroke widths...
MIN_OPENING = 7  # ... and than this many pixels
WIDE_LEVEL = 0.15  # ... at this share of the ink's contrast or more
MIN_SHARE = 0.01  # ... and covers this share of the image at least
RING = 2  # pixels just outside the wide region, where a hard edge has ended
SHARP_LEVEL = 0.25  # ... the ink there is under this share of the region's level


def hard_shadow(residual: np.ndarray, lightest: float) -> bool:
    """Whether ``residual`` (ink positive, background zero at the border's level) holds
    a wide region with a sharp edge: a hard shadow, not a drawing's strokes."""
    if lightest <= 0.0:
        return False
    width = stroke_width(residual > STROKE_LEVEL * lightest)
    size = max(round(OPENING_STROKES * width), MIN_OPENING) | 1
    if 2 * size > min(residual.shape):
        return False  # strokes as wide as the image: nothing can be wider than them
    wide = opening(residual, size)
    strokes = (residual > STROKE_LEVEL * lightest).astype(np.float32)
    near = extreme_filter(strokes, 2 * size + 1, np.maximum) > 0
    region = wide > WIDE_LEVEL * lightest
    if np.count_nonzero(region & ~near) < MIN_SHARE * region.size:
        return False
    grown = extreme_filter(region.astype(np.float32), 2 * RING + 1, np.maximum) > 0
    ring = grown & ~region & ~near
    if not ring.any():
        return False
    level = float(np.median(wide[region]))
    return float(np.median(residual[ring])) < SHARP_LEVEL * level

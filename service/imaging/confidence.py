"""Where a digit reading is too unsure to be trusted: ``uncertain_flags``.

A digit reply carries ``uncertain: true`` when its top softmax probability (its
``confidence``) is under ``UNCERTAIN_BELOW``, or when the canvas the model saw is a
solid shape rather than pen strokes (``solid_fractions`` over ``SOLID_ABOVE``); the
digit is still given (a half-drawn digit on the web page gets an answer), the flag
tells the client not to trust it.

Measured on digit **v4** (three MLPs in one graph, calibrated: temperature fitted
on the validation split and folded in, 1.000 for v4; expected calibration error
0.0016 on the MNIST test set, 15 bins), through the full path (bytes ->
``preprocess_image`` -> ONNX Runtime), with ``python -m tests.test_photos 100
confidence`` and ``python -m training.digit.evaluate_families`` (numbers in
docs/photos.md, "Not a digit"):

* the 10000 MNIST test digits as PNG files (99.51% right): 1.6% of the 9951 right
  readings flagged, and 44 of the 49 wrong ones (90%); on v2, where the threshold was
  first chosen, 1.6% and 84% (v3: 1.6% and 90%);
* synthetic non-digits (100 of each): refused ("no digit found") or flagged for 98%
  of faces, 98% of landscapes, 72% of lines of text (which often hold real digits:
  "1984", "x = 42") and 99% of textures. On the confidence alone, 80% of the
  landscapes: their sun, a filled disc on the canvas, reads as a "0" at 0.95-0.99.

**Solid shapes.** The canvas's strokes are a pen's: a few pixels wide (the
preprocessing thins thick ones), so almost none of the ink lies 2 px or more inside
it. Over 40% of it does for a filled disc or blob (a sun, a button, a page read as a
"0"). The highest share among the 1000 digits of each evaluation family is 35%
(thick strokes); the test flags none of those families' right readings, none of the
photo families', and one of the 9951 right MNIST test readings (v4).

Of the candidates measured (0.5, 0.7, 0.9, 0.95, 0.99), 0.95 is the highest that
flags under 2% of the right MNIST readings (0.99 flags 3.5% on v4, 3.6% on v3, 3.9% on v2, and on
v2 5-8% of the right readings of the clean, thin, low-resolution and colour families,
15-32% of the thick, 8-px and blurred ones). A calibrated model is confident on far
more non-digits than v1 was: v1's 0.7, measured when label
smoothing capped clean digits near 0.95, would now let 46% of faces and 70% of lines
of text through as confident digits. A model trained on digits
alone has no "not a digit" class, so no threshold catches every non-digit.
"""

from __future__ import annotations

import numpy as np

UNCERTAIN_BELOW = 0.95  # top softmax probability under which a reading is uncertain
# A canvas whose ink lies mostly deep inside it is a solid shape, not pen strokes
SOLID_DEPTH = 2  # px of the 28x28 canvas: ink this far from the ink's edge is "inside"
SOLID_ABOVE = 0.4  # share of the ink inside it over which the ink is a solid shape
INK_LEVEL = 128  # canvas grey level (0-255) from which a pixel counts as ink


def solid_fractions(canvases: np.ndarray) -> np.ndarray:
    """Per model canvas (uint8 ``[n, height, width]``, light ink on dark), the share of
    its ink lying at least ``SOLID_DEPTH`` px inside it: what an erosion by a
    (2 * depth + 1)-px square keeps (outside the canvas is not ink). Vectorised over the
    batch, as a few boolean ANDs of shifted views: it runs on the event loop, per reply
    (about 30 us for one canvas; the grey-morphology filter took 130 us)."""
    ink = canvases >= INK_LEVEL
    depth, size = SOLID_DEPTH, 2 * SOLID_DEPTH + 1
    count, height, width = ink.shape
    padded = np.zeros((count, height + 2 * depth, width + 2 * depth), dtype=bool)
    padded[:, depth : depth + height, depth : depth + width] = ink  # not ink out there
    down = padded[:, :height, :].copy()  # ink in all `size` rows from here down
    for shift in range(1, size):
        down &= padded[:, shift : shift + height, :]
    inside = down[:, :, :width].copy()  # ... and in all `size` columns from here right
    for shift in range(1, size):
        inside &= down[:, :, shift : shift + width]
    total = np.count_nonzero(ink, axis=(1, 2))
    kept = np.count_nonzero(inside, axis=(1, 2))
    return np.where(total > 0, kept / np.maximum(total, 1), 0.0)


def uncertain_flags(confidences: np.ndarray, canvases: np.ndarray) -> np.ndarray:
    """Whether each reading is not to be trusted: its confidence is under
    ``UNCERTAIN_BELOW``, or what the model saw is a solid shape, not strokes."""
    solid = solid_fractions(canvases) > SOLID_ABOVE
    return (np.asarray(confidences) < UNCERTAIN_BELOW) | solid


__all__ = ["SOLID_ABOVE", "UNCERTAIN_BELOW", "solid_fractions", "uncertain_flags"]

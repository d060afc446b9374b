"""Where a digit reading is too unsure to be trusted: ``UNCERTAIN_BELOW``.

A digit reply carries ``uncertain: true`` when its top softmax probability (its
``confidence``) is under ``UNCERTAIN_BELOW``; the digit is still given (a half-drawn
digit on the web page gets an answer), the flag tells the client not to trust it.

Measured on digit **v3** (two MLPs in one graph, calibrated: temperature folded in,
expected calibration error 0.0016 on the MNIST test set, 15 bins), through the full
path (bytes -> ``preprocess_image`` -> ONNX Runtime), with ``python -m tests.test_photos
100 confidence`` and ``python -m training.digit.evaluate_families`` (numbers in
docs/photos.md, "Not a digit"):

* the 10000 MNIST test digits as PNG files (99.48% right): 1.6% of the 9948 right
  readings score under 0.95, and 47 of the 52 wrong ones (90%); on v2, where the
  threshold was first chosen, 1.6% and 84%;
* synthetic non-digits (100 of each): refused ("no digit found") or under 0.95 for
  91% of faces, 75% of landscapes, 82% of lines of text (which often hold real
  digits: "1984", "x = 42") and 100% of textures (v2: 91%, 93%, 77%, 97%).

Of the candidates measured (0.5, 0.7, 0.9, 0.95, 0.99), 0.95 is the highest that
flags under 2% of the right MNIST readings (0.99 flags 3.6% on v3, 3.9% on v2, and on
v2 5-8% of the right readings of the clean, thin, low-resolution and colour families,
15-32% of the thick, 8-px and blurred ones). A calibrated model is confident on far
more non-digits than v1 was: v1's 0.7, measured when label
smoothing capped clean digits near 0.95, would now let 46% of faces and 70% of lines
of text through as confident digits. A model trained on digits
alone has no "not a digit" class, so no threshold catches every non-digit.
"""

from __future__ import annotations

UNCERTAIN_BELOW = 0.95  # top softmax probability under which a reading is uncertain

__all__ = ["UNCERTAIN_BELOW"]

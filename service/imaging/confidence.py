"""Where a digit reading is too unsure to be trusted: ``UNCERTAIN_BELOW``.

A reply whose top softmax probability is under ``UNCERTAIN_BELOW`` should be marked
``uncertain``. It was measured on digit **v1**, trained with label smoothing 0.1, so
even clear digits top out near 0.9-0.96; digit v2 is calibrated (clean digits score
close to 1, and so do more non-digits), and the threshold has yet to be measured again
for it: nothing serves it yet (no ``uncertain`` field in replies). The figures come
from the full path (bytes -> ``preprocess_image`` -> digit v1), made by
``python -m tests.test_photos 100 confidence`` (numbers in docs/photos.md):

* the first 1000 MNIST test digits (as PNG files; 99.2% read right): of the right
  readings, 1% score under 0.52, 4% under 0.7, 5% under 0.73, half under 0.92; all
  8 wrong readings score under 0.7 (median 0.47);
* synthetic non-digits (100 of each; docs/photos.md): faces are never refused and
  score a median 0.42, 12% at 0.7 or more (a face outline is a fair "0"); landscapes
  are refused 27% of the time, 14% score 0.7+; lines of text, median 0.42, 2% at
  0.7+; textures (wood, stone, blank paper), refused 60%, 17% at 0.7+.

So 0.7 marks as uncertain 4% of the right readings (under the 5% that a 95% bar
allows), every wrong reading of this sample, and 83-98% of each non-digit kind. A
model trained on digits alone has no "not a digit" class, so no threshold catches
every non-digit: a confident face-as-"0" remains possible.
"""

from __future__ import annotations

UNCERTAIN_BELOW = 0.7  # top softmax probability under which a reading is uncertain

__all__ = ["UNCERTAIN_BELOW"]

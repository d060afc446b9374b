"""The digit image preprocessing. ``pipeline`` is the public API and calls the stages
in order; the others are the stages, and ``levels`` what several of them share.

* ``decode``: bytes -> a small float32 grayscale array (any format, mode, size, EXIF
  orientation, transparency), with the pixel-count limit checked from the header.
* ``flatten``: hard shadows divided out of a photo, by rebuilding the log image
  without their long straight edges (found by ``edges``, on ``hough``'s lines).
* ``sheet``: a photo of a sheet of paper on a table (darker, or evenly lighter) ->
  the sheet alone.
* ``ink``: grayscale -> "ink" image, light digit on a dark zero background (polarity,
  uneven illumination, ruled and grid lines at any small tilt, noise, contrast).
* ``box``: the ink's bounding box, specks ignored, faint fringe taken in.
* ``canonical``: pass-through for uploads that already are a model canvas.
* ``geometry``: ink crop -> the MNIST canvas (stroke width, fit box, centre of mass).
* ``levels``: the shared grey levels (the box level, a stroke's peak) and helpers.
* ``confidence``: where a reading counts as uncertain.
"""

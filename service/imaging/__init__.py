"""Building blocks of the digit image preprocessing; the public API is ``service.imaging.pipeline``.

* ``decode``: bytes -> a small float32 grayscale array (any format, mode, size, EXIF
  orientation, transparency), with the pixel-count limit checked from the header.
* ``sheet``: a photo of a sheet of paper on a darker table -> the sheet alone.
* ``ink``: grayscale -> "ink" image, light digit on a dark zero background (polarity,
  uneven illumination, ruled lines, noise, contrast).
* ``box``: the ink's bounding box, specks ignored, faint fringe taken in.
* ``canonical``: pass-through for uploads that already are a model canvas.
* ``geometry``: ink crop -> the MNIST canvas (stroke width, fit box, centre of mass).
"""

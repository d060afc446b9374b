"""Helpers shared by the image preprocessing tests: encoding, and EXIF storage."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

EXIF_STORAGE = {  # orientation tag -> how a camera stores an upright scene
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def encode(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    """``image`` saved as ``fmt`` (Pillow's save options), in memory."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()

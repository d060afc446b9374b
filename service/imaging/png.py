"""A grey canvas as PNG bytes, written directly: signature, IHDR, one IDAT, IEND.

The ``?explain=true`` replies carry each image's canvas as a PNG, encoded on the event
loop when the reply is written, up to 256 of them at once. Pillow's encoder tries
five row filters on every row and goes through its plugin machinery for each image:
about 130 µs a 28x28 canvas, over 30 ms for 256 (``tests/test_stalls.py`` bounds the
reply at 50 ms). Rows with no filter, compressed by zlib in one call, make the same
pixels in a valid PNG (a little larger: a few hundred bytes) in a fraction of that.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEVEL = 6  # zlib's default: the canvases are tiny, speed is in the one call


def grey_png(canvas: np.ndarray) -> bytes:
    """uint8 ``(height, width)`` grey levels -> PNG bytes (8-bit greyscale)."""
    if canvas.dtype != np.uint8 or canvas.ndim != 2:
        raise ValueError(f"canvas must be 2-D uint8, got {canvas.dtype} {canvas.shape}")
    height, width = canvas.shape
    if not (0 < height < 2**31 and 0 < width < 2**31):
        raise ValueError(f"canvas must not be empty, got {canvas.shape}")
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each row: filter 0, then pixels
    rows[:, 1:] = canvas
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    return b"".join(
        (
            SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(rows.tobytes(), LEVEL)),
            _chunk(b"IEND", b""),
        )
    )


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

"""The request bodies (a real 28x28 MNIST test image as PNG, wrapped in multipart),
and the constant answers of the two ceiling apps, shaped like digitpass's."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from bench import mnist_dir

IDX_HEADER = 16  # t10k-images-idx3-ubyte: magic, count, rows, cols (4 x uint32)
SIDE = 28
BOUNDARY = "digitpassbenchboundary7MA4YWxkTrZu0gW"
PASS_QUERY = "/predict/pass?hours=4"
DIGIT_PATH = "/predict/digit"

PASS_ANSWER = {
    "hours": 4.0,
    "probability": 0.97,
    "passed": True,
    "model": {"name": "pass", "version": 1},
}
DIGIT_ANSWER = {
    "digit": 7,
    "confidence": 0.99,
    "probabilities": [0.001] * 9 + [0.99],
    "model": {"name": "digit", "version": 1},
}


def mnist_png(index: int = 0, root: Path | None = None) -> bytes:
    """Test image ``index`` of MNIST (index 0 is a 7) encoded as an 8-bit grey PNG."""
    path = (root or mnist_dir()) / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    with path.open("rb") as handle:
        handle.seek(IDX_HEADER + index * SIDE * SIDE)
        pixels = np.frombuffer(handle.read(SIDE * SIDE), dtype=np.uint8)
    if pixels.size != SIDE * SIDE:
        raise ValueError(f"{path}: no image {index}")
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(SIDE, SIDE)).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart_body(png: bytes, field: str = "image") -> bytes:
    """One file field ``field`` named ``digit.png`` holding ``png``."""
    head = (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="digit.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def multipart_content_type() -> str:
    return f"multipart/form-data; boundary={BOUNDARY}"

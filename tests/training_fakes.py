"""Helpers for the training tests: write IDX files and a tiny fake MNIST folder."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

IDX_CODES = {np.dtype("uint8"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file (big-endian header, then the raw data)."""
    dtype = array.dtype if array.dtype == np.uint8 else array.dtype.newbyteorder(">")
    header = bytes([0, 0, IDX_CODES[dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.astype(dtype).tobytes())
    return path


def fake_mnist(data_dir: Path, n_train: int = 600, n_test: int = 300, seed: int = 0) -> Path:
    """Random-noise images with random labels in torchvision's layout; no model can learn it."""
    rng = np.random.default_rng(seed)
    raw = data_dir / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n, np.uint8))
    return data_dir

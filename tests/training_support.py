"""Helpers for the training tests: IDX files, a tiny fake MNIST, and an independent
evaluation of published digit files."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

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


def read_idx_numpy(path: Path) -> np.ndarray:
    """Independent of training.mnist: the IDX header is 4 bytes + 4 per dimension."""
    data = path.read_bytes()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def digit_accuracies(folder: Path, meta: dict[str, Any], mnist_dir: Path) -> tuple[float, float]:
    """Test-set accuracy of ``model.onnx`` and ``model.pt`` in ``folder``, each run on its
    own with the preprocessing its metadata declares."""
    raw = mnist_dir / "MNIST" / "raw"
    pixels = read_idx_numpy(raw / "t10k-images-idx3-ubyte").reshape(-1, 784) / 255.0
    labels = read_idx_numpy(raw / "t10k-labels-idx1-ubyte")
    prep = meta["input"]["preprocessing"]
    images = ((pixels - prep["mean"]) / prep["std"]).astype(np.float32)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run([meta["output"]["name"]], {meta["input"]["name"]: images})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still works
        scripted = torch.jit.load(str(folder / "model.pt"))
    with torch.no_grad():
        script_logits = scripted(torch.from_numpy(images)).numpy()
    return (
        float((logits.argmax(1) == labels).mean()),
        float((script_logits.argmax(1) == labels).mean()),
    )


REPO_ROOT = Path(__file__).resolve().parent.parent


def train_digit(
    tmp_path: Path, mnist_dir: Path, *options: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -m training digit`` for one epoch on real MNIST, publishing into
    ``tmp_path / "models"`` (event files in ``tmp_path / "runs"``), with ``options``
    added; it must succeed."""
    command = [
        sys.executable, "-m", "training", "digit",
        "--data-dir", str(mnist_dir),
        "--repository", str(tmp_path / "models"),
        "--runs-dir", str(tmp_path / "runs"),
        "--epochs", "1",
        "--min-accuracy", "0.8",
        *options,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return done

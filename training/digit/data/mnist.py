"""MNIST from IDX files into tensors, once, with a held-out validation split.

Files are looked up in torchvision's layout, ``<data_dir>/MNIST/raw/<name>`` (a
``<name>.gz`` next to it works too). When they are missing, torchvision's download is
tried; when that fails the run stops with a ``DataError`` (exit code 2) whose one line
says exactly where to put the four files.
"""

from __future__ import annotations

import contextlib
import gzip
import shutil
import struct
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from training.errors import DataError

MEAN, STD = 0.1307, 0.3081
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def raw_dir(data_dir: Path) -> Path:
    return data_dir / "MNIST" / "raw"


def read_idx(path: Path) -> torch.Tensor:
    """Read one IDX file (optionally gzipped) into a tensor of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: cannot read IDX file: {error}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX header says {shape} ({expected} bytes) but the file holds "
            f"{len(data) - header} bytes"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _find(data_dir: Path) -> dict[str, Path] | None:
    found = {}
    for key, name in FILES.items():
        for candidate in (raw_dir(data_dir) / name, raw_dir(data_dir) / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _download(data_dir: Path) -> None:
    """torchvision's download into ``data_dir``; raises whatever it raises when offline."""
    from torchvision.datasets import MNIST

    with contextlib.redirect_stdout(sys.stderr):
        MNIST(str(data_dir), train=True, download=True)


def locate(data_dir: Path, *, download: bool = True) -> dict[str, Path]:
    """Paths of the four IDX files, downloading them first if needed and allowed."""
    found = _find(data_dir)
    if found is not None:
        return found
    reason = "download not attempted"
    if download:
        created = [d for d in (data_dir / "MNIST", data_dir) if not d.exists()]
        try:
            _download(data_dir)
            reason = "download finished but the files are still missing"
        except Exception as error:  # offline, mirror down, disk full: all end the same way
            reason = f"download failed: {type(error).__name__}: {error}".replace("\n", " ")
            for folder in created:  # leave no empty folders behind
                shutil.rmtree(folder, ignore_errors=True)
        found = _find(data_dir)
        if found is not None:
            return found
    names = ", ".join(FILES.values())
    raise DataError(
        f"MNIST not found: put the four IDX files ({names}) in "
        f"{raw_dir(data_dir).resolve()}/, or point --data-dir/MNIST_DIR at the folder that "
        f"holds MNIST/raw/ ({reason})"
    )


@dataclass(frozen=True)
class MnistSplits:
    """Train images as [n, 1, 28, 28] pixels in [0, 1] (augmented and normalized per
    batch); validation and test images already normalized and flattened to [n, 784]."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def to(self, device: torch.device) -> MnistSplits:
        """All six tensors on ``device`` (once, before training)."""
        return MnistSplits(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def sizes(self) -> dict[str, int]:
        return {
            "train_size": len(self.train_y),
            "val_size": len(self.val_y),
            "test_size": len(self.test_y),
        }


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1], any shape [n, ...] -> normalized and flattened to [n, 784]."""
    return ((pixels - MEAN) / STD).reshape(pixels.shape[0], -1)


def _pair(paths: dict[str, Path], split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = read_idx(paths[f"{split}_images"]), read_idx(paths[f"{split}_labels"])
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28) or images.dtype != torch.uint8:
        raise DataError(f"{paths[f'{split}_images']}: expected uint8 images [n, 28, 28]")
    if labels.shape != (images.shape[0],) or labels.numel() == 0 or int(labels.max()) > 9:
        raise DataError(f"{paths[f'{split}_labels']}: expected {images.shape[0]} labels in 0-9")
    return images.unsqueeze(1).float().div_(255.0), labels.long()


def load_mnist(
    data_dir: Path,
    *,
    val_size: int = 5000,
    seed: int = 0,
    train_limit: int | None = None,
    download: bool = True,
) -> MnistSplits:
    """Load MNIST once; hold out ``val_size`` random training images (seeded)."""
    paths = locate(data_dir, download=download)
    train_x, train_y = _pair(paths, "train")
    test_x, test_y = _pair(paths, "test")
    if val_size >= len(train_y):
        raise DataError(f"--val-size {val_size} leaves no training images of {len(train_y)}")
    order = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_limit is not None:
        train_idx = train_idx[:train_limit]
    return MnistSplits(
        train_x=train_x[train_idx].contiguous(),
        train_y=train_y[train_idx].contiguous(),
        val_x=normalize(train_x[val_idx]),
        val_y=train_y[val_idx].contiguous(),
        test_x=normalize(test_x),
        test_y=test_y,
    )

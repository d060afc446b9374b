"""Write MNIST test digits as PNG files, for the README's curl examples.

    python docs/examples/export_mnist.py [MNIST_DIR] [--out docs/examples] [--labels 7 2 1]

For each label, the first image of the MNIST test set (t10k) with that label is
saved as ``<label>.png``: 28x28, 8-bit grayscale, white digit on black, exactly the
pixels of the IDX file. MNIST_DIR holds MNIST/raw/t10k-{images-idx3,labels-idx1}-ubyte.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image

IMAGES = "t10k-images-idx3-ubyte"  # 16-byte header, then 28x28 uint8 images
LABELS = "t10k-labels-idx1-ubyte"  # 8-byte header, then one uint8 label per image


def export(mnist_dir: Path, out: Path, labels: list[int]) -> list[Path]:
    raw = mnist_dir / "MNIST" / "raw"
    images = np.fromfile(raw / IMAGES, dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    targets = np.fromfile(raw / LABELS, dtype=np.uint8, offset=8)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for label in labels:
        index = int(np.flatnonzero(targets == label)[0])
        path = out / f"{label}.png"
        Image.fromarray(images[index]).save(path, optimize=True)
        written.append(path)
        print(f"{path}: MNIST test image {index}, label {label}")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mnist_dir", nargs="?", type=Path, default=os.environ.get("MNIST_DIR"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--labels", type=int, nargs="+", default=[7, 2, 1])
    args = parser.parse_args()
    if args.mnist_dir is None:
        parser.error("give MNIST_DIR (the folder holding MNIST/raw/) or set $MNIST_DIR")
    export(Path(args.mnist_dir), args.out, args.labels)


if __name__ == "__main__":
    main()

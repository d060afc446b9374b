"""Photos of paper: sheets on flat or textured tables, hard shadows, ruled and grid
paper, pages that fill the frame; and non-digits (faces, landscapes, text, textures).

The photos are synthetic (``tests.imaging_support.photo_of_paper``), seeded, with real
MNIST test digits written on them, judged by the newest committed digit model. Run as
a script for the full probe (``python -m tests.test_photos [count]``), which prints
the table of docs/photos.md.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from service.errors import NoDigitFound
from service.imaging.pipeline import ImageSpec, preprocess_image
from service.models.repository import ModelVersion, list_versions, read_version
from tests.imaging_support import PHOTO_FAMILIES, photo_of_paper

LIMIT = 25_000_000
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class Reader:
    """The digit model: spec, and normalised rows -> softmax probabilities."""

    version: int
    spec: ImageSpec
    probabilities: Callable[[np.ndarray], np.ndarray]


def make_reader(version: ModelVersion) -> Reader:
    metadata = version.metadata
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        str(version.artifact("onnx")), options, providers=["CPUExecutionProvider"]
    )
    input_name, output_name = metadata["input"]["name"], metadata["output"]["name"]

    def probabilities(rows: np.ndarray) -> np.ndarray:
        outputs = [
            session.run([output_name], {input_name: rows[i : i + 1000]})[0]
            for i in range(0, len(rows), 1000)
        ]
        out = np.concatenate(outputs).astype(np.float64)
        if not np.allclose(out.sum(axis=1), 1.0, atol=1e-3):  # logits: softmax them
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
        return out

    spec = ImageSpec.from_metadata(metadata["input"]["preprocessing"])
    return Reader(version.version, spec, probabilities)


@dataclass(frozen=True)
class Outcome:
    right: int
    no_digit: int
    count: int
    mean_ms: float

    @property
    def accuracy(self) -> float:
        return self.right / self.count


def readable_digits(
    images: np.ndarray, labels: np.ndarray, reader: Reader, count: int, seed: int
) -> np.ndarray:
    """``count`` random indices of MNIST test digits the model reads right as they are."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=2 * count, replace=False)
    rows = reader.spec.normalize(images[picks]).reshape(len(picks), -1)
    right = reader.probabilities(rows).argmax(axis=1) == labels[picks]
    return picks[right][:count]


def run_family(
    family: str,
    images: np.ndarray,
    labels: np.ndarray,
    reader: Reader,
    count: int,
    *,
    side: int | None = None,
) -> Outcome:
    """Accuracy (no digit found counts as wrong) and preprocessing time on ``count`` photos."""
    seed = PHOTO_FAMILIES.index(family)
    picks = readable_digits(images, labels, reader, count, 100 + seed)
    rng = np.random.default_rng(seed)
    rows, expected, no_digit, spent = [], [], 0, 0.0
    for index in picks:
        data = photo_of_paper(family, images[index], rng, side=side)
        start = time.perf_counter()
        try:
            rows.append(preprocess_image(data, reader.spec, max_pixels=LIMIT))
            expected.append(labels[index])
        except NoDigitFound:
            no_digit += 1
        spent += time.perf_counter() - start
    right = 0
    if rows:
        predicted = reader.probabilities(np.concatenate(rows)).argmax(axis=1)
        right = int((predicted == np.array(expected)).sum())
    return Outcome(right, no_digit, len(picks), 1000 * spent / len(picks))


# --- tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(committed_model: Callable[[str], ModelVersion]) -> Reader:
    return make_reader(committed_model("digit"))


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from tests.conftest import load_mnist_test_set

    return load_mnist_test_set(mnist_dir)


# --- the probe ---------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    from tests.conftest import find_mnist_dir, load_mnist_test_set

    count = int(argv[0]) if argv else 200
    families = argv[1:] or list(PHOTO_FAMILIES)
    mnist_dir = find_mnist_dir()
    assert mnist_dir is not None, "set MNIST_DIR"
    images, labels = load_mnist_test_set(mnist_dir)
    versions = list_versions(MODELS_DIR / "digit")
    reader = make_reader(read_version(MODELS_DIR, "digit", versions[-1], "onnx"))
    print(f"digit model v{reader.version}, {count} photos a family")
    print("| family | accuracy | no digit found | preprocessing ms |")
    print("|---|---|---|---|")
    for family in families:
        outcome = run_family(family, images, labels, reader, count)
        print(
            f"| {family} | {outcome.accuracy:.1%} | {outcome.no_digit / outcome.count:.1%}"
            f" | {outcome.mean_ms:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:])

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
from tests.imaging_support import NON_DIGITS, PHOTO_FAMILIES, encode, non_digit, photo_of_paper

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


@dataclass(frozen=True)
class Readings:
    """Max softmax of the images read as a digit, and whether the service's rule
    (``service.imaging.confidence.uncertain_flags``) flags each as uncertain."""

    confidence: np.ndarray
    uncertain: np.ndarray
    solid: np.ndarray  # flagged for a solid shape, whatever the confidence


def readings(reader: Reader, rows: list[np.ndarray]) -> Readings:
    from service.imaging.confidence import SOLID_ABOVE, solid_fractions, uncertain_flags

    if not rows:
        empty = np.zeros(0)
        return Readings(empty, empty.astype(bool), empty.astype(bool))
    stacked = np.concatenate(rows)
    confidence = reader.probabilities(stacked).max(axis=1)
    canvases = reader.spec.denormalize(stacked)
    return Readings(
        confidence,
        uncertain_flags(confidence, canvases),
        solid_fractions(canvases) > SOLID_ABOVE,
    )


def non_digit_readings(kind: str, reader: Reader, count: int) -> tuple[Readings, int]:
    """The non-digits read as a digit, and how many were refused."""
    rng = np.random.default_rng(1000 + NON_DIGITS.index(kind))
    rows, refused = [], 0
    for _ in range(count):
        try:
            rows.append(preprocess_image(non_digit(kind, rng), reader.spec, max_pixels=LIMIT))
        except NoDigitFound:
            refused += 1
    return readings(reader, rows), refused


def digit_readings(
    images: np.ndarray, labels: np.ndarray, reader: Reader, count: int
) -> tuple[Readings, np.ndarray]:
    """MNIST test digits (PNG, through the pipeline) read, and whether right."""
    rows = [
        preprocess_image(encode(image, "PNG"), reader.spec, max_pixels=LIMIT)
        for image in images[:count]
    ]
    predicted = reader.probabilities(np.concatenate(rows)).argmax(axis=1)
    return readings(reader, rows), predicted == labels[:count]


# --- tests -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reader(committed_model: Callable[[str], ModelVersion]) -> Reader:
    return make_reader(committed_model("digit"))


THRESHOLD_MODEL_VERSION = 4  # UNCERTAIN_BELOW was last measured on this digit version


@pytest.fixture(scope="module")
def threshold_reader() -> Reader:
    """The digit version the confidence threshold was measured on (see
    service/imaging/confidence.py): the threshold is a property of that model."""
    return make_reader(read_version(MODELS_DIR, "digit", THRESHOLD_MODEL_VERSION, "onnx"))


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from tests.conftest import load_mnist_test_set

    return load_mnist_test_set(mnist_dir)


# Accuracy floors: the figures measured on the 100 photos a family of the slow test
# with the newest model (docs/photos.md, digit v4 through the eighth round's
# preprocessing: table-flat 96%, table-textured 95%, hard-shadow 91%, ruled 97%, grid
# 95%, full-frame 97%), less two or three photos. Where they are under 95%, the 95% bar
# of the issue is not reached yet (see docs/photos.md, "Not reached"). The quick test
# (20 photos, 1200 px) checks them less 10 points.
FLOORS = {
    "table-flat": 0.93,
    "table-textured": 0.92,
    "hard-shadow": 0.88,
    "ruled": 0.94,
    "grid": 0.92,
    "full-frame": 0.94,
}
QUICK = 20  # photos a family in the quick test (1000-1500 px: cheap to make)


@pytest.mark.parametrize("family", PHOTO_FAMILIES)
def test_photo_family_sample(
    family: str, mnist: tuple[np.ndarray, np.ndarray], reader: Reader
) -> None:
    outcome = run_family(family, *mnist, reader, QUICK, side=1200)
    assert outcome.accuracy >= FLOORS[family] - 0.1, (family, outcome)


@pytest.mark.slow
@pytest.mark.parametrize("family", PHOTO_FAMILIES)
def test_photo_family(family: str, mnist: tuple[np.ndarray, np.ndarray], reader: Reader) -> None:
    outcome = run_family(family, *mnist, reader, 100)
    assert outcome.accuracy >= FLOORS[family], (family, outcome)


def test_a_blank_sheet_has_no_digit() -> None:
    """Measured on 10 a family: all refused, on a plain or a textured table and filling
    the frame (the grain left in by a missed sheet could pass for ink: one may)."""
    rng = np.random.default_rng(5)
    for family, least in (("table-flat", 10), ("table-textured", 9), ("full-frame", 10)):
        refused = 0
        for _ in range(10):
            try:
                preprocess_image(
                    photo_of_paper(family, None, rng, side=1200), ImageSpec(), max_pixels=LIMIT
                )
            except NoDigitFound:
                refused += 1
        assert refused >= least, (family, refused)


def test_right_digits_are_confident(
    mnist: tuple[np.ndarray, np.ndarray], threshold_reader: Reader
) -> None:
    """Measured on the 10000 with digit v4: 98.4% of the right readings not flagged
    uncertain, 90% of the wrong ones flagged, one right one for a solid shape; here the
    first 500."""
    read, right = digit_readings(*mnist, threshold_reader, 500)
    assert right.mean() >= 0.99
    assert (~read.uncertain[right]).mean() >= 0.97
    assert read.uncertain[~right].mean() >= 0.5
    assert not read.solid.any()


# at most this many of 20 non-digits of a kind read as a trusted digit
NON_DIGIT_MOST_TRUSTED = {"face": 3, "landscape": 2, "text": 6, "texture": 2}


@pytest.mark.parametrize("kind", NON_DIGITS)
def test_non_digits_are_refused_or_uncertain(kind: str, threshold_reader: Reader) -> None:
    """Measured on 100 of each with digit v4, trusted (neither refused nor flagged
    uncertain): faces 2%, landscapes 3% (16% on the confidence alone: their sun, a
    filled disc, reads as a confident "0"; the solid-shape test flags it), lines of
    text (which often hold real digits) 28%, textures 1%. 20 here: 0, 0, 4 and 0 of
    them are trusted on v4."""
    read, refused = non_digit_readings(kind, threshold_reader, 20)
    assert refused + read.confidence.size == 20
    trusted = int((~read.uncertain).sum())
    assert trusted <= NON_DIGIT_MOST_TRUSTED[kind], (kind, read)


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
    if families == ["confidence"]:
        report_confidence(images, labels, reader, count)
        return
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


THRESHOLDS = (0.5, 0.7, 0.9, 0.95, 0.99)  # candidates the confidence probe compares


def report_confidence(images: np.ndarray, labels: np.ndarray, reader: Reader, count: int) -> None:
    """The whole MNIST test set and ``count`` non-digits of each kind, against the
    service's rule (the threshold, and the solid-shape test) and the candidate
    thresholds of ``THRESHOLDS``."""
    from service.imaging.confidence import UNCERTAIN_BELOW

    quantiles = (0.01, 0.05, 0.1, 0.5)
    read, right = digit_readings(images, labels, reader, len(labels))
    confidence = read.confidence
    print(f"MNIST test digits ({right.size}): accuracy {right.mean():.2%}")
    for name, chosen in (("right", right), ("wrong", ~right)):
        values = confidence[chosen]
        if values.size:
            qs = ", ".join(f"p{round(100 * q)} {np.quantile(values, q):.3f}" for q in quantiles)
            print(
                f"  {name} ({values.size}): {qs}, below {UNCERTAIN_BELOW}:"
                f" {(values < UNCERTAIN_BELOW).mean():.1%}, flagged uncertain:"
                f" {read.uncertain[chosen].mean():.1%}, solid: {read.solid[chosen].sum()}"
            )
    print(
        "| non-digit | refused (no digit found) | max softmax p50 / p90 / max"
        " | read at >= threshold | solid shape | trusted (neither) |"
    )
    print("|---|---|---|---|---|---|")
    spreads = {}
    for kind in NON_DIGITS:
        kind_read, refused = non_digit_readings(kind, reader, count)
        values = kind_read.confidence
        spreads[kind] = values
        spread = (
            " / ".join(f"{np.quantile(values, q):.3f}" for q in (0.5, 0.9, 1.0))
            if values.size
            else "-"
        )
        print(
            f"| {kind} | {refused / count:.0%} | {spread}"
            f" | {(values >= UNCERTAIN_BELOW).sum() / count:.0%}"
            f" | {kind_read.solid.sum() / count:.0%}"
            f" | {(~kind_read.uncertain).sum() / count:.0%} |",
            flush=True,
        )
    print(
        "| threshold | right digits under it | wrong digits under it | "
        + " | ".join(f"{kind} at or over it" for kind in NON_DIGITS)
        + " |"
    )
    print("|---" * (3 + len(NON_DIGITS)) + "|")
    for threshold in THRESHOLDS:
        cells = [
            f"{(confidence[right] < threshold).mean():.1%}",
            f"{(confidence[~right] < threshold).mean():.0%}",
            *(f"{(spreads[kind] >= threshold).sum() / count:.0%}" for kind in NON_DIGITS),
        ]
        print(f"| {threshold} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The newest committed digit model (models/digit/4) on digits unlike MNIST's scans,
through the service's own preprocessing and ONNX Runtime, and its calibration record."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from conftest import MODELS_DIR

from service.imaging.pipeline import ImageSpec, preprocess_image
from service.models.repository import list_versions
from training.digit import families

VERSION = 4
COUNT = 400  # images per family here (docs/training.md reports 1000)
# Accuracy of models/digit/4 on the first COUNT images of each family, as measured
# (python -m training.digit.evaluate_families --model models/digit/4 --count 400), minus
# one image's worth of slack for ONNX Runtime builds that round differently.
MEASURED = {
    "rotate-slant": 0.9825,
    "jpeg-q60": 0.995,
    "thin": 0.9875,
    "lowres-10-16": 0.995,
    "colour": 0.995,
    # Thick and blurred digits cropped as tightly as MNIST's: not refused as "no digit
    # found" (the ink stage judges the noise by the border), thick strokes thinned.
    "thick": 0.9775,
    "blur": 0.97,
}
SLACK = 1.5 / COUNT
# The same on the 1000 images of docs/training.md's table, each family's 97% bar (slow).
MEASURED_FULL = {"thick": 0.982, "blur": 0.983}
FULL_COUNT = 1000
# The issue asks for 99.5%: make train's recipe (three MLPs) reads 99.51% at seed 0,
# the published model (docs/training.md has the other seeds).
TARGET_ACCURACY = 0.995


@pytest.fixture(scope="module")
def version_folder():
    assert VERSION in list_versions(MODELS_DIR / "digit")
    return MODELS_DIR / "digit" / str(VERSION)


@pytest.fixture(scope="module")
def meta(version_folder):
    return json.loads((version_folder / "metadata.json").read_text())


@pytest.fixture(scope="module")
def session(version_folder):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        str(version_folder / "model.onnx"), options, providers=["CPUExecutionProvider"]
    )


@pytest.fixture(scope="module")
def mnist_test(mnist_dir):
    return families.mnist_test(mnist_dir)


def test_metadata_records_accuracy_calibration_and_recipe(meta, version_folder):
    metrics = meta["metrics"]
    assert metrics["test_accuracy"] >= TARGET_ACCURACY
    assert 0 <= metrics["ece_test"] <= 0.02
    assert metrics["ece_test_uncalibrated"] >= 0
    assert metrics["temperature"] > 0
    # label smoothing no longer caps a clean digit at about 0.9
    assert metrics["median_confidence_correct"] > 0.99
    config = meta["training"]["config"]
    assert config["label_smoothing"] == 0.0 and config["augmentation"]["name"] == "wild"
    assert config["members"] == 3 and len(metrics["member_test_accuracy"]) == 3
    assert "temperature" in config["calibration"]
    assert (version_folder / "reliability_diagram.png").is_file()
    assert "reliability_diagram.png" in meta["artifacts"]


def _family_accuracy(name, meta, session, mnist_test, count):
    """Accuracy on the first ``count`` images of family ``name``; every one must yield a
    digit (``preprocess_image`` raises NoDigitFound otherwise, failing the test)."""
    images, labels = mnist_test
    files, targets = families.sample(name, images, labels, count=count)
    spec = ImageSpec.from_metadata(meta["input"]["preprocessing"])
    inputs = np.concatenate([preprocess_image(data, spec, max_pixels=25_000_000) for data in files])
    (logits,) = session.run([meta["output"]["name"]], {meta["input"]["name"]: inputs})
    return float((logits.argmax(1) == targets).mean())


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_family_accuracy_through_the_service_preprocessing(name, meta, session, mnist_test):
    accuracy = _family_accuracy(name, meta, session, mnist_test, COUNT)
    assert accuracy >= MEASURED[name] - SLACK, f"{name}: {accuracy:.4f}"
    assert accuracy >= 0.96


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MEASURED_FULL))
def test_family_bar_on_the_documented_images(name, meta, session, mnist_test):
    accuracy = _family_accuracy(name, meta, session, mnist_test, FULL_COUNT)
    assert accuracy >= MEASURED_FULL[name] - 1.5 / FULL_COUNT, f"{name}: {accuracy:.4f}"
    assert accuracy >= 0.97

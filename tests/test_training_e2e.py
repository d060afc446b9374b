"""End to end: ``python -m training digit`` for one epoch on a subset of the real MNIST,
published into a temporary repository, then checked the way the service reads it."""

from __future__ import annotations

import json

import pytest
from training_support import digit_accuracies, train_digit

from service.models.repository import sha256_file
from training.metadata import portable_path


@pytest.mark.e2e
def test_digit_trains_one_epoch_and_publishes(tmp_path, mnist_dir):
    repository = tmp_path / "models"
    # --members 2: tests/test_training_ensemble.py
    done = train_digit(tmp_path, mnist_dir, "--members", "1", "--train-limit", "5000", timeout=240)
    assert "digit: epoch  1/1" in done.stdout and "published" in done.stdout

    folder = repository / "digit" / "1"
    meta = json.loads((folder / "metadata.json").read_text())
    assert (meta["name"], meta["version"], meta["schema_version"]) == ("digit", 1, 1)
    assert meta["task"] == "image-classifier"
    assert meta["framework"]["onnx_opset"] >= 17
    assert meta["dataset"] == {
        "name": "MNIST",
        "path": portable_path(mnist_dir),  # never the absolute path of this machine
        "train_size": 5000,
        "val_size": 5000,
        "test_size": 10000,
    }
    assert meta["training"]["epochs_run"] == 1 and meta["training"]["config"]["train_limit"] == 5000
    assert meta["input"]["name"] == "image" and meta["input"]["shape"] == [-1, 784]
    assert meta["input"]["preprocessing"]["mean"] == 0.1307
    assert meta["input"]["preprocessing"]["std"] == 0.3081
    assert meta["output"] == {"name": "logits", "shape": [-1, 10], "kind": "logits"}
    assert meta["labels"] == [str(d) for d in range(10)]
    metrics = meta["metrics"]
    assert 0.8 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0
    assert metrics["temperature"] > 0 and 0 <= metrics["ece_test"] <= 1
    assert {"ece_test_uncalibrated", "nll_test", "median_confidence_correct"} <= set(metrics)
    assert sorted(metrics["per_class_accuracy"]) == meta["labels"]
    expected_files = {
        "model.onnx",
        "model.pt",
        "loss_curve.png",
        "accuracy_curve.png",
        "confusion_matrix.png",
        "reliability_diagram.png",
    }
    assert set(meta["artifacts"]) == expected_files
    assert {p.name for p in folder.iterdir()} == expected_files | {"metadata.json"}
    for name, entry in meta["artifacts"].items():
        assert entry["sha256"] == sha256_file(folder / name)
    assert list((tmp_path / "runs").glob("digit-*/events.out.tfevents.*"))

    # The published files, evaluated on their own with the metadata's preprocessing,
    # reproduce the reported test accuracy.
    onnx_accuracy, script_accuracy = digit_accuracies(folder, meta, mnist_dir)
    assert onnx_accuracy == pytest.approx(metrics["test_accuracy"], abs=2e-4)
    assert script_accuracy == pytest.approx(metrics["test_accuracy"], abs=2e-4)

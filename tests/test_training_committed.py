"""The versions committed to models/ are the good ones the issue asks for."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from training_support import digit_accuracies

TARGET_ACCURACY = 0.988


def test_committed_digit_reaches_the_target_and_reproduces_it(committed_model, mnist_dir):
    version = committed_model("digit")
    reported = version.metadata["metrics"]["test_accuracy"]
    assert reported >= TARGET_ACCURACY
    assert version.metadata["dataset"]["test_size"] == 10000
    onnx_accuracy, script_accuracy = digit_accuracies(version.path, version.metadata, mnist_dir)
    assert onnx_accuracy == pytest.approx(reported, abs=2e-4)
    assert script_accuracy == pytest.approx(reported, abs=2e-4)


def test_committed_pass_fails_1h_and_passes_7h(committed_model):
    version = committed_model("pass")
    boundary = version.metadata["metrics"]["decision_boundary_hours"]
    assert 1.0 < boundary < 7.0
    session = ort.InferenceSession(
        str(version.artifact("onnx")), providers=["CPUExecutionProvider"]
    )
    hours = np.array([[1.0], [boundary], [7.0]], dtype=np.float32)
    (probability,) = session.run(["probability"], {"hours": hours})
    assert probability[0, 0] < 0.5 < probability[2, 0]
    assert probability[1, 0] == pytest.approx(0.5, abs=1e-3)


def test_committed_points_predicts_8_at_4h_and_reproduces_its_metrics():
    """models/points/1 verifies through the shared contract, its files give the line its
    metadata records, and training again on the committed CSV gives that line too."""
    from service.models.repository import list_versions, read_version
    from training.points import train as points_train
    from training.points.data import load_points_csv

    root = Path(__file__).resolve().parent.parent / "models"
    versions = list_versions(root / "points")
    assert versions, "no committed version of 'points'"
    version = read_version(root, "points", versions[-1], "onnx")  # sha256s, schema
    meta = version.metadata
    assert meta["task"] == "scalar-regressor" == version.spec.task
    assert meta["output"]["kind"] == "values"
    metrics = meta["metrics"]
    assert metrics["prediction_at_hours"]["4"] == pytest.approx(8.0, abs=0.05)

    hours = np.array([[1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    expected = metrics["slope"] * hours[:, 0] + metrics["intercept"]
    session = ort.InferenceSession(
        str(version.artifact("onnx")), providers=["CPUExecutionProvider"]
    )
    (from_onnx,) = session.run(["points"], {"hours": hours})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(str(version.artifact("torchscript")))
    with torch.no_grad():
        from_script = scripted(torch.from_numpy(hours)).numpy()
    for answers in (from_onnx, from_script):
        np.testing.assert_allclose(answers[:, 0], expected, atol=1e-4)
        assert answers[3, 0] == pytest.approx(metrics["prediction_at_hours"]["4"], abs=1e-4)

    config = meta["training"]["config"]
    data = load_points_csv(root.parent / meta["dataset"]["path"])
    again = points_train.evaluate(
        points_train.fit_points(data, epochs=config["epochs"], lr=config["lr"]), data
    )
    assert again["slope"] == pytest.approx(metrics["slope"], abs=1e-6)
    assert again["intercept"] == pytest.approx(metrics["intercept"], abs=1e-6)
    assert again["mse"] == pytest.approx(metrics["mse"], abs=1e-9)

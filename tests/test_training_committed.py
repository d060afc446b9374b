"""The versions committed to models/ are the good ones the issue asks for."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
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

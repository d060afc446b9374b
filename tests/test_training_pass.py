"""``python -m training pass`` end to end into a temporary model repository."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from service.models.repository import sha256_file
from training.__main__ import run

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


def published(repository):
    folder = repository / "pass" / "1"
    return folder, json.loads((folder / "metadata.json").read_text())


@pytest.mark.parametrize("optimizer", ["lbfgs", "sgd"])
def test_pass_fails_1h_passes_7h_and_reports_the_boundary(tmp_path, optimizer):
    code = run(["pass", "--optimizer", optimizer, "--repository", str(tmp_path)])
    assert code == 0
    folder, meta = published(tmp_path)
    assert meta["name"] == "pass" and meta["version"] == 1
    assert meta["input"] == {
        "name": "hours",
        "shape": [-1, 1],
        "dtype": "float32",
        "preprocessing": {"kind": "none", "unit": "hours"},
    }
    assert meta["output"] == {"name": "probability", "shape": [-1, 1], "kind": "probabilities"}
    assert meta["labels"] == ["fail", "pass"]
    boundary = meta["metrics"]["decision_boundary_hours"]
    assert 1.0 < boundary < 7.0
    if optimizer == "lbfgs":  # symmetric data, convex regularized loss: exactly halfway
        assert boundary == pytest.approx(2.5, abs=1e-3)
        assert meta["metrics"]["accuracy"] == 1.0
        assert meta["metrics"]["loss"] < 0.2

    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    hours = np.array([[1.0], [boundary], [7.0]], dtype=np.float32)
    (onnx_p,) = session.run(["probability"], {"hours": hours})
    scripted = torch.jit.load(str(folder / "model.pt"))
    script_p = scripted(torch.from_numpy(hours)).detach().numpy()
    for probability in (onnx_p, script_p):
        assert probability.shape == (3, 1)
        assert probability[0, 0] < 0.5 < probability[2, 0]
        assert probability[1, 0] == pytest.approx(0.5, abs=1e-3)

    assert set(meta["artifacts"]) == {"model.onnx", "model.pt", "probability_curve.png"}
    for name, entry in meta["artifacts"].items():
        assert entry["sha256"] == sha256_file(folder / name)
    assert (folder / "probability_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_pass_user_csv_and_keep(tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text("hours,passed\n0.5,0\n1,0\n2,1\n1.5,0\n2.5,1\n3,1\n1.8,1\n1.7,0\n")
    repository = tmp_path / "models"
    for _ in range(3):
        assert (
            run(["pass", "--data", str(csv), "--repository", str(repository), "--keep", "2"]) == 0
        )
    assert sorted(p.name for p in (repository / "pass").iterdir()) == ["2", "3"]
    meta = json.loads((repository / "pass" / "3" / "metadata.json").read_text())
    assert meta["dataset"]["train_size"] == 8
    assert 1.5 < meta["metrics"]["decision_boundary_hours"] < 2.0
    assert meta["training"]["config"]["data"] == "mine.csv"  # never the absolute path
    assert meta["dataset"]["path"] == "mine.csv"

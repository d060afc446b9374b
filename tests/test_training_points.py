"""``python -m training points``: the lectures' linear regression, gated and published."""

from __future__ import annotations

import json
import warnings
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import onnxruntime as ort
import pytest
import torch
from training_support import fake_mnist

from service.models.metadata import validate_metadata
from service.models.repository import list_versions, read_version, sha256_file
from training import gates
from training.__main__ import run
from training.errors import DataError, QualityGateError
from training.points import train as points_train
from training.points.data import DEFAULT_CSV, load_points_csv


def published(repository: Path, name: str = "points", version: int = 1) -> tuple[Path, dict]:
    folder = repository / name / str(version)
    return folder, json.loads((folder / "metadata.json").read_text())


def strings_in(value: object) -> list[str]:
    """Every string anywhere in ``value`` (dict keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*strings_in(k), *strings_in(v))]
    if isinstance(value, list):
        return [s for item in value for s in strings_in(item)]
    return []


def absolute_paths_in(meta: dict) -> list[str]:
    return [
        s
        for s in strings_in(meta)
        if PurePosixPath(s).is_absolute() or PureWindowsPath(s).is_absolute() or "/tmp" in s
    ]


def onnx_and_torchscript(folder: Path, hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (from_onnx,) = session.run(["points"], {"hours": hours})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated, still works
        scripted = torch.jit.load(str(folder / "model.pt"))
    with torch.no_grad():
        from_script = scripted(torch.from_numpy(hours)).numpy()
    return from_onnx, from_script


def test_default_csv_is_the_three_lecture_points():
    data = load_points_csv(DEFAULT_CSV)
    assert data.hours.squeeze(1).tolist() == [1.0, 2.0, 3.0]
    assert data.points.squeeze(1).tolist() == [2.0, 4.0, 6.0]


def test_points_trains_gates_and_publishes_a_valid_regressor(tmp_path, capsys):
    assert run(["points", "--repository", str(tmp_path / "models")]) == 0
    out = capsys.readouterr().out
    assert "4 h -> 8.0000 points" in out and "parity gate passed" in out
    folder, meta = published(tmp_path / "models")

    spec = validate_metadata(meta)
    assert (spec.name, spec.version, spec.task) == ("points", 1, "scalar-regressor")
    assert meta["task"] == "scalar-regressor"
    assert meta["input"] == {
        "name": "hours",
        "shape": [-1, 1],
        "dtype": "float32",
        "preprocessing": {"kind": "none", "unit": "hours"},
    }
    assert meta["output"] == {
        "name": "points",
        "shape": [-1, 1],
        "kind": "values",
        "unit": "points",
    }
    assert meta["labels"] == []
    metrics = meta["metrics"]
    assert metrics["prediction_at_hours"]["4"] == pytest.approx(8.0, abs=0.05)
    assert metrics["slope"] == pytest.approx(2.0, abs=1e-4)
    assert metrics["intercept"] == pytest.approx(0.0, abs=1e-4)
    assert 0.0 <= metrics["mse"] < 1e-8
    assert meta["dataset"] == {
        "name": "points.csv",
        "path": "training/data/points.csv",
        "train_size": 3,
        "val_size": 0,
        "test_size": 0,
    }
    assert meta["training"]["config"]["optimizer"] == "L-BFGS"
    assert meta["training"]["config"]["loss"] == "MSE"
    assert meta["parity"]["max_abs_diff"] <= gates.PARITY_TOLERANCE
    assert absolute_paths_in(meta) == []

    assert set(meta["artifacts"]) == {"model.onnx", "model.pt", "fit_line.png"}
    for name, entry in meta["artifacts"].items():
        assert entry["sha256"] == sha256_file(folder / name)
    assert (folder / "fit_line.png").read_bytes()[:4] == b"\x89PNG"
    read_version(tmp_path / "models", "points", 1, "onnx")  # what the service does with it

    # Both exported files, loaded back on their own, give the same line.
    hours = np.array([[0.0], [1.0], [4.0], [10.0]], dtype=np.float32)
    for answers in onnx_and_torchscript(folder, hours):
        assert answers.shape == (4, 1)
        np.testing.assert_allclose(answers[:, 0], [0.0, 2.0, 8.0, 20.0], atol=1e-3)


def test_points_training_is_deterministic():
    data = load_points_csv(DEFAULT_CSV)
    first = points_train.fit_points(data, epochs=5, lr=1.0)
    second = points_train.fit_points(data, epochs=5, lr=1.0)
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)


def test_quality_gate_failure_publishes_nothing(tmp_path, capsys):
    flat = tmp_path / "flat.csv"
    flat.write_text("hours,points\n1,1\n2,1\n3,1\n")  # a flat line: 1 point at 4 h
    repository = tmp_path / "models"
    code = run(["points", "--points-data", str(flat), "--repository", str(repository)])
    assert code == QualityGateError.exit_code == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "points prediction at 4 h 1.0000 is not 8 ± 0.05; nothing published" in err
    assert not (repository / "points").exists(), "a refused model must leave no trace"


@pytest.mark.parametrize(
    ("prediction", "passes"),
    [
        (8.0, True),
        (7.951, True),
        (8.049, True),
        (7.94, False),
        (8.06, False),
        (float("nan"), False),
    ],
)
def test_check_quality_window(prediction, passes):
    if passes:
        points_train.check_quality(prediction)
    else:
        with pytest.raises(QualityGateError, match="nothing published"):
            points_train.check_quality(prediction)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "file is empty; expected a header 'hours,points'"),
        ("hours,score\n1,2\n", "missing column(s) points"),
        ("hours,points\n1,2\n2,many\n", "line 3: points 'many' is not a number"),
        ("hours,points\n-1,2\n2,4\n", "hours '-1' is negative"),
        ("hours,points\n2,2\n2,4\n", "same hours"),
    ],
)
def test_bad_points_csv_exits_2_with_one_line(tmp_path, capsys, text, expected):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match="^" + str(path).replace(".", r"\.")):
        load_points_csv(path)
    code = run(["points", "--points-data", str(path), "--repository", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected in err
    assert not (tmp_path / "m").exists()


def test_all_trains_pass_then_points_then_digit(tmp_path, capsys):
    """``all`` publishes pass and points before digit; --epochs is digit's only."""
    data_dir = fake_mnist(tmp_path / "data", n_train=200, n_test=100)
    repository = tmp_path / "models"
    code = run(
        [
            "all",
            "--repository", str(repository),
            "--runs-dir", str(tmp_path / "runs"),
            "--data-dir", str(data_dir),
            "--arch", "seed",
            "--epochs", "1",
            "--val-size", "50",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == QualityGateError.exit_code  # noise: digit cannot pass its gate
    assert out.index("pass: published") < out.index("points: published") < out.index("digit:")
    assert list_versions(repository / "pass") == list_versions(repository / "points") == [1]
    assert not (repository / "digit").exists()
    _, meta = published(repository)
    assert meta["training"]["epochs_run"] == points_train.DEFAULTS["epochs"]


@pytest.mark.parametrize("model", ["pass", "points", "digit"])
def test_no_absolute_path_in_published_metadata(tmp_path, model):
    """Every path option is given as an absolute path; none of them reaches metadata.json."""
    common = ["--repository", str(tmp_path / "models"), "--runs-dir", str(tmp_path / "runs")]
    if model == "pass":
        csv = tmp_path / "hours.csv"
        csv.write_text("hours,passed\n1,0\n2,0\n3,1\n4,1\n")
        argv = ["pass", "--data", str(csv), *common]
    elif model == "points":
        csv = tmp_path / "points.csv"
        csv.write_text("hours,points\n1,2\n2,4\n3,6\n")
        argv = ["points", "--points-data", str(csv), *common]
    else:
        data_dir = fake_mnist(tmp_path / "mnist", n_train=200, n_test=256)
        argv = ["digit", "--data-dir", str(data_dir), "--arch", "seed", "--epochs", "1"]
        argv += ["--val-size", "50", "--min-accuracy", "0", *common]
    assert run(argv) == 0
    _, meta = published(tmp_path / "models", model)
    assert absolute_paths_in(meta) == []
    assert str(tmp_path) not in json.dumps(meta)
    validate_metadata(meta)

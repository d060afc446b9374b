"""The model-repository contract shared by training and service (service.models)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from service.models.metadata import MetadataError, task_of, validate_metadata
from service.models.outputs import interpret
from service.models.repository import (
    InvalidVersion,
    list_models,
    list_versions,
    name_problem,
    read_version,
    version_of,
)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@pytest.mark.parametrize(
    ("folder", "version"),
    [
        ("1", 1),
        ("42", 42),
        ("0", None),
        ("01", None),
        ("²", None),
        ("١", None),
        ("1a", None),
        ("", None),
        ("-1", None),
        (".tmp-1", None),
        ("9" * 19, None),
    ],
)
def test_version_folder_names_are_ascii_decimal(folder, version):
    assert version_of(folder) == version


def test_list_versions_ignores_everything_but_version_folders(tmp_path):
    for name in ("3", "10", "1", "²", "01", ".tmp-ab12", "x"):
        (tmp_path / name).mkdir()
    (tmp_path / "7").write_text("a file, not a folder")
    assert list_versions(tmp_path) == [1, 3, 10]
    assert list_versions(tmp_path / "missing") == []


@pytest.mark.parametrize("name", ["pass", "digit", "digit-b", "points2", "a"])
def test_good_model_names(name):
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["Digit", "digit_b", "-x", "", "x" * 65, "dígit", "a b", "a/b"])
def test_bad_model_names_say_why(name):
    assert name_problem(name)


def test_list_models_lists_folders_but_not_hidden_ones(tmp_path):
    for name in ("b", "a", ".cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "file").write_text("")
    assert list_models(tmp_path) == ["a", "b"]


def committed_metadata(name: str) -> dict:
    version = list_versions(MODELS_DIR / name)[-1]
    return json.loads((MODELS_DIR / name / str(version) / "metadata.json").read_text())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"input": {"name": "x", "shape": [4, 784]}}, "input.shape"),
        ({"output": {"name": "y", "shape": [-1, 10], "kind": "softmax"}}, "output.kind"),
        ({"version": 0}, "version"),
        ({"task": "translator"}, "task"),
        (
            {"artifacts": {"model.onnx": {"sha256": "nothex", "bytes": 1}}},
            "artifacts.model.onnx.sha256",
        ),
        ({"artifacts": {}}, "artifacts"),
    ],
)
def test_metadata_errors_name_the_field(change, field):
    with pytest.raises(MetadataError, match=f"metadata.json: {field}"):
        validate_metadata({**committed_metadata("digit"), **change})


def test_missing_fields_are_named():
    metadata = committed_metadata("pass")
    del metadata["output"]
    with pytest.raises(MetadataError, match="output: Field required"):
        validate_metadata(metadata)


def test_the_task_of_versions_published_without_one_is_inferred():
    for name, task in (("pass", "binary-classifier"), ("digit", "image-classifier")):
        metadata = json.loads((MODELS_DIR / name / "1" / "metadata.json").read_text())
        assert "task" not in metadata  # published before the field existed
        assert task_of(validate_metadata(metadata)) == task
    assert task_of(validate_metadata(committed_metadata("points"))) == "scalar-regressor"


def copy_version(tmp_path: Path, name: str = "digit") -> Path:
    source = MODELS_DIR / name / "1"
    target = tmp_path / name / "1"
    shutil.copytree(source, target)
    return target


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda v: (v / "model.onnx").write_bytes(b"x" * (v / "model.onnx").stat().st_size),
            "sha256",
        ),
        (lambda v: (v / "model.onnx").unlink(), "missing"),
        (lambda v: (v / "metadata.json").write_text("{"), "not JSON"),
        (lambda v: (v / "metadata.json").write_text("[]"), "metadata.json"),
        (lambda v: (v / "metadata.json").write_bytes(b" " * (2 << 20)), "over"),
        (lambda v: (v / "metadata.json").unlink(), "no metadata.json"),
    ],
)
def test_a_damaged_version_is_refused_with_a_reason_that_names_no_path(tmp_path, damage, reason):
    version = copy_version(tmp_path)
    damage(version)
    with pytest.raises(InvalidVersion) as refused:
        read_version(tmp_path, "digit", 1, "onnx")
    assert reason in str(refused.value)
    assert str(tmp_path) not in str(refused.value)


@pytest.mark.parametrize("artifact", ["../pass/1/model.onnx", "/etc/passwd", "..", "a/b"])
def test_an_artifact_outside_the_version_folder_is_refused(tmp_path, artifact):
    version = copy_version(tmp_path)
    metadata = json.loads((version / "metadata.json").read_text())
    metadata["artifacts"][artifact] = {"sha256": "0" * 64, "bytes": 1}
    (version / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(InvalidVersion, match="not a plain file name"):
        read_version(tmp_path, "digit", 1, "onnx")


def test_a_symlinked_artifact_is_refused(tmp_path):
    version = copy_version(tmp_path)
    outside = tmp_path / "outside.onnx"
    (version / "model.onnx").rename(outside)
    (version / "model.onnx").symlink_to(outside)
    with pytest.raises(InvalidVersion, match="not a regular file"):
        read_version(tmp_path, "digit", 1, "onnx")


def test_a_symlinked_or_fifo_metadata_file_is_refused(tmp_path):
    version = copy_version(tmp_path)
    outside = tmp_path / "outside.json"
    (version / "metadata.json").rename(outside)  # the very same, valid metadata
    (version / "metadata.json").symlink_to(outside)
    with pytest.raises(InvalidVersion, match="is unreadable, a link or not a regular file"):
        read_version(tmp_path, "digit", 1, "onnx")
    (version / "metadata.json").unlink()
    os.mkfifo(version / "metadata.json")  # a plain open() would wait for a writer
    with pytest.raises(InvalidVersion, match="is unreadable, a link or not a regular file"):
        read_version(tmp_path, "digit", 1, "onnx")


def test_output_kinds():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    probabilities = interpret(logits, "logits")
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities[1], 1 / 3, rtol=1e-6)
    np.testing.assert_allclose(interpret(np.array([[0.0]]), "logits"), [[0.5]])
    values = np.array([[8.0]], dtype=np.float32)
    assert interpret(values, "values") is values
    assert interpret(values, "probabilities") is values
    with pytest.raises(ValueError, match="unknown output kind"):
        interpret(values, "softmax")


def string_values(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in string_values(v)]
    if isinstance(value, list):
        return [s for v in value for s in string_values(v)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize("metadata_path", sorted(MODELS_DIR.glob("*/*/metadata.json")), ids=str)
def test_committed_metadata_holds_no_absolute_path(metadata_path):
    """Published metadata says nothing about the training machine's folders."""
    absolute = [
        s for s in string_values(json.loads(metadata_path.read_text())) if s.startswith("/")
    ]
    assert absolute == []

"""The repository contract under hostile versions (issue 10): confinement, checksums of
everything loaded (ONNX external data too), bounded metadata, warm-up validation, and
a bad version or folder that breaks nothing else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service.models.kinds import KindOptions
from service.models.loaded import load_model
from service.models.registry import ModelRegistry
from service.models.repository import InvalidVersion, artifact_table, read_version
from tests.test_repository import MODELS_DIR


def copy_model(root: Path, name: str, version: int = 1, as_version: int = 1) -> Path:
    target = root / name / str(as_version)
    shutil.copytree(MODELS_DIR / name / str(version), target)
    if as_version != version:
        rewrite(target, version=as_version)
    return target


def rewrite(folder: Path, **changes: object) -> None:
    """Change metadata fields and list the folder's files again, as a publish would."""
    path = folder / "metadata.json"
    metadata = {**json.loads(path.read_text()), **changes}
    path.unlink()
    metadata["artifacts"] = artifact_table(folder)
    path.write_text(json.dumps(metadata))


def loader(version):
    return load_model(
        version, backend="onnx", device="cpu", intra_op_threads=1, options=KindOptions()
    )


def registry_of(root: Path) -> ModelRegistry:
    return ModelRegistry(root, backend="onnx", loader=loader)


def served(report) -> dict[str, int]:
    return {model.name: model.number for model in report.loaded}


def reason_of(root: Path, name: str, version: int) -> str:
    registry = registry_of(root)
    registry.scan()
    reasons = {(f.name, f.version): f.reason for f in registry.skipped()}
    return reasons[(name, version)]


def test_a_file_the_metadata_does_not_list_makes_the_version_invalid(tmp_path):
    folder = copy_model(tmp_path, "pass")
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(InvalidVersion, match=r"does not list extra\.bin"):
        read_version(tmp_path, "pass", 1, "onnx")


def test_a_symlinked_version_or_model_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(MODELS_DIR / "pass", outside / "pass")
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pass").symlink_to(outside / "pass")
    with pytest.raises(InvalidVersion, match="symbolic link"):
        read_version(root, "pass", 1, "onnx")
    (root / "pass").unlink()
    (root / "pass").mkdir()
    (root / "pass" / "1").symlink_to(outside / "pass" / "1")
    with pytest.raises(InvalidVersion, match="symbolic link"):
        read_version(root, "pass", 1, "onnx")


def external_data_version(root: Path, location: str, *, listed: bool) -> Path:
    """pass/2: pass/1's ONNX model with its weights in an external file ``location``."""
    import onnx

    folder = copy_model(root, "pass", 1, 2)
    model = onnx.load(str(folder / "model.onnx"))
    (folder / "model.onnx").unlink()
    onnx.save_model(
        model,
        str(folder / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    if location != "weights.bin":  # point the model at another file
        data = (folder / "model.onnx").read_bytes()
        assert data.count(b"weights.bin") == data.count(b"weights.bin")
        model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        (folder / "model.onnx").write_bytes(model.SerializeToString())
    rewrite(folder)
    if not listed:
        metadata = json.loads((folder / "metadata.json").read_text())
        del metadata["artifacts"]["weights.bin"]
        (folder / "weights.bin").rename(root / "weights.bin")  # kept, outside the folder
        (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


def test_onnx_external_data_listed_with_its_checksum_loads(tmp_path):
    external_data_version(tmp_path, "weights.bin", listed=True)
    registry = registry_of(tmp_path)
    report = registry.scan()
    assert registry.skipped() == []
    assert served(report) == {"pass": 2}


@pytest.mark.parametrize("location", ["weights.bin", "../weights.bin", "/etc/hostname"])
def test_onnx_external_data_the_metadata_does_not_list_is_refused(tmp_path, location):
    external_data_version(tmp_path, location, listed=False)
    copy_model(tmp_path, "pass")  # version 1 keeps serving
    reason = reason_of(tmp_path, "pass", 2)
    assert "does not list" in reason
    assert str(tmp_path) not in reason


def test_tampered_external_data_is_refused(tmp_path):
    folder = external_data_version(tmp_path, "weights.bin", listed=True)
    data = bytearray((folder / "weights.bin").read_bytes())
    data[0] ^= 0xFF
    (folder / "weights.bin").write_bytes(bytes(data))
    assert "sha256" in reason_of(tmp_path, "pass", 2)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"input": {"name": "hours", "shape": [-1, 1000, 1000, 1000]}}, "elements a row"),
        ({"labels": ["x" * 1000, "y"]}, "labels"),
        ({"artifacts": {f"f{i}": {"sha256": "0" * 64, "bytes": 1} for i in range(100)}}, "art"),
    ],
)
def test_metadata_is_bounded(tmp_path, change, reason):
    folder = copy_model(tmp_path, "pass")
    metadata = {**json.loads((folder / "metadata.json").read_text()), **change}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(InvalidVersion, match=reason):
        read_version(tmp_path, "pass", 1, "onnx")


def test_deeply_nested_metadata_is_refused_not_a_crash(tmp_path):
    folder = copy_model(tmp_path, "pass")
    (folder / "metadata.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(InvalidVersion, match="not JSON"):
        read_version(tmp_path, "pass", 1, "onnx")


@pytest.mark.parametrize(
    ("name", "change", "reason"),
    [
        ("digit", {"labels": [str(i) for i in range(9)]}, "9 labels"),
        (
            "digit",
            {
                "input": {
                    **json.loads((MODELS_DIR / "digit/1/metadata.json").read_text())["input"],
                    "shape": [-1, 28, 28],
                }
            },
            "preprocessing produces",
        ),
        (
            "digit",
            {"output": {"name": "logits", "shape": [-1, 10], "kind": "probabilities"}},
            "probabilities",
        ),
    ],
)
def test_warm_up_checks_the_metadata_against_the_model_and_the_last_good_version_serves(
    tmp_path, name, change, reason
):
    copy_model(tmp_path, name, 1, 1)
    bad = copy_model(tmp_path, name, 1, 2)
    rewrite(bad, **change)
    registry = registry_of(tmp_path)
    assert served(registry.scan()) == {name: 1}
    (failure,) = registry.skipped()
    assert failure.version == 2 and reason in failure.reason, failure.reason
    assert str(tmp_path) not in failure.reason


def test_a_bad_folder_name_breaks_nothing_else(tmp_path):
    copy_model(tmp_path, "pass")
    (tmp_path / "Bad Name!" / "1").mkdir(parents=True)
    (tmp_path / "pass" / "config.json").write_text("{}")  # a file beside the versions
    (tmp_path / "pass" / "notes").mkdir()
    registry = registry_of(tmp_path)
    assert served(registry.scan()) == {"pass": 1}
    assert "Bad Name!" in registry.unavailable()


def test_publish_records_every_file_and_refuses_links(tmp_path):
    from training.errors import PublishError
    from training.publish import commit, staging

    metadata = json.loads((MODELS_DIR / "pass" / "1" / "metadata.json").read_text())
    with staging(tmp_path, "pass") as stage:
        for item in (MODELS_DIR / "pass" / "1").iterdir():
            if item.name != "metadata.json":
                shutil.copy2(item, stage / item.name)
        (stage / "weights.bin").write_bytes(b"external data")
        published = commit(stage, metadata)
    written = json.loads((published / "metadata.json").read_text())["artifacts"]
    assert set(written) == {p.name for p in published.iterdir()} - {"metadata.json"}
    assert read_version(tmp_path, "pass", 1, "onnx").spec.artifacts["weights.bin"].bytes == 13
    with staging(tmp_path, "pass") as stage, pytest.raises(PublishError, match="regular file"):
        (stage / "link").symlink_to(published / "model.onnx")
        commit(stage, metadata)

"""Read-only access to the model repository (``<root>/<name>/<version>/``).

Plain Python: it finds versions, reads ``metadata.json`` and verifies every
artifact's sha256 before anything is loaded. See docs/model-repository.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METADATA_FILE = "metadata.json"
ARTIFACT_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}


class InvalidVersion(Exception):
    """A version folder that is incomplete, corrupt or inconsistent with its metadata."""


@dataclass(frozen=True)
class ModelVersion:
    """One published version: where it is and what its metadata says."""

    name: str
    version: int
    path: Path
    metadata: dict[str, Any]

    def artifact(self, backend: str) -> Path:
        return self.path / ARTIFACT_FILES[backend]


def list_versions(root: Path, name: str) -> list[int]:
    """Integer-named version folders of ``name``, highest first. Staging folders are ignored."""
    model_dir = root / name
    if not model_dir.is_dir():
        return []
    versions = [
        int(entry.name)
        for entry in model_dir.iterdir()
        if entry.name.isdigit() and int(entry.name) > 0 and entry.is_dir()
    ]
    return sorted(versions, reverse=True)


def fingerprint(root: Path, name: str, version: int) -> tuple[tuple[str, int, int], ...]:
    """Cheap identity of a version folder's contents: (file, size, mtime) of every file.

    A version that failed to load is retried only when this changes, for example once
    a slow copy into the folder has finished.
    """
    path = root / name / str(version)
    try:
        return tuple(
            sorted(
                (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                for entry in path.iterdir()
                if entry.is_file()
            )
        )
    except OSError:
        return ()


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_version(root: Path, name: str, version: int, backend: str) -> ModelVersion:
    """Read and verify one version. Raises :class:`InvalidVersion` with the reason."""
    path = root / name / str(version)
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidVersion(f"{path}: no {METADATA_FILE}") from exc
    except (OSError, ValueError) as exc:
        raise InvalidVersion(f"{path}: unreadable {METADATA_FILE}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise InvalidVersion(f"{path}: {METADATA_FILE} is not an object")
    _check_fields(path, metadata, name, version)
    artifact = ARTIFACT_FILES[backend]
    artifacts = metadata["artifacts"]
    if artifact not in artifacts:
        raise InvalidVersion(f"{path}: metadata lists no {artifact}")
    for file_name, expected in artifacts.items():
        _verify_artifact(path / file_name, expected)
    return ModelVersion(name=name, version=version, path=path, metadata=metadata)


def _check_fields(path: Path, metadata: dict[str, Any], name: str, version: int) -> None:
    for key in ("name", "version", "input", "output", "labels", "artifacts"):
        if key not in metadata:
            raise InvalidVersion(f"{path}: metadata has no '{key}'")
    if metadata["name"] != name or metadata["version"] != version:
        raise InvalidVersion(
            f"{path}: metadata says {metadata['name']}/{metadata['version']}, "
            f"folder is {name}/{version}"
        )
    if metadata["output"].get("kind") not in ("logits", "probabilities"):
        raise InvalidVersion(f"{path}: output.kind must be 'logits' or 'probabilities'")


def _verify_artifact(file_path: Path, expected: dict[str, Any]) -> None:
    if not file_path.is_file():
        raise InvalidVersion(f"{file_path}: missing")
    size = file_path.stat().st_size
    if size != expected.get("bytes"):
        raise InvalidVersion(f"{file_path}: {size} bytes, metadata says {expected.get('bytes')}")
    if sha256_file(file_path) != expected.get("sha256"):
        raise InvalidVersion(f"{file_path}: sha256 does not match metadata")

"""The model repository's layout (Triton's): ``<root>/<name>/<version>/``.

The one implementation of the contract in docs/model-repository.md, shared by training
(which publishes through it) and the service (which scans, verifies and loads through
it): model and version names, listing versions, checksums, reading a version.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.models.metadata import MetadataError, VersionMetadata, validate_metadata

METADATA_FILE = "metadata.json"
STAGING_PREFIX = ".tmp-"  # folders being built by a publish; never a version
ARTIFACT_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
MAX_NAME_LENGTH = 64
MAX_METADATA_BYTES = 1 << 20
_NAME_CHARACTERS = frozenset(string.ascii_lowercase + string.digits + "-")
_DIGITS = frozenset(string.digits)


class InvalidVersion(Exception):
    """A version folder that is incomplete, corrupt or inconsistent with its metadata."""


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a model name, or None: lowercase letters, digits and '-'."""
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        return f"a model name has 1 to {MAX_NAME_LENGTH} characters"
    if not set(name) <= _NAME_CHARACTERS or name.startswith("-"):
        return "model names have only lowercase letters, digits and '-', not first"
    return None


def version_of(folder_name: str) -> int | None:
    """The version a folder name stands for: ASCII decimal, positive, no leading zero."""
    if not folder_name or len(folder_name) > 18 or not set(folder_name) <= _DIGITS:
        return None
    if folder_name[0] == "0":
        return None
    return int(folder_name)


def list_versions(model_dir: Path) -> list[int]:
    """Published versions in ``model_dir``, ascending. Anything else there is ignored."""
    try:
        entries = list(os.scandir(model_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = (version_of(entry.name) for entry in entries if entry.is_dir(follow_symlinks=False))
    return sorted(v for v in found if v is not None)


def list_models(root: Path) -> list[str]:
    """Folder names directly under ``root``, sorted, whether or not they are valid names."""
    try:
        return sorted(
            entry.name
            for entry in os.scandir(root)
            if entry.is_dir() and not entry.name.startswith(".")
        )
    except (FileNotFoundError, NotADirectoryError):
        return []


def read_small_file(path: Path, limit: int) -> bytes:
    """Up to ``limit + 1`` bytes of a regular file (so that a caller sees it is too
    large), never through a symbolic link and never waiting on a FIFO or a device.

    Raises FileNotFoundError when there is no such file, and another OSError when it
    is a link, not a regular file, or unreadable.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        return handle.read(limit + 1)


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_table(folder: Path) -> dict[str, dict[str, Any]]:
    """``{file name: {"sha256", "bytes"}}`` for every file in ``folder`` but metadata.json.

    Every entry must be a regular file (not a link, not a folder): the service refuses
    a version whose folder holds anything its metadata does not list.
    """
    table = {}
    for path in sorted(folder.iterdir()):
        if path.name == METADATA_FILE:
            continue
        if path.is_symlink() or not path.is_file():
            raise InvalidVersion(f"{path.name} is not a regular file: a version holds only files")
        table[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    return table


def fingerprint(version_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap identity of a version folder's contents: (file, size, mtime) of every file.

    A version that failed to load is retried only when this changes, for example once a
    slow copy into the folder has finished.
    """
    try:
        return tuple(
            sorted(
                (entry.name, entry.stat().st_size, entry.stat().st_mtime_ns)
                for entry in os.scandir(version_dir)
                if entry.is_file()
            )
        )
    except OSError:
        return ()


@dataclass(frozen=True)
class ModelVersion:
    """One published, verified version: where it is and what its metadata says."""

    name: str
    version: int
    path: Path
    spec: VersionMetadata  # the validated fields
    metadata: dict[str, Any]  # every field, as published

    def artifact(self, backend: str) -> Path:
        return self.path / ARTIFACT_FILES[backend]

    def artifact_bytes(self, backend: str) -> bytes:
        """The backend's model file, read once and verified against its sha256: the
        bytes that are checked are the bytes that are loaded."""
        file_name = ARTIFACT_FILES[backend]
        expected = self.spec.artifacts[file_name]
        where = f"{self.name}/{self.version}"
        return _read_verified(self.path, where, file_name, expected.sha256, expected.bytes)

    def check_loads_only_listed(self, files: set[str]) -> None:
        """Every file the model file names (ONNX external data) must be a listed artifact."""
        where = f"{self.name}/{self.version}"
        for file_name in sorted(files):
            if file_name not in self.spec.artifacts or not _plain_name(file_name):
                raise InvalidVersion(
                    f"{where}: the model loads {file_name!r}, which {METADATA_FILE} does not list"
                )


def read_version(root: Path, name: str, version: int, backend: str) -> ModelVersion:
    """Read, validate and verify one version; :class:`InvalidVersion` says why not.

    Reasons name the version as ``name/version`` and the file by its name in the folder,
    never by its absolute path. The version is confined to its folder: the model and
    version folders may not be symbolic links, every listed file is a regular file
    directly in the folder (no links, no ``..``), and a file the metadata does not list
    makes the version invalid.
    """
    where = f"{name}/{version}"
    path = root / name / str(version)
    if (root / name).is_symlink() or path.is_symlink():
        raise InvalidVersion(f"{where}: a symbolic link leads out of the repository")
    try:
        raw = read_small_file(path / METADATA_FILE, MAX_METADATA_BYTES)
    except FileNotFoundError:
        raise InvalidVersion(f"{where}: no {METADATA_FILE}") from None
    except OSError:
        raise InvalidVersion(
            f"{where}: {METADATA_FILE} is unreadable, a link or not a regular file"
        ) from None
    if len(raw) > MAX_METADATA_BYTES:
        raise InvalidVersion(f"{where}: {METADATA_FILE} is over {MAX_METADATA_BYTES} bytes")
    try:
        metadata = json.loads(raw)
        spec = validate_metadata(metadata)
    except (ValueError, RecursionError) as exc:  # MetadataError, JSON that does not parse
        detail = str(exc) if isinstance(exc, MetadataError) else f"{METADATA_FILE}: not JSON"
        raise InvalidVersion(f"{where}: {detail}") from None
    if spec.name != name or spec.version != version:
        raise InvalidVersion(f"{where}: metadata says {spec.name}/{spec.version}")
    artifact = ARTIFACT_FILES[backend]
    if artifact not in spec.artifacts:
        raise InvalidVersion(f"{where}: metadata lists no {artifact}")
    unlisted = sorted(set(_folder_entries(path, where)) - set(spec.artifacts) - {METADATA_FILE})
    if unlisted:
        raise InvalidVersion(f"{where}: {METADATA_FILE} does not list {', '.join(unlisted[:5])}")
    for file_name, expected in spec.artifacts.items():
        _read_verified(path, where, file_name, expected.sha256, expected.bytes)
    return ModelVersion(name=name, version=version, path=path, spec=spec, metadata=metadata)


def _plain_name(file_name: str) -> bool:
    return (
        file_name not in ("", ".", "..")
        and "/" not in file_name
        and "\\" not in file_name
        and "\0" not in file_name
    )


def _folder_entries(folder: Path, where: str) -> list[str]:
    try:
        return [entry.name for entry in os.scandir(folder)]
    except OSError as exc:
        raise InvalidVersion(f"{where}: folder unreadable ({exc.strerror})") from None


def _read_verified(folder: Path, where: str, file_name: str, sha256: str, size: int) -> bytes:
    """The bytes of ``folder/file_name``, a regular file (never through a link), checked
    against the size and sha256 the metadata lists."""
    if not _plain_name(file_name):
        raise InvalidVersion(f"{where}: artifact {file_name!r} is not a plain file name")
    try:
        descriptor = os.open(folder / file_name, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise InvalidVersion(f"{where}: {file_name} is missing or not a regular file") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise InvalidVersion(f"{where}: {file_name} is missing or not a regular file")
        if info.st_size != size:
            raise InvalidVersion(
                f"{where}: {file_name} has {info.st_size} bytes, metadata says {size}"
            )
        data = handle.read(size + 1)
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
        raise InvalidVersion(f"{where}: {file_name} does not match its sha256")
    return data

"""Atomic publishing into the model repository (Triton layout, docs/model-repository.md).

The layout, the version-name rule, the staging prefix, the artifact table and the
metadata schema are the shared contract of ``service.models`` (the service reads
through the same code). A version is built completely in
``<repository>/<name>/.tmp-<random>/``; the complete metadata is validated against the
schema, ``metadata.json`` is written last, then the folder is ``os.rename``-d to
``<repository>/<name>/<version>``. On POSIX the rename of a directory onto an existing
non-empty one fails, so when two publishers race for the same number one wins and the
other retries with the next. Readers ignore names that are not versions, so they never
see a half-written version.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from service.models.metadata import MetadataError, validate_metadata
from service.models.repository import (
    METADATA_FILE,
    STAGING_PREFIX,
    InvalidVersion,
    artifact_table,
    list_versions,
    name_problem,
)
from training.errors import PublishError
from training.metadata import write_json_atomic

__all__ = ["MAX_ATTEMPTS", "commit", "list_versions", "prune", "staging"]

MAX_ATTEMPTS = 1000


def _next_version(model_dir: Path) -> int:
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


@contextlib.contextmanager
def staging(repository: Path, name: str) -> Iterator[Path]:
    """A fresh staging folder in ``<repository>/<name>/``, removed unless it got published."""
    problem = name_problem(name)
    if problem is not None:
        raise PublishError(f"cannot publish model {name!r}: {problem}")
    model_dir = repository / name
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        while True:
            stage = model_dir / f"{STAGING_PREFIX}{secrets.token_hex(8)}"
            try:
                stage.mkdir()  # unlike mkdtemp this honours the umask: readers can read it
                break
            except FileExistsError:
                continue
    except OSError as error:
        raise PublishError(f"cannot create a staging folder in {model_dir}: {error}") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def validated(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` as it will be written, checked against the shared schema.

    Raises ``PublishError`` whose message names the first bad field.
    """
    as_written = json.loads(json.dumps(metadata))
    try:
        validate_metadata(as_written)
    except MetadataError as error:
        name = metadata.get("name")
        raise PublishError(f"cannot publish {name}: invalid {error}; nothing published") from None
    return as_written


def commit(stage: Path, metadata: dict[str, Any], keep: int | None = None) -> Path:
    """Publish the complete folder ``stage`` as the next version and return its path.

    Fills in ``metadata["version"]`` and ``metadata["artifacts"]`` (the sha256 and size
    of every file in the folder: every file the service may load, ONNX external data
    included; a link or a subfolder is refused), validates the whole with
    ``validate_metadata``, writes ``metadata.json`` last, renames, and retries with the
    next number when another publisher took this one. Then prunes to ``keep`` versions if given.
    """
    model_dir = stage.parent
    try:
        metadata = {**metadata, "artifacts": artifact_table(stage)}
    except InvalidVersion as error:
        raise PublishError(f"cannot publish {metadata.get('name')}: {error}") from None
    for _ in range(MAX_ATTEMPTS):
        version = _next_version(model_dir)
        target = model_dir / str(version)
        complete = validated({**metadata, "version": version})
        write_json_atomic(stage / METADATA_FILE, complete)
        if target.exists():  # someone published it since we looked; an empty dir would be
            continue  # replaced by rename, so do not even try
        try:
            os.rename(stage, target)
        except OSError as error:
            if error.errno in (errno.EEXIST, errno.ENOTEMPTY):
                continue
            raise PublishError(f"cannot publish {target}: {error}") from None
        if keep is not None:
            prune(model_dir, keep)
        return target
    raise PublishError(f"gave up publishing into {model_dir} after {MAX_ATTEMPTS} collisions")


def prune(model_dir: Path, keep: int) -> list[int]:
    """Delete all but the ``keep`` newest versions; return the versions deleted.

    Each is first renamed to a staging name, which readers ignore, then removed, so a
    reader never sees a half-deleted version.
    """
    if keep < 1:
        raise ValueError("keep must be >= 1")
    removed = []
    for version in list_versions(model_dir)[:-keep]:
        doomed = model_dir / f"{STAGING_PREFIX}prune-{version}-{secrets.token_hex(4)}"
        try:
            os.rename(model_dir / str(version), doomed)
        except FileNotFoundError:  # a concurrent prune got there first
            continue
        shutil.rmtree(doomed, ignore_errors=True)
        removed.append(version)
    return removed

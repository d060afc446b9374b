"""Pieces of ``metadata.json`` (see docs/model-repository.md) that do not depend on a model.

The schema itself, and the checksums of the artifact table, belong to the shared
model-repository contract in ``service.models``; this module only builds the fields.
Nothing here records an absolute path of the training machine: paths become
:func:`portable_path` strings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
from pathlib import Path, PurePath
from typing import Any

from service.models.metadata import SCHEMA_VERSION, TASKS

# The checkout this package runs from: recorded paths are relative to it.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


def git_commit() -> str | None:
    """The commit of the checkout this package runs from, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def framework_versions(onnx_opset: int) -> dict[str, Any]:
    import onnx
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnx_opset": onnx_opset}


def utc_now() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def portable_path(path: PurePath) -> str:
    """``path`` as it may appear in published metadata: never absolute.

    A path inside this checkout becomes relative to its root (``training/data/hours.csv``),
    a relative path stays as given, and any other absolute path keeps only its last
    component (``/work/shared/datasets`` -> ``datasets``).
    """
    if not path.is_absolute():
        return path.as_posix()
    try:
        return Path(path).resolve().relative_to(REPOSITORY_ROOT).as_posix()
    except ValueError:
        return path.name


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """Every CLI option as given, JSON-ready; paths become :func:`portable_path` strings."""
    return {
        key: portable_path(value) if isinstance(value, PurePath) else value
        for key, value in sorted(vars(args).items())
    }


def base_metadata(
    *,
    name: str,
    task: str,
    onnx_opset: int,
    training: dict[str, Any],
    dataset: dict[str, Any],
    metrics: dict[str, Any],
    input_spec: dict[str, Any],
    output_spec: dict[str, Any],
    labels: list[str],
) -> dict[str, Any]:
    """Everything but ``version`` and ``artifacts``, which the publish step fills in."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is not one of {', '.join(TASKS)}")
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "task": task,
        "version": None,
        "created_at": utc_now(),
        "git_commit": git_commit(),
        "framework": framework_versions(onnx_opset),
        "training": training,
        "dataset": dataset,
        "metrics": metrics,
        "input": input_spec,
        "output": output_spec,
        "labels": labels,
        "artifacts": {},
    }


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``path`` through a temporary file and ``os.replace``: never half-written."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

"""Pieces of ``metadata.json`` (see docs/model-repository.md) that do not depend on a model."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
METADATA_FILE = "metadata.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_table(folder: Path) -> dict[str, dict[str, Any]]:
    """``{file name: {"sha256", "bytes"}}`` for every file in ``folder`` but metadata.json."""
    return {
        path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != METADATA_FILE
    }


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


def config_of(args: argparse.Namespace) -> dict[str, Any]:
    """Every CLI option as given, JSON-ready (paths become strings)."""
    return {
        key: str(value) if isinstance(value, Path) else value
        for key, value in sorted(vars(args).items())
    }


def base_metadata(
    *,
    name: str,
    onnx_opset: int,
    training: dict[str, Any],
    dataset: dict[str, Any],
    metrics: dict[str, Any],
    input_spec: dict[str, Any],
    output_spec: dict[str, Any],
    labels: list[str],
) -> dict[str, Any]:
    """Everything but ``version`` and ``artifacts``, which the publish step fills in."""
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
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

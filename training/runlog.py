"""TensorBoard event files for a training run, one folder per run under ``--runs-dir``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def open_writer(runs_dir: Path, name: str) -> Iterator[Any]:
    """A ``SummaryWriter`` logging to ``<runs_dir>/<name>-<UTC time>-<pid>``, closed on exit."""
    from torch.utils.tensorboard import SummaryWriter

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    writer = SummaryWriter(log_dir=str(runs_dir / f"{name}-{stamp}-{os.getpid()}"))
    try:
        yield writer
    finally:
        writer.close()

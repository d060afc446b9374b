"""What a training run shows and keeps: progress bars on a terminal, and TensorBoard
event files, one folder per run under ``--runs-dir``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

T = TypeVar("T")


def is_terminal(stream: IO[str] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (False for pipes, files, None)."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):  # closed or stream-like objects
        return False


def progress(items: Iterable[T], desc: str, unit: str) -> Iterable[T]:
    """``items`` with a tqdm bar on stderr when stderr is a terminal, else unchanged.

    A log that goes to a file or a pipe gets only the trainers' own lines (one per
    epoch), not a bar redrawn hundreds of times.
    """
    if not is_terminal(sys.stderr):
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, unit=unit, file=sys.stderr)


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

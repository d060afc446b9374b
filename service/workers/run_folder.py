"""The run folder that the workers of one ``digitpass-serve`` share (see ``peers``)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.workers.gpus import write_gpu_count

RUN_DIR_VARIABLE = "DIGITPASS_RUN_DIR"


@contextmanager
def shared_run_folder(workers: int, gpus: int = 0) -> Iterator[None]:
    """With several workers, a fresh folder for this run, named to them through
    ``DIGITPASS_RUN_DIR`` before they start, and removed once they have all exited.
    ``gpus``: how many GPUs the models run on (each worker takes one of its own)."""
    if workers < 2:
        yield
        return
    folder = tempfile.mkdtemp(prefix="digitpass-run-")
    write_gpu_count(Path(folder), gpus)
    previous = os.environ.get(RUN_DIR_VARIABLE)
    os.environ[RUN_DIR_VARIABLE] = folder
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_VARIABLE, None)
        else:
            os.environ[RUN_DIR_VARIABLE] = previous
        shutil.rmtree(folder, ignore_errors=True)

"""One GPU per worker: with ``workers=auto`` on CUDA there is a worker per visible GPU,
and each must use its own. A worker claims the lowest free slot in the run folder
(``gpu-slot-<n>``, holding its pid; a slot whose process is gone is free again, so a
replacement worker takes the dead one's GPU) and narrows ``CUDA_VISIBLE_DEVICES`` to
that GPU before any model is loaded."""

from __future__ import annotations

import os
from pathlib import Path

from service.workers.processes import pid_alive

SLOT_PREFIX = "gpu-slot-"
GPUS_FILE = "gpus"  # written by digitpass-serve: how many GPUs the workers share
VISIBLE = "CUDA_VISIBLE_DEVICES"


def write_gpu_count(folder: Path, count: int) -> None:
    """For the workers: counted once, by the supervisor, so that no worker has to ask
    the CUDA driver (which fixes the visible devices for good) before it is pinned."""
    (folder / GPUS_FILE).write_text(str(count))


def read_gpu_count(folder: Path) -> int:
    try:
        return int((folder / GPUS_FILE).read_text())
    except (OSError, ValueError):
        return 0


def claim_slot(folder: Path, slots: int, pid: int | None = None) -> int | None:
    """The lowest slot (0 to ``slots`` - 1) free for ``pid``; None when all are taken."""
    pid = os.getpid() if pid is None else pid
    for slot in range(slots):
        path = folder / f"{SLOT_PREFIX}{slot}"
        for _ in range(2):  # a second try after clearing a dead owner's claim
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    owner = int(path.read_text() or 0)
                except (OSError, ValueError):
                    owner = 0
                if owner == pid:
                    return slot
                if owner and pid_alive(owner):
                    break  # taken: the next slot
                path.unlink(missing_ok=True)  # its worker is gone
                continue
            with os.fdopen(fd, "w") as claim:
                claim.write(str(pid))
            return slot
    return None


def visible_devices(environ: dict[str, str] | os._Environ[str], count: int) -> list[str]:
    """The GPUs this process may use, as CUDA names them (its ``CUDA_VISIBLE_DEVICES``)."""
    listed = environ.get(VISIBLE)
    if listed is None:
        return [str(index) for index in range(count)]
    return [part.strip() for part in listed.split(",") if part.strip()]


def pin_worker_gpu(folder: Path) -> str | None:
    """With several GPUs, narrow this worker to the one its slot names; which, or None."""
    gpu_count = read_gpu_count(folder)
    if gpu_count < 2:
        return None
    devices = visible_devices(os.environ, gpu_count)
    slot = claim_slot(folder, len(devices))
    if slot is None:
        return None  # more workers than GPUs (an explicit --workers): share them
    os.environ[VISIBLE] = devices[slot]
    return devices[slot]

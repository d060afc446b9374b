"""How much of the machine this process may use: cores (affinity and container CPU
quota) and visible GPUs, and so how many server workers ``workers=auto`` starts.

The boundaries with the operating system are the affinity call, the cgroup files and
the CUDA driver's device count; each is a parameter here, so that tests hand in fake
cgroup folders and a fake GPU count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def affinity_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """``/proc/self/cgroup``: controller -> this process's cgroup path ("" for v2)."""
    paths: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            paths[controller] = parts[2]
    return paths


def _candidates(mount: Path, own: str | None) -> list[Path]:
    """The process's own cgroup folder and its ancestors under ``mount``, then the mount
    itself (inside a container the mount is usually the container's own cgroup)."""
    found: list[Path] = []
    if own:
        relative = Path(own.lstrip("/"))
        for part in [relative, *relative.parents]:
            folder = mount / part
            if folder not in found:
                found.append(folder)
    if mount not in found:
        found.append(mount)
    return found


def _v2_quota(text: str | None) -> float | None:
    """``cpu.max``: "<quota> <period>" or "max <period>"."""
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _v1_quota(quota_text: str | None, period_text: str | None) -> float | None:
    """``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    try:
        quota, period = int(quota_text or ""), int(period_text or "")
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> float | None:
    """The tightest CPU quota on this process's cgroups in cores (v2 ``cpu.max`` or v1
    CFS quota), None when there is none."""
    own = _own_cgroups(proc_cgroup)
    limits: list[float] = []
    if (cgroup_root / "cgroup.controllers").exists():  # the unified (v2) hierarchy
        for folder in _candidates(cgroup_root, own.get("")):
            if (limit := _v2_quota(_read(folder / "cpu.max"))) is not None:
                limits.append(limit)
    for mount_name in ("cpu", "cpu,cpuacct", "cpuacct,cpu"):
        mount = cgroup_root / mount_name
        if not mount.is_dir():
            continue
        for folder in _candidates(mount, own.get("cpu")):
            limit = _v1_quota(
                _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            )
            if limit is not None:
                limits.append(limit)
        break
    return min(limits) if limits else None


def usable_cores(
    affinity: Callable[[], int] | None = None,
    cgroup_limit: Callable[[], float | None] | None = None,
) -> int:
    """Cores this process may really use: its affinity, capped by a container CPU quota
    (rounded up: a quota of 1.5 cores keeps two busy part of the time), at least 1."""
    cores = (affinity or affinity_cores)()
    limit = (cgroup_limit or cgroup_cpu_limit)()
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit - 1e-9)))
    return max(1, cores)


def auto_workers(device: str, gpu_count: int, cores: int) -> int:
    """Server workers for ``workers=auto``: one per visible GPU when the models run on
    CUDA, else one per usable core."""
    if device != "cpu" and gpu_count > 0:
        return gpu_count
    return max(1, cores)

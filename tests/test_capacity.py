"""workers=auto: usable cores (affinity, cgroup v1/v2 CPU quota) and visible GPUs, at the
boundary: fake cgroup folders, a fake affinity and a fake CUDA device count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.settings import Settings
from service.workers import capacity
from service.workers.capacity import auto_workers, cgroup_cpu_limit, usable_cores


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v2_tree(root: Path, own: str, limits: dict[str, str]) -> Path:
    """A unified hierarchy: cpu.max per folder, and /proc/self/cgroup naming ``own``."""
    write(root / "cgroup" / "cgroup.controllers", "cpu memory\n")
    for folder, text in limits.items():
        write(root / "cgroup" / folder / "cpu.max", text + "\n")
    write(root / "proc-cgroup", f"0::{own}\n")
    return root / "cgroup"


def test_v2_quota_of_the_own_cgroup_in_cores(tmp_path):
    cgroup = v2_tree(tmp_path, "/app.slice/web", {"app.slice/web": "150000 100000"})
    assert cgroup_cpu_limit(cgroup, tmp_path / "proc-cgroup") == pytest.approx(1.5)


def test_v2_the_tightest_ancestor_wins_and_max_is_no_limit(tmp_path):
    cgroup = v2_tree(
        tmp_path,
        "/a/b",
        {"a/b": "max 100000", "a": "200000 100000", "": "max 100000"},
    )
    assert cgroup_cpu_limit(cgroup, tmp_path / "proc-cgroup") == pytest.approx(2.0)


def test_v2_inside_a_container_the_mount_itself_holds_the_quota(tmp_path):
    cgroup = v2_tree(tmp_path, "/", {"": "50000 100000"})
    assert cgroup_cpu_limit(cgroup, tmp_path / "proc-cgroup") == pytest.approx(0.5)


def test_v2_without_any_quota_is_none(tmp_path):
    cgroup = v2_tree(tmp_path, "/", {"": "max 100000"})
    assert cgroup_cpu_limit(cgroup, tmp_path / "proc-cgroup") is None


@pytest.mark.parametrize("mount", ["cpu", "cpu,cpuacct"])
def test_v1_cfs_quota(tmp_path, mount):
    write(tmp_path / "cgroup" / mount / "docker" / "abc" / "cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cgroup" / mount / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "cgroup" / mount / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cgroup" / mount / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "proc-cgroup", f"4:memory:/x\n3:{mount}:/docker/abc\n0::/\n")
    assert cgroup_cpu_limit(tmp_path / "cgroup", tmp_path / "proc-cgroup") == pytest.approx(3)


def test_v1_minus_one_is_no_limit(tmp_path):
    write(tmp_path / "cgroup" / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "cgroup" / "cpu" / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "proc-cgroup", "1:cpu:/\n")
    assert cgroup_cpu_limit(tmp_path / "cgroup", tmp_path / "proc-cgroup") is None


def test_no_cgroup_files_at_all_is_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "none") is None


@pytest.mark.parametrize(
    ("affinity", "limit", "expected"),
    [(8, None, 8), (8, 2.0, 2), (8, 1.5, 2), (8, 0.5, 1), (2, 4.0, 2), (1, None, 1)],
)
def test_usable_cores_is_affinity_capped_by_the_quota_rounded_up(affinity, limit, expected):
    assert usable_cores(lambda: affinity, lambda: limit) == expected


def test_affinity_is_what_the_process_may_run_on(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    monkeypatch.setattr(capacity, "cgroup_cpu_limit", lambda: None)
    assert usable_cores() == 3


@pytest.mark.parametrize(
    ("device", "gpus", "cores", "expected"),
    [
        ("auto", 0, 4, 4),
        ("auto", 2, 16, 2),
        ("cuda", 1, 16, 1),
        ("cpu", 4, 6, 6),
        ("auto", 0, 1, 1),
    ],
)
def test_auto_workers_one_per_gpu_on_cuda_else_one_per_core(device, gpus, cores, expected):
    assert auto_workers(device, gpus, cores) == expected


def fake_machine(monkeypatch, *, cores: int, quota: float | None, gpus: int) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(capacity, "cgroup_cpu_limit", lambda: quota)
    monkeypatch.setattr("service.settings.visible_gpus", lambda backend, device: gpus)


def test_settings_default_is_auto_and_follows_the_machine(monkeypatch):
    monkeypatch.delenv("DIGITPASS_WORKERS", raising=False)
    fake_machine(monkeypatch, cores=8, quota=3.0, gpus=0)
    settings = Settings()
    assert settings.workers == "auto"
    assert settings.resolved_workers() == 3
    assert settings.resolved_intra_op_threads() == 1  # 3 cores / 3 workers, less the loop
    fake_machine(monkeypatch, cores=16, quota=None, gpus=2)
    assert settings.resolved_workers() == 2
    assert settings.resolved_intra_op_threads() == 7  # 16 cores / 2 workers, less the loop


def test_an_explicit_number_wins(monkeypatch):
    fake_machine(monkeypatch, cores=8, quota=None, gpus=2)
    monkeypatch.setenv("DIGITPASS_WORKERS", "3")
    assert Settings().resolved_workers() == 3
    assert Settings(workers="auto", device="cpu").resolved_workers() == 8


@pytest.mark.parametrize("value", ["0", "65", "many", "-1"])
def test_bad_worker_counts_are_refused(monkeypatch, value):
    monkeypatch.setenv("DIGITPASS_WORKERS", value)
    with pytest.raises(ValueError, match="workers"):
        Settings()


def test_visible_gpus_is_zero_on_the_cpu_without_asking_the_driver(monkeypatch):
    def driver() -> int:
        raise AssertionError("the driver was asked")

    monkeypatch.setattr("service.models.backends.device.nvidia_gpu_count", driver)
    from service.settings import visible_gpus

    assert visible_gpus("onnx", "cpu") == 0


def test_each_worker_claims_its_own_gpu_slot_and_a_dead_ones_slot_is_reused(tmp_path):
    import os
    import subprocess
    import sys

    from service.workers.gpus import claim_slot

    assert claim_slot(tmp_path, 2, pid=os.getpid()) == 0
    assert claim_slot(tmp_path, 2, pid=os.getpid()) == 0  # the same worker, again
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert claim_slot(tmp_path, 2, pid=sibling.pid) == 1
        assert claim_slot(tmp_path, 2, pid=999_999_999) is None  # all taken
    finally:
        sibling.kill()
        sibling.wait()
    assert claim_slot(tmp_path, 2, pid=12345678) == 1  # the dead sibling's GPU


def test_a_worker_is_narrowed_to_its_gpu_among_the_visible_ones(tmp_path, monkeypatch):
    from service.workers import gpus

    gpus.write_gpu_count(tmp_path, 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert gpus.pin_worker_gpu(tmp_path) == "3"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    (tmp_path / "one").mkdir()
    gpus.write_gpu_count(tmp_path / "one", 1)
    assert gpus.pin_worker_gpu(tmp_path / "one") is None  # one GPU: nothing to choose
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    assert gpus.visible_devices({}, 3) == ["0", "1", "2"]


def test_the_command_line_takes_auto_or_a_number(monkeypatch):
    from service.__main__ import build_parser

    monkeypatch.delenv("DIGITPASS_WORKERS", raising=False)
    assert build_parser().parse_args([]).workers == "auto"
    assert build_parser().parse_args(["--workers", "AUTO"]).workers == "auto"
    assert build_parser().parse_args(["--workers", "3"]).workers == "3"
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["--workers", "many"])
    assert refused.value.code == 2

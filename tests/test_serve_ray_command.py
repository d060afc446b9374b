"""``make serve-ray``'s command (``python -m service.rayserve``): a local Ray cluster on
loopback, digitpass deployed behind Serve's proxy on the port asked for; SIGTERM stops
the application and the cluster, and the command exits 0. With ``RAY_ADDRESS`` it
deploys to that cluster and leaves it running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server import free_port
from tests.test_ray_serve import _listening_sockets, _loopback

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def start(port: int, model_repo: Path, log: Path, extra_env: dict[str, str] | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGITPASS_", "RAY_"))}
    env.update({"DIGITPASS_MODEL_REPOSITORY": str(model_repo), **(extra_env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "service.rayserve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log.open("wb"),  # a file: Ray's output would fill a pipe and block it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            response = httpx.get(url + "/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling interval
    raise AssertionError(f"not ready at {url} within {timeout} s")


@pytest.mark.parametrize("stop", ["sigterm", "ctrl-c"])
def test_serve_ray_serves_on_loopback_and_a_stop_ends_everything_exit_0(model_repo, tmp_path, stop):
    port = free_port()
    log = tmp_path / "serve-ray.log"
    process = start(port, model_repo, log)
    try:
        ready = wait_ready(f"http://127.0.0.1:{port}", process, log)
        assert set(ready["models"]) == {p.name for p in model_repo.iterdir()}
        answer = httpx.get(f"http://127.0.0.1:{port}/predict/pass", params={"hours": 4})
        assert answer.status_code == 200 and "probability" in answer.json()
        cluster = descendants(process.pid)
        ours = [(a, p) for a, p in _listening_sockets() if p in cluster]
        names = {p: Path(f"/proc/{p}/comm").read_text().strip() for _, p in ours}
        # Ray's own exception: Serve replicas' inter-deployment gRPC server ([::]:0).
        wide = [(a, names[p]) for a, p in ours if not _loopback(a)]
        assert all(name.startswith("ray::ServeRepli") for _, name in wide), wide
        assert any(name == "gcs_server" for name in names.values())
        assert any(a.endswith(f":{port}") for a, _ in ours)  # the proxy, on loopback
        if stop == "sigterm":
            process.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C: SIGINT to the whole foreground group, Ray's too
            os.killpg(process.pid, signal.SIGINT)
        exit_code = process.wait(90)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert exit_code == 0, log.read_text(errors="replace")[-3000:]
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in cluster):  # the cluster's processes go with it
        assert time.monotonic() < deadline, [p for p in cluster if alive(p)]
        time.sleep(0.2)  # polling interval

"""Run the real service as a uvicorn subprocess on a free loopback port, for e2e tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerHandle:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def wait_until_ready(handle: ServerHandle, path: str = "/readyz", timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"server exited with {handle.process.returncode}:\n{handle.log()}")
        try:
            if httpx.get(handle.url + path, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # polling interval, not synchronisation
    raise RuntimeError(f"server not ready at {handle.url}{path} in {timeout} s:\n{handle.log()}")


@contextmanager
def run_server(
    env: Mapping[str, str] | None = None,
    args: Sequence[str] | None = None,
    *,
    ready_path: str = "/readyz",
    timeout: float = 60.0,
) -> Iterator[ServerHandle]:
    """Start ``python -m service`` (or ``args``, where ``{port}`` is replaced) and wait."""
    port = free_port()
    command = (
        [a.replace("{port}", str(port)) for a in args]
        if args
        else [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    )
    log_file = tempfile.NamedTemporaryFile(prefix="digitpass-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        # One worker unless a test asks for more: workers=auto would follow the machine's
        # cores, and tests of several workers say so (tests/test_e2e_workers.py).
        env={"DIGITPASS_WORKERS": "1", **os.environ, **(env or {})},
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    handle = ServerHandle(f"http://127.0.0.1:{port}", process, Path(log_file.name))
    try:
        wait_until_ready(handle, ready_path, timeout)
        yield handle
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log_file.close()

"""Server subprocesses: start on a free loopback port, poll until ready, stop the group."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import REPO_ROOT

HOST = "127.0.0.1"
POLL_INTERVAL_S = 0.1


class ServerFailed(RuntimeError):
    """A server exited, or did not become ready before its deadline."""


def free_port() -> int:
    """A port that was free on loopback a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET; ``(0, b"")`` when the connection fails."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def _inherited_env() -> dict[str, str]:
    """Our environment without ``DIGITPASS_*``, so that "defaults" means defaults."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DIGITPASS_")}


@dataclass
class ServerSpec:
    """How to start one server: ``argv`` may hold ``{port}``; ``env`` is added to ours."""

    argv: Sequence[str]
    ready_path: str
    env: Mapping[str, str] = field(default_factory=dict)
    startup_timeout_s: float = 180.0
    cwd: Path = REPO_ROOT  # another checkout runs another version of the code


class Server:
    """One running server process (and its children, in their own process group)."""

    def __init__(self, name: str, spec: ServerSpec, log_dir: Path) -> None:
        self.name = name
        self.spec = spec
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [part.replace("{port}", str(self.port)) for part in self.spec.argv]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                argv,
                cwd=self.spec.cwd,
                env={**_inherited_env(), **self.spec.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches worker children too
            )

    @property
    def pgid(self) -> int | None:
        """Process group of the server and its workers (None when not running)."""
        return self._process.pid if self._process is not None else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def wait_ready(self) -> None:
        """Poll ``ready_path`` until it answers 200; raise on exit or at the deadline."""
        assert self._process is not None, "start() first"
        deadline = time.monotonic() + self.spec.startup_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerFailed(
                    f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            status, _ = http_get(self.url + self.spec.ready_path, timeout=1.0)
            if status == 200:
                return
            time.sleep(POLL_INTERVAL_S)  # polling interval, not synchronisation
        raise ServerFailed(
            f"{self.name} not ready at {self.url}{self.spec.ready_path} within "
            f"{self.spec.startup_timeout_s:g} s:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM to the group; SIGKILL to the group if it has not exited in time."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout_s)
        # Workers left behind by a parent that died first.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        self._process = None

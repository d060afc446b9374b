"""Hostile clients against a real server on a free port: health stays visible, memory stays
bounded (issue 10). Each attack runs in a process of its own (``tests.attack``); this
process measures what an honest client sees meanwhile."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.attack import raise_descriptor_limit
from tests.server import REPO_ROOT, ServerHandle, run_server

pytestmark = pytest.mark.slow

HEALTH_P99_S = 0.100
HEALTH_MAX_S = 0.250


@contextmanager
def attack(kind: str, url: str, connections: int, amount: float) -> Iterator[subprocess.Popen]:
    """Run ``tests.attack`` until it says every connection is open; then yield it."""
    process = subprocess.Popen(
        [
            "nice",
            "-n",
            "19",
            sys.executable,
            "-m",
            "tests.attack",
            kind,
            url,
            str(connections),
            str(amount),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.strip() == "ready", f"attack did not start: {line!r}"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(30)


def finish(process: subprocess.Popen) -> dict[str, int]:
    assert process.stdout is not None
    out, _ = process.communicate(timeout=120)
    return json.loads(out.strip().splitlines()[-1])


def get_once(url: str) -> int:
    """``GET url`` on a new connection, as a load balancer's health check does; the status."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


def probe(url: str, seconds: float) -> np.ndarray:
    """Latencies of ``GET url``, each on a new connection, for ``seconds``."""
    latencies = []
    stop = time.monotonic() + seconds
    while time.monotonic() < stop:
        started = time.perf_counter()
        status = get_once(url)
        latencies.append(time.perf_counter() - started)
        assert status == 200, status
        time.sleep(0.01)  # a health checker's pace, not synchronisation
    return np.array(latencies)


def summary(latencies: np.ndarray) -> str:
    p50, p99 = np.percentile(latencies, [50, 99]) * 1000
    return (
        f"n={len(latencies)} p50={p50:.1f} ms p99={p99:.1f} ms max={latencies.max() * 1000:.1f} ms"
    )


def scheduling(pid: int) -> tuple[float, float]:
    """Seconds the process's main thread (the event loop) ran, and waited for a CPU."""
    fields = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(fields[0]) / 1e9, int(fields[1]) / 1e9


def assert_health_visible(latencies: np.ndarray, loop: str = "") -> None:
    """The issue's bounds. ``loop`` (the event loop's CPU time and run-queue wait meanwhile)
    goes into the message: on a machine busy with other work, a miss shows up there."""
    assert len(latencies) >= 50
    assert np.percentile(latencies, 99) <= HEALTH_P99_S, summary(latencies) + loop
    assert latencies.max() <= HEALTH_MAX_S, summary(latencies) + loop


def loop_note(before: tuple[float, float], after: tuple[float, float], seconds: float) -> str:
    ran, waited = after[0] - before[0], after[1] - before[1]
    return f"; event loop ran {ran:.2f} s and waited {waited:.2f} s for a CPU in {seconds:.1f} s"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    raise_descriptor_limit(8192)  # the server inherits it
    with run_server({"DIGITPASS_RELOAD_INTERVAL_S": "0"}) as handle:
        yield handle


def test_health_stays_visible_under_2000_half_open_connections(server):
    pid = server.process.pid
    with attack("half-open", server.url, 2000, 6) as process:
        before = scheduling(pid)
        latencies = probe(server.url + "/healthz", 3)
        ready = probe(server.url + "/readyz", 1)
        note = loop_note(before, scheduling(pid), 4)
        counts = finish(process)
    print("half-open:", summary(latencies), counts, note)
    assert counts["opened"] >= 2000
    assert_health_visible(latencies, note)
    assert_health_visible(np.concatenate([latencies, ready]), note)


def test_health_stays_visible_under_overload_of_2000_connections(server):
    pid = server.process.pid
    with attack("overload", server.url, 2000, 8) as process:
        # From half a second in: the steady attack, not its synchronised first burst.
        probe(server.url + "/healthz", 0.5)
        before = scheduling(pid)
        latencies = probe(server.url + "/healthz", 5)
        note = loop_note(before, scheduling(pid), 5)
        counts = finish(process)
    print("overload:", summary(latencies), counts, note)
    assert counts.get("200", 0) > 0
    assert set(counts) <= {"200", "503"}, counts
    assert_health_visible(latencies, note)


def rss_bytes(pid: int, *, children: bool = True) -> int:
    """Resident memory of ``pid`` and (``children``) its children, the preprocessing
    workers."""
    total = 0
    pids = [pid]
    for task in (
        Path(f"/proc/{pid}/task").iterdir() if children else ()
    ):  # children hang off the thread that
        try:  # started them (the workers: the stage's I/O threads)
            pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


MAX_BUFFERED = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def upload_server() -> Iterator[ServerHandle]:
    env = {"DIGITPASS_RELOAD_INTERVAL_S": "0", "DIGITPASS_MAX_BUFFERED_BYTES": str(MAX_BUFFERED)}
    with run_server(env) as handle:
        yield handle


def test_memory_stays_bounded_under_150_concurrent_max_size_uploads(upload_server):
    """The server's bodies are capped at MAX_BUFFERED in all: the whole process tree (the
    server and its preprocessing workers) peaks within baseline + 2 x the cap; afterwards
    the server is back at its baseline; the tree stays within that bound (the large-lane
    worker's allocator gives back the last bodies it decoded in its own time: measured
    +30 MiB right after, below its baseline again a few rounds later)."""
    pid = upload_server.process.pid
    for _ in range(3):  # warm: the first uploads size the allocator's pools
        with attack("uploads", upload_server.url, 10, 5 * 1024 * 1024) as process:
            finish(process)
    baseline, server_baseline = rss_bytes(pid), rss_bytes(pid, children=False)
    peak = baseline
    with attack("uploads", upload_server.url, 150, 5 * 1024 * 1024) as process:
        while process.poll() is None:
            peak = max(peak, rss_bytes(pid))
            time.sleep(0.005)  # sampling interval
        counts = finish(process)
    deadline = time.monotonic() + 10
    after, server_after = rss_bytes(pid), rss_bytes(pid, children=False)
    while server_after > server_baseline + MAX_BUFFERED // 2 and time.monotonic() < deadline:
        time.sleep(0.1)  # polling
        after, server_after = rss_bytes(pid), rss_bytes(pid, children=False)
    mib = 1024 * 1024
    print(
        f"uploads: baseline={baseline / mib:.0f} MiB peak={peak / mib:.0f} MiB "
        f"after={after / mib:.0f} MiB (server {server_baseline / mib:.0f} -> "
        f"{server_after / mib:.0f} MiB) {counts}"
    )
    assert set(counts) <= {"400", "503"}, counts  # refused, or not an image
    assert counts.get("503", 0) > 0
    assert peak <= baseline + 2 * MAX_BUFFERED
    # Back at the baseline, give or take what the allocator keeps of the last bodies
    # freed (-5 to +8.4 MiB measured); bodies kept alive would be the cap's worth (the
    # tracebacks of refused requests used to hold 62 MiB here).
    assert server_after <= server_baseline + MAX_BUFFERED // 2
    assert after <= baseline + 2 * MAX_BUFFERED


def costly_png(side: int) -> bytes:
    """A ``side`` x ``side`` PNG that compresses to a few kB and decodes to side² pixels."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("L", (side, side), 255)
    ImageDraw.Draw(image).line(
        (side // 2, side // 5, side // 2, 4 * side // 5), fill=0, width=side // 12
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def test_256_costly_images_in_one_request_leave_other_clients_unaffected(server):
    import threading

    import httpx

    from tests.attack import digit_png

    costly = costly_png(3500)
    assert 256 * len(costly) < 5 * 1024 * 1024 - 64 * 1024  # within the body limit
    files = [("images", (f"{i}.png", costly, "image/png")) for i in range(256)]
    attack_result: dict[str, object] = {}

    def attacker() -> None:
        started = time.monotonic()
        reply = httpx.post(server.url + "/predict/digits", files=files, timeout=120)
        attack_result.update(status=reply.status_code, seconds=time.monotonic() - started)

    honest_png = digit_png()
    latencies: list[float] = []
    statuses: list[int] = []
    stop = time.monotonic() + 6

    def honest() -> None:
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < stop:
                started = time.perf_counter()
                reply = client.post(
                    server.url + "/predict/digit",
                    files={"image": ("d.png", honest_png, "image/png")},
                )
                latencies.append(time.perf_counter() - started)
                statuses.append(reply.status_code)
                started = time.perf_counter()
                reply = client.get(server.url + "/predict/pass", params={"hours": 3})
                latencies.append(time.perf_counter() - started)
                statuses.append(reply.status_code)

    threads = [threading.Thread(target=attacker)] + [
        threading.Thread(target=honest) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    values = np.array(latencies)
    print("costly images:", attack_result, summary(values))
    assert attack_result["status"] in (200, 503, 504), attack_result  # never a 500
    assert set(statuses) == {200}
    assert np.percentile(values, 99) < 1.0, summary(values)
    # The abandoned work was stopped: a photo-sized upload is served promptly afterwards.
    started = time.monotonic()
    reply = httpx.post(
        server.url + "/predict/digit",
        files={"image": ("p.png", costly_png(1500), "image/png")},
        timeout=30,
    )
    assert reply.status_code in (200, 422), reply.text
    assert time.monotonic() - started < 5

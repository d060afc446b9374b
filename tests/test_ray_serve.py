"""digitpass on Ray Serve, on a real two-node Ray cluster on this machine (loopback
only): replicas on both nodes, the recorded HTTP contract through Ray's proxy, batching
seen in Ray's metrics export, hot reload under load, and a replica killed under load.

One cluster for the module (starting one takes seconds); the tests that disturb it
(reload, then the fault) come last.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.contract_cases import PIXEL_LIMIT, UPLOAD_LIMIT, answer, cases, digit_png
from tests.ray_support import RayServeHandle, ray_serve_cluster, wait_for
from tests.test_e2e_service import publish_copy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
RECORDED = json.loads((Path(__file__).parent / "data" / "http_contract.json").read_text())
RELOAD_INTERVAL_S = 0.5


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The models the contract was recorded with: pass/1 and digit/1, shared by both
    nodes (here: one folder; on several machines: a shared volume)."""
    root = tmp_path_factory.mktemp("ray") / "models"
    for name in ("pass", "digit"):
        shutil.copytree(MODELS_DIR / name / "1", root / name / "1")
    return root


@pytest.fixture(scope="module")
def ray_serve(repository: Path):
    with ray_serve_cluster(
        repository,
        reload_interval_s=RELOAD_INTERVAL_S,
        max_upload_bytes=UPLOAD_LIMIT,
        max_image_pixels=PIXEL_LIMIT,
    ) as handle:
        yield handle


def test_replicas_run_on_both_nodes(ray_serve: RayServeHandle):
    replicas = ray_serve.replicas()
    assert len(replicas) == 2
    assert len({r["node_id"] for r in replicas}) == 2
    nodes = {n["NodeID"] for n in __import__("ray").nodes() if n["Alive"]}
    assert {r["node_id"] for r in replicas} == nodes


def test_the_cluster_listens_on_loopback_only(ray_serve: RayServeHandle):
    """Node addresses, GCS, raylets, object managers, the dashboard, the proxy."""
    import ray

    for node in ray.nodes():
        assert node["NodeManagerAddress"] == "127.0.0.1"
        assert node["ObjectManagerPort"] and node["NodeManagerPort"]
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    assert ray_serve.url.startswith("http://127.0.0.1:")
    ours = _cluster_pids()
    listening = _listening_sockets()
    ray_servers = [(addr, pid) for addr, pid in listening if pid in ours]
    assert ray_servers, "no Ray process listens at all?"
    # One exception, Ray's own: each Serve replica's inter-deployment gRPC server binds
    # [::]:0 (hard-coded in ray/serve/_private/replica.py). Nothing of ours talks to it.
    replicas = {r["pid"] for r in ray_serve.replicas()}
    open_wide = [(a, p) for a, p in ray_servers if not _loopback(a) and p not in replicas]
    assert open_wide == []


def _loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    return host.startswith(("127.", "::ffff:127.")) or host == "::1"


def _cluster_pids() -> set[int]:
    """Processes of this test's cluster: descendants of this process."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _listening_sockets() -> list[tuple[str, int]]:
    """(local address, pid) of every listening TCP socket (from /proc, like ss)."""
    inodes: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = int(entry.name)
        except OSError:
            continue
    found = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # LISTEN
                continue
            address_hex, port_hex = fields[1].split(":")
            found.append((_address(address_hex, width) + f":{int(port_hex, 16)}", fields[9]))
    return [(address, inodes[inode]) for address, inode in found if inode in inodes]


def _address(hex_text: str, width: int) -> str:
    raw = bytes.fromhex(hex_text)
    if width == 8:
        return ".".join(str(b) for b in raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    flat = b"".join(words)
    if flat[:12] == b"\x00" * 10 + b"\xff\xff":
        return "::ffff:" + ".".join(str(b) for b in flat[12:])
    if flat == b"\x00" * 16:
        return "[::]"
    if flat == b"\x00" * 15 + b"\x01":
        return "::1"
    return flat.hex()


# A malformed Content-Length never reaches an app behind a real HTTP server: the
# server's parser refuses it (uvicorn in digitpass-serve, Ray's proxy here), so this
# recorded case (an ASGI-level answer) is checked on the wire, below.
AT_THE_EDGE = {"digit invalid content-length"}


@pytest.mark.parametrize("name", sorted(set(RECORDED) - AT_THE_EDGE))
def test_the_recorded_contract_through_the_ray_ingress(ray_serve: RayServeHandle, name):
    """Same status, body and content type as digitpass-serve (Ray's proxy sets its own
    connection handling, so ``connection`` and ``content-length`` of a close may differ)."""
    method, url, kwargs = cases()[name]
    with httpx.Client(base_url=ray_serve.url, timeout=30) as client:
        got = answer(client.request(method, url, **kwargs))
    recorded = RECORDED[name]
    assert got["status"] == recorded["status"]
    assert json.loads(got["body"]) == json.loads(recorded["body"])
    assert got["headers"]["content-type"] == recorded["headers"]["content-type"]
    assert got["headers"]["retry-after"] == recorded["headers"]["retry-after"]


def test_a_malformed_content_length_is_refused_by_the_proxy_with_400(ray_serve: RayServeHandle):
    host, port = ray_serve.url.removeprefix("http://").split(":")
    request = (
        b"POST /predict/digit HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
        b"Content-Length: abc\r\n\r\n" + digit_png()
    )
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 400 ")


def _exported(text: str, name: str, **labels: str) -> dict[str, float]:
    """replica -> value of one exported sample (Ray prefixes application metrics)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        metric, rest = line.split("{", 1)
        if metric not in (name, f"ray_{name}"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            values[found.get("replica", "")] = float(line.rsplit(" ", 1)[1])
    return values


def post_digit(client: httpx.Client) -> httpx.Response:
    return client.post("/predict/digit", content=digit_png(), headers={"content-type": "image/png"})


def test_batching_shows_in_each_replicas_metrics_through_ray_export(ray_serve: RayServeHandle):
    def before() -> dict[str, float]:
        text = ray_serve.exported_metrics()
        return _exported(text, "digitpass_inference_batch_size_sum", model="digit")

    start = before()
    requests = 96
    with (
        httpx.Client(
            base_url=ray_serve.url, timeout=60, limits=httpx.Limits(max_connections=48)
        ) as client,
        ThreadPoolExecutor(48) as pool,
    ):
        statuses = [r.status_code for r in pool.map(lambda _: post_digit(client), range(requests))]
    assert statuses == [200] * requests
    text = wait_for(
        lambda: (
            (
                t
                if sum(_exported(t, "digitpass_inference_batch_size_sum", model="digit").values())
                - sum(v for v in start.values())
                >= requests
                else None
            )
            if (t := ray_serve.exported_metrics())
            else None
        ),
        timeout=30,
        what="the replicas' batch sizes in Ray's metrics export",
        interval=0.5,
    )
    rows = _exported(text, "digitpass_inference_batch_size_sum", model="digit")
    batches = _exported(text, "digitpass_inference_batch_size_count", model="digit")
    assert len(rows) == 2  # both replicas served and export, tagged with their replica id
    assert all(value > 0 for value in rows.values())
    assert sum(batches.values()) < sum(rows.values())  # some batches held several rows
    versions = _exported(text, "digitpass_model_version", model="digit")
    assert set(versions.values()) == {1.0}


class Load:
    """``clients`` threads posting digits until stopped; (start, status, version) each."""

    def __init__(self, url: str, clients: int = 6) -> None:
        self.url = url
        self.results: list[tuple[float, int, int | None]] = []
        self._halt = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(clients)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        for thread in self._threads:
            thread.join(60)

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._halt.is_set():
                started = time.monotonic()
                try:
                    response = post_digit(client)
                    version = (
                        response.json()["model"]["version"] if response.status_code == 200 else None
                    )
                    self.results.append((started, response.status_code, version))
                except httpx.HTTPError:
                    self.results.append((started, 0, None))

    def failures(self) -> list[tuple[float, int, int | None]]:
        return [r for r in self.results if r[1] != 200]


def test_a_new_version_under_load_reaches_every_replica_within_the_poll_interval(
    ray_serve: RayServeHandle, repository: Path
):
    with Load(ray_serve.url) as load:
        wait_for(lambda: len(load.results) >= 30, 60, "traffic")
        published = time.monotonic()
        new = publish_copy(repository, "digit", repository / "digit" / "1")
        wait_for(
            lambda: (
                set(
                    _exported(
                        ray_serve.exported_metrics(), "digitpass_model_version", model="digit"
                    ).values()
                )
                == {float(new)}
            ),
            timeout=30,
            what="both replicas serving the new version",
            interval=0.2,
        )
        # Each replica rescans every 0.5 s; loading and warming the new version up takes
        # a moment more, so allow that: after it, no replica answers with the old one.
        deadline = published + RELOAD_INTERVAL_S + 1.5
        wait_for(
            lambda: sum(1 for r in load.results if r[0] > deadline) >= 60,
            60,
            "traffic after the reload",
        )
    assert load.failures() == []
    late = [r for r in load.results if r[0] > deadline]
    assert late and {version for _, _, version in late} == {new}
    assert load.results[0][2] == 1


def test_a_replica_killed_under_load_is_replaced_and_few_requests_fail(
    ray_serve: RayServeHandle, record_property
):
    replicas = ray_serve.replicas()
    assert len(replicas) == 2
    victim = replicas[0]
    with Load(ray_serve.url) as load:
        wait_for(lambda: len(load.results) >= 30, 60, "traffic")
        os.kill(victim["pid"], signal.SIGKILL)
        killed = len(load.results)
        replacement = wait_for(
            lambda: (
                [
                    r
                    for r in ray_serve.replicas()
                    if r["id"] != victim["id"] and r["id"] != replicas[1]["id"]
                ]
                or None
            ),
            timeout=90,
            what="a replacement replica",
            interval=0.5,
        )
        # It serves: traffic keeps flowing after the replacement is up.
        done = len(load.results)
        wait_for(lambda: len(load.results) >= done + 30, 60, "traffic after the replacement")
    failures = load.failures()
    record_property("failed_requests", len(failures))
    print(f"\nfault: {len(failures)} of {len(load.results)} failed ({killed} before the kill)")
    assert len(failures) <= 5, failures
    assert len(replacement) == 1
    wait_for(lambda: len(ray_serve.replicas()) == 2, 60, "two replicas again")


def test_serve_ray_with_ray_address_deploys_to_the_cluster_and_leaves_it_running(
    ray_serve: RayServeHandle, repository: Path, tmp_path: Path
):
    import ray
    from ray import serve

    from tests.test_serve_ray_command import start, wait_ready

    log = tmp_path / "serve-ray.log"
    # The cluster's proxy is already running: the deployment answers there.
    process = start(0, repository, log, {"RAY_ADDRESS": ray_serve.cluster.address})
    try:
        wait_for(lambda: "serving on" in log.read_text(errors="replace"), 120, "the deployment")
        wait_ready(ray_serve.url, process, log)
        reply = httpx.post(
            ray_serve.url + "/predict/digit",
            content=digit_png(),
            headers={"content-type": "image/png"},
        )
        assert reply.status_code == 200
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert exit_code == 0, log.read_text(errors="replace")[-3000:]
    assert all(node["Alive"] for node in ray.nodes())  # the cluster is still there
    assert "digitpass" not in serve.status().applications  # only our application went

"""End to end, against a real uvicorn subprocess on a free loopback port."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from service.imaging.pipeline import ImageSpec, preprocess_image
from tests.conftest import load_mnist_test_set
from tests.server import run_server
from training.publish import commit, staging

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent


def server_env(model_repo: Path, **settings: object) -> dict[str, str]:
    env = {"DIGITPASS_MODEL_REPOSITORY": str(model_repo), "DIGITPASS_RELOAD_INTERVAL_S": "0"}
    env.update({f"DIGITPASS_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    label_text = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(f"{name}{{{label_text}}}" if labels else name) + r" ([0-9.e+-]+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


async def post_digits(url: str, pngs: list[bytes], concurrency: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(data: bytes) -> httpx.Response:
            async with gate:
                return await client.post(
                    "/predict/digit", files={"image": ("d.png", data, "image/png")}
                )

        return await asyncio.gather(*(one(data) for data in pngs))


def offline_digits(version_dir: Path, pngs: list[bytes]) -> np.ndarray:
    """What the model says for each PNG, through the same preprocessing, without HTTP."""
    metadata = json.loads((version_dir / "metadata.json").read_text())
    spec = ImageSpec.from_metadata(metadata["input"]["preprocessing"])
    batch = np.concatenate([preprocess_image(d, spec, max_pixels=25_000_000) for d in pngs])
    session = ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (logits,) = session.run(None, {metadata["input"]["name"]: batch})
    return logits.argmax(axis=1)


def newest_dir(root: Path, name: str) -> Path:
    return max((p for p in (root / name).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def test_200_simultaneous_requests_are_batched_and_each_gets_its_own_answer(model_repo, mnist_pngs):
    pngs = [data for data, _ in mnist_pngs[:200]]
    labels = np.array([label for _, label in mnist_pngs[:200]])
    expected = offline_digits(newest_dir(model_repo, "digit"), pngs)
    with run_server(server_env(model_repo)) as server:
        responses = asyncio.run(post_digits(server.url, pngs, concurrency=200))
        metrics = httpx.get(server.url + "/metrics").text
    assert [r.status_code for r in responses] == [200] * 200
    served = np.array([r.json()["digit"] for r in responses])
    assert (served == expected).all()  # nothing lost, nothing mixed up
    assert (served == labels).mean() >= 0.97
    batches = metric(metrics, "digitpass_inference_batch_size_count", model="digit")
    rows = metric(metrics, "digitpass_inference_batch_size_sum", model="digit")
    assert rows == 200
    assert batches < 200, "no request was batched with another"
    assert rows / batches > 1


def test_1000_mnist_pngs_through_http_match_offline_accuracy(model_repo, mnist_dir, mnist_pngs):
    images, labels = load_mnist_test_set(mnist_dir)
    labels = labels[:1000]
    version_dir = newest_dir(model_repo, "digit")
    metadata = json.loads((version_dir / "metadata.json").read_text())
    pre = metadata["input"]["preprocessing"]
    raw = (images[:1000].reshape(-1, 784).astype(np.float32) / 255 - pre["mean"]) / pre["std"]
    session = ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    offline = (session.run(None, {"image": raw})[0].argmax(axis=1) == labels).mean()
    with run_server(server_env(model_repo)) as server:
        responses = asyncio.run(post_digits(server.url, [d for d, _ in mnist_pngs], 32))
    assert all(r.status_code == 200 for r in responses)
    served = np.array([r.json()["digit"] for r in responses])
    accuracy = (served == labels).mean()
    assert accuracy >= 0.98
    assert abs(accuracy - offline) <= 0.003, (accuracy, offline)


class Traffic:
    """Steady digit and pass requests from a few clients until stopped; counts outcomes."""

    def __init__(self, url: str, png: bytes) -> None:
        self.url, self.png = url, png
        self.failures: list[str] = []
        self.versions: list[int] = []
        self.running = True

    async def client_loop(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            while self.running:
                for response in await asyncio.gather(
                    client.post(
                        "/predict/digit", files={"image": ("d.png", self.png, "image/png")}
                    ),
                    client.get("/predict/pass", params={"hours": 5}),
                ):
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text}")
                    elif "digit" in response.json():
                        self.versions.append(response.json()["model"]["version"])


async def run_with_traffic(url: str, png: bytes, action) -> Traffic:
    traffic = Traffic(url, png)
    clients = [asyncio.create_task(traffic.client_loop()) for _ in range(8)]
    try:
        await action(traffic)
    finally:
        traffic.running = False
        await asyncio.gather(*clients)
    return traffic


async def wait_for_queued(client: httpx.AsyncClient, count: int, timeout: float = 30) -> None:
    """Poll ``/metrics`` until ``count`` digit requests wait in the queue (summed over
    the live workers)."""
    deadline = time.monotonic() + timeout
    while True:
        text = (await client.get("/metrics")).text
        if metric(text, "digitpass_queue_depth", model="digit") >= count:
            return
        assert time.monotonic() < deadline, "requests never queued"
        await asyncio.sleep(0.01)  # polling interval, not synchronisation


async def wait_for_version(url: str, name: str, version: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url) as client:
        while (await client.get("/readyz")).json()["models"][name] != version:
            assert time.monotonic() < deadline, f"{name} v{version} not served in {timeout} s"
            await asyncio.sleep(0.05)


def publish_copy(root: Path, name: str, source: Path) -> int:
    """Publish ``source`` again as the next version, the way training publishes."""
    metadata = json.loads((source / "metadata.json").read_text())
    with staging(root, name) as stage:
        for item in source.iterdir():
            if item.name != "metadata.json":
                shutil.copy2(item, stage / item.name)
        return int(commit(stage, metadata).name)


def test_hot_reload_under_traffic_loses_no_request(model_repo, mnist_pngs):
    png = mnist_pngs[0][0]
    old = int(newest_dir(model_repo, "digit").name)
    with run_server(server_env(model_repo, reload_interval_s=0.2)) as server:

        async def publish_during_traffic(traffic: Traffic) -> None:
            await wait_until(lambda: len(traffic.versions) >= 20)
            new = publish_copy(model_repo, "digit", newest_dir(model_repo, "digit"))
            await wait_for_version(server.url, "digit", new)
            seen = len(traffic.versions)
            await wait_until(lambda: len(traffic.versions) >= seen + 20)

        traffic = asyncio.run(run_with_traffic(server.url, png, publish_during_traffic))
        models = {m["name"]: m for m in httpx.get(server.url + "/models").json()["models"]}
    assert traffic.failures == []
    assert traffic.versions[0] == old
    assert traffic.versions[-1] == old + 1 == models["digit"]["version"]
    switch = traffic.versions.index(old + 1)
    assert set(traffic.versions[switch:]) == {old + 1}  # never back to the old one


async def wait_until(predicate, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.01)


def test_broken_and_half_copied_versions_are_skipped(model_repo, mnist_pngs):
    current_dir = newest_dir(model_repo, "digit")
    current = int(current_dir.name)
    with run_server(server_env(model_repo, reload_interval_s=0.2)) as server:
        # A version whose model file is corrupt (same size, so only the sha256 can tell).
        broken = model_repo / "digit" / str(current + 1)
        shutil.copytree(current_dir, broken)
        metadata = json.loads((broken / "metadata.json").read_text())
        metadata["version"] = current + 1
        (broken / "metadata.json").write_text(json.dumps(metadata))
        onnx = bytearray((broken / "model.onnx").read_bytes())
        onnx[-64:] = bytes(64)
        (broken / "model.onnx").write_bytes(bytes(onnx))
        asyncio.run(wait_for_metric(server.url, "failed", 1))
        response = httpx.post(
            server.url + "/predict/digit",
            content=mnist_pngs[0][0],
            headers={"content-type": "image/png"},
        )
        assert response.status_code == 200
        assert response.json()["model"]["version"] == current
        # A half-copied version: metadata only, artifacts still missing.
        half = model_repo / "digit" / str(current + 2)
        half.mkdir()
        shutil.copy2(current_dir / "metadata.json", half / "metadata.json")
        asyncio.run(wait_for_metric(server.url, "failed", 2))
        assert httpx.get(server.url + "/readyz").json()["models"]["digit"] == current
        # Once the copy completes (and says what it is), it is loaded.
        for item in current_dir.iterdir():
            shutil.copy2(item, half / item.name)
        metadata["version"] = current + 2
        (half / "metadata.json").write_text(json.dumps(metadata))
        asyncio.run(wait_for_version(server.url, "digit", current + 2))
        log = server.log()
    assert '"event": "model_version_skipped"' in log and "sha256" in log


async def wait_for_metric(url: str, outcome: str, at_least: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url) as client:
        while True:
            text = (await client.get("/metrics")).text
            if (
                metric(text, "digitpass_model_reloads_total", model="digit", outcome=outcome)
                >= at_least
            ):
                return
            assert time.monotonic() < deadline, f"no {outcome} reload seen in {timeout} s"
            await asyncio.sleep(0.05)


def test_sigterm_drains_queued_requests_and_exits_zero(model_repo, mnist_pngs):
    pngs = [d for d, _ in mnist_pngs[:48]]
    # A long batch delay keeps requests queued when the signal arrives.
    with run_server(server_env(model_repo, max_batch_delay_ms=1500, max_batch_size=256)) as server:

        async def scenario() -> list[httpx.Response]:
            requests = asyncio.create_task(post_digits(server.url, pngs, concurrency=48))
            async with httpx.AsyncClient(base_url=server.url) as client:
                await wait_for_queued(client, len(pngs))
            server.process.send_signal(15)  # SIGTERM
            return await requests

        responses = asyncio.run(scenario())
        exit_code = server.process.wait(30)
    assert exit_code == 0, server.log()
    assert [r.status_code for r in responses] == [200] * len(pngs)
    assert '"event": "service_stopped"' in server.log()


def test_schemathesis_finds_no_5xx_and_no_schema_violation(model_repo, tmp_path):
    with run_server(server_env(model_repo)) as server:
        result = subprocess.run(
            [
                str(Path(sys.executable).with_name("st")),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "not_a_server_error,status_code_conformance,"
                "content_type_conformance,response_schema_conformance",
                "--max-examples",
                "40",
                "--seed",
                "20261122",
                "--workers",
                "1",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        log = server.log()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Traceback" not in log


def test_full_queue_is_503_with_retry_after_and_queued_requests_still_finish(
    model_repo, mnist_pngs
):
    png = mnist_pngs[0][0]
    settings = {"max_batch_delay_ms": 2000, "max_batch_size": 256, "max_queue": 4}
    with run_server(server_env(model_repo, **settings)) as server:

        async def scenario() -> tuple[httpx.Response, list[httpx.Response]]:
            queued = asyncio.create_task(post_digits(server.url, [png] * 4, concurrency=4))
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                await wait_for_queued(client, 4)
                refused = await client.post(
                    "/predict/digit", content=png, headers={"content-type": "image/png"}
                )
            return refused, await queued

        refused, queued = asyncio.run(scenario())
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    assert "queue is full" in refused.json()["detail"]
    assert [r.status_code for r in queued] == [200] * 4


def test_a_request_waiting_past_the_timeout_is_504_and_never_run(model_repo, mnist_pngs):
    settings = {"max_batch_delay_ms": 3000, "max_batch_size": 256, "request_timeout_s": 0.3}
    with run_server(server_env(model_repo, **settings)) as server:
        response = httpx.post(
            server.url + "/predict/digit",
            content=mnist_pngs[0][0],
            headers={"content-type": "image/png"},
            timeout=30,
        )
        assert response.status_code == 504
        assert "did not answer within 0.3 s" in response.json()["detail"]
        # After the batch window closes, nothing ran: the only request had given up.
        deadline = time.monotonic() + 10
        while (
            metric(httpx.get(server.url + "/metrics").text, "digitpass_queue_depth", model="digit")
            > 0
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        text = httpx.get(server.url + "/metrics").text
    assert metric(text, "digitpass_inference_batch_size_count", model="digit") == 0


@pytest.mark.parametrize(
    "command",
    [
        [
            "{python}",
            "-m",
            "uvicorn",
            "service.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        ["{python}", "-m", "service", "--host", "127.0.0.1", "--port", "{port}", "--workers", "2"],
    ],
    ids=["uvicorn-factory", "two-workers"],
)
def test_other_ways_to_start_serve(model_repo, mnist_pngs, command, request):
    args = [part.replace("{python}", sys.executable) for part in command]
    with run_server(server_env(model_repo), args=args) as server:
        responses = asyncio.run(post_digits(server.url, [d for d, _ in mnist_pngs[:20]], 10))
        assert [r.json()["digit"] for r in responses] == [label for _, label in mnist_pngs[:20]]
        exit_code = server.stop()
    assert '"event": "service_stopped"' in server.log()  # a graceful shutdown either way
    # Bare uvicorn dies of the SIGTERM it re-raises after shutting down; digitpass-serve
    # absorbs it and exits 0.
    expected = -15 if "uvicorn-factory" in request.node.name else 0
    assert exit_code == expected, server.log()


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_workers_answer_scrapes_for_both(model_repo, mnist_pngs):
    """Each scrape, whichever worker answers it, counts every worker's requests."""
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob("digitpass-metrics-*"))
    args = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
    with run_server(server_env(model_repo), args=[*args, "--workers", "2"]) as server:
        for _ in range(30):  # a connection each: the kernel spreads them over both workers
            with httpx.Client(base_url=server.url) as fresh:
                assert fresh.get("/predict/pass?hours=4").status_code == 200
        uploads = asyncio.run(post_digits(server.url, [d for d, _ in mnist_pngs[:20]], 10))
        assert all(r.status_code == 200 for r in uploads)
        scrapes = []
        for _ in range(6):
            with httpx.Client(base_url=server.url) as fresh:
                scrapes.append(fresh.get("/metrics").text)
        for text in scrapes:
            assert (
                _sample(text, "digitpass_http_requests_total", route="/predict/pass", status="200")
                == 30
            )
            assert (
                _sample(text, "digitpass_http_requests_total", route="/predict/digit", status="200")
                == 20
            )
            assert _sample(text, "digitpass_inference_batch_size_sum", model="digit") == 20
            assert _sample(text, "digitpass_model_version", model="digit") >= 1
        exit_code = server.stop()
    assert exit_code == 0, server.log()
    assert set(temp.glob("digitpass-metrics-*")) == before  # the samples folder is gone


def test_a_bad_setting_is_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "service"],
        env={**os.environ, "DIGITPASS_MAX_BATCH_SIZE": "0", "DIGITPASS_BACKEND": "tf"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "DIGITPASS_MAX_BATCH_SIZE='0': Input should be greater than or equal to 1" in (
        result.stderr
    )
    assert "DIGITPASS_BACKEND='tf'" in result.stderr


def test_training_in_a_serving_only_install_says_how_to_install_it():
    """``python -m training`` with no torch importable: one line, exit 2, no traceback."""
    code = (
        "import sys, importlib.util\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda n, *a: None if n == 'torch' else real(n, *a)\n"
        "sys.argv = ['digitpass-train', 'all']\n"
        "import runpy; runpy.run_module('training', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "pip install -e '.[train]'" in result.stderr and "Traceback" not in result.stderr

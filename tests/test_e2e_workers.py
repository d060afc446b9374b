"""Several server workers (``digitpass-serve --workers 2``) behave as one server: hot
reload, /admin/reload, /readyz, the SIGTERM drain (aggregated /metrics:
test_e2e_service.test_two_workers_answer_scrapes_for_both)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.server import ServerHandle, run_server
from tests.test_e2e_service import (
    newest_dir,
    post_digits,
    publish_copy,
    run_with_traffic,
    server_env,
    wait_for_queued,
    wait_for_version,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TWO_WORKERS = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", "{port}"]
TWO_WORKERS += ["--workers", "2"]


def events(server: ServerHandle, name: str) -> list[dict]:
    found = []
    for line in server.log().splitlines():
        if line.startswith("{") and f'"event": "{name}"' in line:
            found.append(json.loads(line))
    return found


def worker_pids(server: ServerHandle) -> list[int]:
    """The supervisor's worker processes (uvicorn spawns them)."""
    pids = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"multiprocessing.spawn" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(int(child))
    return pids


def versions_on_fresh_connections(url: str, png: bytes, count: int) -> set[int]:
    """Digit versions answering ``count`` requests, each on a connection of its own (the
    kernel spreads new connections over the workers)."""
    seen = set()
    for _ in range(count):
        with httpx.Client(base_url=url) as fresh:
            response = fresh.post(
                "/predict/digit", content=png, headers={"content-type": "image/png"}
            )
            assert response.status_code == 200, response.text
            seen.add(response.json()["model"]["version"])
    return seen


def test_hot_reload_reaches_both_workers_under_traffic(model_repo, mnist_pngs):
    png = mnist_pngs[0][0]
    old = int(newest_dir(model_repo, "digit").name)
    with run_server(server_env(model_repo, reload_interval_s=0.2), args=TWO_WORKERS) as server:
        assert len(worker_pids(server)) == 2

        async def publish_during_traffic(traffic) -> None:
            while len(traffic.versions) < 20:
                await asyncio.sleep(0.01)
            publish_copy(model_repo, "digit", newest_dir(model_repo, "digit"))
            await wait_for_version(server.url, "digit", old + 1)  # both workers: the lowest

        traffic = asyncio.run(run_with_traffic(server.url, png, publish_during_traffic))
        after = versions_on_fresh_connections(server.url, png, 20)
        loaded = [e for e in events(server, "model_loaded") if e["model"] == "digit"]
    assert traffic.failures == []
    assert after == {old + 1}
    assert sorted(e["version"] for e in loaded) == [old, old, old + 1, old + 1]


def test_admin_reload_reaches_every_worker_before_it_answers(model_repo, mnist_pngs):
    png = mnist_pngs[0][0]
    old = int(newest_dir(model_repo, "digit").name)
    env = server_env(model_repo, reload_interval_s=0, admin_token="s3cret")
    with run_server(env, args=TWO_WORKERS) as server:
        publish_copy(model_repo, "digit", newest_dir(model_repo, "digit"))
        assert versions_on_fresh_connections(server.url, png, 10) == {old}  # no polling
        refused = httpx.post(server.url + "/admin/reload")
        assert refused.status_code == 401
        assert versions_on_fresh_connections(server.url, png, 10) == {old}
        answer = httpx.post(
            server.url + "/admin/reload", headers={"authorization": "Bearer s3cret"}, timeout=30
        )
        assert answer.status_code == 200
        # Answered only once both workers had rescanned: no request sees the old one.
        assert versions_on_fresh_connections(server.url, png, 20) == {old + 1}
        assert httpx.get(server.url + "/readyz").json()["models"]["digit"] == old + 1
        reloaded = events(server, "worker_reloaded")
    assert len(reloaded) == 1  # the worker asked reloaded itself; the other followed


def test_readyz_is_ready_only_when_every_worker_is(model_repo):
    with run_server(server_env(model_repo), args=TWO_WORKERS) as server:
        first, second = worker_pids(server)
        os.kill(second, signal.SIGKILL)  # uvicorn's supervisor starts a replacement
        answers: list[tuple[int, str]] = []
        deadline = time.monotonic() + 60
        while True:
            response = httpx.get(server.url + "/readyz", timeout=5)
            answers.append((response.status_code, response.text))
            if response.status_code == 200 and any(code == 503 for code, _ in answers):
                break
            assert time.monotonic() < deadline, answers[-3:]
            time.sleep(0.02)  # polling interval
        replacement = set(worker_pids(server)) - {first}
        exit_code = server.stop()
    not_ready = [json.loads(text)["detail"] for code, text in answers if code == 503]
    assert not_ready and set(not_ready) == {"not ready: 1 of 2 workers ready"}
    assert answers[0][0] == 503  # at once: the dead worker's state no longer counts
    assert len(replacement) == 1 and second not in replacement
    assert exit_code == 0


def test_sigterm_drains_every_worker_and_exits_zero(model_repo, mnist_pngs):
    pngs = [d for d, _ in mnist_pngs[:48]]
    env = server_env(model_repo, max_batch_delay_ms=1500, max_batch_size=256)
    with run_server(env, args=TWO_WORKERS) as server:

        async def scenario() -> list[httpx.Response]:
            requests = asyncio.create_task(post_digits(server.url, pngs, concurrency=48))
            async with httpx.AsyncClient(base_url=server.url) as client:
                await wait_for_queued(client, len(pngs))  # summed over the live workers
            server.process.send_signal(signal.SIGTERM)
            return await requests

        responses = asyncio.run(scenario())
        exit_code = server.process.wait(30)
        stopped = events(server, "service_stopped")
        batches = [e for e in events(server, "service_started")]
    assert exit_code == 0, server.log()
    assert [r.status_code for r in responses] == [200] * len(pngs)
    assert len(stopped) == 2 and len(batches) == 2

"""Abandoned work stops (issue 10): a large-lane job whose request timed out or whose
client went away is stopped while it runs, and the next job runs at once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from service.errors import RequestTimedOut
from service.serving.stage import LARGE_BYTES, PreprocessStage
from service.serving.worker import whoami
from tests.stage_support import gated, logged


def log_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def test_a_running_large_job_that_times_out_is_stopped(tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"  # the gate never opens
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=60)
    try:
        before, _ = await stage.run(whoami, [], cost=LARGE_BYTES)  # the worker is up
        stage._timeout_s = 0.3
        with pytest.raises(RequestTimedOut):
            await stage.run(gated, [str(gate), str(log), "abandoned"], cost=LARGE_BYTES)
        stage._timeout_s = 30
        started = time.monotonic()
        after, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert after != before  # the worker that held it was stopped, a new one answers
        assert time.monotonic() - started < 10  # not after the gate's 30 s
        gate.touch()
        await asyncio.sleep(0.2)  # had the job survived, it would log now
        assert log_of(log) == []
    finally:
        stage.close()


async def test_a_running_large_job_whose_client_went_away_is_stopped(tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=30)
    try:
        before, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        request = asyncio.ensure_future(
            stage.run(gated, [str(gate), str(log), "abandoned"], cost=LARGE_BYTES)
        )
        await asyncio.sleep(0.2)
        request.cancel()  # what the router does when the client disconnects
        after, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert after != before
        gate.touch()
        await stage.run(logged, [str(log), "next"], cost=LARGE_BYTES)
        assert log_of(log) == ["next"]
    finally:
        stage.close()


async def test_small_lane_jobs_are_not_killed_when_one_request_gives_up(tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=30)
    try:
        before, _ = await stage.run(whoami, [], cost=10)
        request = asyncio.ensure_future(stage.run(gated, [str(gate), str(log), "kept"]))
        await asyncio.sleep(0.2)
        request.cancel()
        gate.touch()
        after, _ = await stage.run(whoami, [], cost=10)
        assert after == before
    finally:
        stage.close()


async def test_an_upload_whose_client_disconnects_is_cancelled():
    from service.http.asgi import ClientGone
    from service.http.router import until_disconnect

    gone = asyncio.Event()
    cancelled = asyncio.Event()

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def work():
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    request = asyncio.ensure_future(until_disconnect(work(), receive))
    await asyncio.sleep(0.01)
    gone.set()
    with pytest.raises(ClientGone):
        await request
    assert cancelled.is_set()

    async def quick():
        return 42

    assert await until_disconnect(quick(), receive) == 42  # no disconnect: the answer

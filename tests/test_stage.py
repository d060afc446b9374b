"""The preprocessing stage, without HTTP: bounded queues and worker processes of its own.

The jobs come from ``tests/stage_support.py``: they run in the stage's worker processes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from service.errors import InvalidImage, QueueFull, RequestTimedOut
from service.imaging.pipeline import ImageSpec
from service.models.kinds.image import prepare_images
from service.serving.stage import GROUP_BYTES, GROUP_JOBS, LARGE_BYTES, PreprocessStage, _Job, _Lane
from service.serving.subprocess_pool import SubprocessExecutor, WorkerDied
from service.serving.worker import whoami
from tests.stage_support import gated, logged, prepare_or_fail, rows_of


@pytest.fixture
async def stage():
    made = PreprocessStage(workers=1, max_queue=3, timeout_s=30)
    yield made
    made.close()


def log_of(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


async def handed_off(stage: PreprocessStage, deadline_s: float = 10.0) -> None:
    """Let the tasks just created queue their jobs, then wait until every queued job has
    gone to a worker (the stage hands off once per pass of the event loop)."""
    deadline = time.monotonic() + deadline_s
    await asyncio.sleep(0)
    while stage.queue_depth:
        assert time.monotonic() < deadline, "the jobs were never handed off"
        await asyncio.sleep(0)


async def test_jobs_queued_in_one_pass_of_the_loop_share_one_hand_off(stage, monkeypatch):
    """Even with the worker idle, the first job does not go alone: the stage hands off
    what queued in the same pass of the event loop together (one round trip)."""
    stage._max_queue = 100
    hand_offs: list[int] = []
    submit = SubprocessExecutor.submit

    def counted(self, fn, *args):
        hand_offs.append(len(args[0]))  # prepare_all's tasks: the jobs of this hand-off
        return submit(self, fn, *args)

    monkeypatch.setattr(SubprocessExecutor, "submit", counted)
    results = await asyncio.gather(*(stage.run(rows_of, [b"x" * n]) for n in range(1, 11)))
    assert [int(r[0, 0]) for r in results] == list(range(1, 11))
    assert hand_offs == [10]


async def test_each_request_gets_its_own_rows(stage):
    stage._max_queue = 100
    results = await asyncio.gather(*(stage.run(rows_of, [b"x" * n]) for n in range(1, 41)))
    assert [int(r[0, 0]) for r in results] == list(range(1, 41))


async def test_small_jobs_share_a_hand_off_and_a_large_one_goes_alone():
    loop = asyncio.get_running_loop()
    lane = _Lane(niceness=0, workers=1, group_jobs=GROUP_JOBS)
    for cost in [10] * 5 + [GROUP_BYTES] + [10] * (GROUP_JOBS + 3):
        lane.pending.append(_Job(rows_of, [b""], cost, loop.create_future()))
    groups = []
    while lane.pending:
        groups.append(len(lane._take()))
    assert groups == [5, 1, GROUP_JOBS, 3]


async def test_a_job_that_gave_up_is_never_taken():
    loop = asyncio.get_running_loop()
    lane = _Lane(niceness=0, workers=1, group_jobs=GROUP_JOBS)
    jobs = [_Job(rows_of, [b""], 10, loop.create_future()) for _ in range(3)]
    jobs[1].future.cancel()
    lane.pending.extend(jobs)
    assert lane._take() == [jobs[0], jobs[2]]


async def test_a_bad_input_fails_only_its_own_request(stage):
    results = await asyncio.gather(
        stage.run(prepare_or_fail, [b"ok"]),
        stage.run(prepare_or_fail, [b"bad"]),
        return_exceptions=True,
    )
    assert isinstance(results[0], np.ndarray)
    assert isinstance(results[1], InvalidImage) and results[1].detail == "not an image"


async def test_a_full_queue_is_refused_at_once(stage, tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"
    running = asyncio.ensure_future(stage.run(gated, [str(gate), str(log), "first"]))
    await handed_off(stage)  # to the only worker
    queued = [asyncio.ensure_future(stage.run(logged, [str(log), f"q{i}"])) for i in range(3)]
    await asyncio.sleep(0)  # they are queued
    with pytest.raises(QueueFull):
        await stage.run(logged, [str(log), "refused"])
    gate.touch()
    await asyncio.gather(running, *queued)
    assert log_of(log) == ["first", "q0", "q1", "q2"]


async def test_a_request_that_waited_too_long_is_504_and_its_work_is_never_done(tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=0.2)
    try:
        slow = asyncio.ensure_future(stage.run(gated, [str(gate), str(log), "slow"]))
        await handed_off(stage)
        with pytest.raises(RequestTimedOut):
            await stage.run(logged, [str(log), "late"])
        with pytest.raises(RequestTimedOut):
            await slow  # it timed out as well, while its work went on
        gate.touch()
        stage._timeout_s = 30
        await stage.run(logged, [str(log), "next"])  # the worker is free again
        assert log_of(log) == ["slow", "next"]  # "late" was dropped, never prepared
    finally:
        stage.close()


async def test_an_expensive_input_delays_only_its_own_request(tmp_path):
    gate, log = tmp_path / "gate", tmp_path / "log"
    stage = PreprocessStage(workers=2, max_queue=100, timeout_s=30)
    try:
        expensive = asyncio.ensure_future(stage.run(gated, [str(gate), str(log), "expensive"]))
        await handed_off(stage)
        # The expensive one holds a worker until the gate opens; the others all finish.
        cheap = await asyncio.gather(*(stage.run(logged, [str(log), "cheap"]) for _ in range(50)))
        assert len(cheap) == 50 and not expensive.done()
        gate.touch()
        await expensive
        assert log_of(log) == ["cheap"] * 50 + ["expensive"]
    finally:
        stage.close()


async def test_jobs_run_in_worker_processes_and_large_ones_at_a_lower_priority(mnist_pngs):
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=60)
    try:
        small_pid, small_nice = await stage.run(whoami, [], cost=100)
        large_pid, large_nice = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert len({os.getpid(), small_pid, large_pid}) == 3
        assert small_nice == os.nice(0) and large_nice == 19
        again, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert again == large_pid  # one worker, kept
        prepare = functools.partial(prepare_images, ImageSpec(), 25_000_000)
        rows = await stage.run(prepare, [mnist_pngs[0][0]], cost=LARGE_BYTES)
        assert rows.shape == (1, 784)
        with pytest.raises(InvalidImage):
            await stage.run(prepare, [b"not an image"], cost=LARGE_BYTES)
    finally:
        stage.close()


async def test_a_worker_that_dies_fails_its_own_job_and_the_next_job_gets_a_new_one():
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=60)
    try:
        first, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        with pytest.raises(WorkerDied):
            await stage.run(sys.exit, 3, cost=LARGE_BYTES)  # the worker process exits
        second, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert second != first
    finally:
        stage.close()

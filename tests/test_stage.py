"""The preprocessing stage, without HTTP: a bounded pool of its own for costly inputs."""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading

import numpy as np
import pytest

from service.errors import InvalidImage, QueueFull, RequestTimedOut
from service.imaging.pipeline import ImageSpec
from service.models.kinds.image import prepare_images
from service.serving.stage import GROUP_BYTES, LARGE_BYTES, PreprocessStage
from service.serving.subprocess_pool import WorkerDied
from service.serving.worker import whoami


def rows_of(rows: list[bytes]) -> np.ndarray:
    return np.full((len(rows), 2), float(len(rows[0])), dtype=np.float32)


async def test_each_request_gets_its_own_rows():
    stage = PreprocessStage(workers=2, max_queue=100, timeout_s=10)
    try:
        results = await asyncio.gather(*(stage.run(rows_of, [b"x" * n]) for n in range(1, 41)))
        assert [int(r[0, 0]) for r in results] == list(range(1, 41))
    finally:
        stage.close()


async def test_small_jobs_share_a_hand_off_and_a_large_one_goes_alone():
    threads: list[tuple[str, int]] = []
    gate = threading.Event()

    def record(rows: list[bytes]) -> np.ndarray:
        if rows[0] == b"block":
            gate.wait(10)
        threads.append((threading.current_thread().name, len(rows[0])))
        return rows_of(rows)

    stage = PreprocessStage(workers=1, max_queue=100, timeout_s=10)
    try:
        blocker = asyncio.ensure_future(stage.run(record, [b"block"]))
        await asyncio.sleep(0)  # let the only worker take the blocker
        small = [asyncio.ensure_future(stage.run(record, [b"s" * 10])) for _ in range(5)]
        large = asyncio.ensure_future(stage.run(record, [b"L" * GROUP_BYTES]))
        await asyncio.sleep(0)
        assert stage.queue_depth == 6
        gate.set()
        await asyncio.gather(blocker, *small, large)
        assert [size for _, size in threads] == [5, 10, 10, 10, 10, 10, GROUP_BYTES]
    finally:
        stage.close()


async def test_a_bad_input_fails_only_its_own_request():
    def prepare(rows: list[bytes]) -> np.ndarray:
        if rows[0] == b"bad":
            raise InvalidImage("not an image")
        return rows_of(rows)

    stage = PreprocessStage(workers=1, max_queue=100, timeout_s=10)
    try:
        results = await asyncio.gather(
            stage.run(prepare, [b"ok"]), stage.run(prepare, [b"bad"]), return_exceptions=True
        )
        assert isinstance(results[0], np.ndarray)
        assert isinstance(results[1], InvalidImage)
    finally:
        stage.close()


async def test_a_full_queue_is_refused_at_once():
    gate = threading.Event()

    def blocked(rows: list[bytes]) -> np.ndarray:
        gate.wait(10)
        return rows_of(rows)

    stage = PreprocessStage(workers=1, max_queue=2, timeout_s=10)
    try:
        running = asyncio.ensure_future(stage.run(blocked, [b"a"]))
        await asyncio.sleep(0)
        queued = [asyncio.ensure_future(stage.run(blocked, [b"b"])) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await stage.run(blocked, [b"c"])
        gate.set()
        await asyncio.gather(running, *queued)
    finally:
        stage.close()


async def test_a_request_that_waited_too_long_is_504_and_its_work_is_never_done():
    done: list[bytes] = []
    gate = threading.Event()

    def prepare(rows: list[bytes]) -> np.ndarray:
        if rows[0] == b"slow":
            gate.wait(10)
        done.append(rows[0])
        return rows_of(rows)

    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=0.05)
    try:
        slow = asyncio.ensure_future(stage.run(prepare, [b"slow"]))
        await asyncio.sleep(0)
        with pytest.raises(RequestTimedOut):
            await stage.run(prepare, [b"late"])
        gate.set()
        with pytest.raises(RequestTimedOut):
            await slow  # it timed out too, though its work finished
        await stage.run(prepare, [b"next"])  # the worker is free again
        assert done == [b"slow", b"next"]  # "late" was dropped, never prepared
    finally:
        stage.close()


async def test_an_expensive_input_delays_only_its_own_request():
    gate = threading.Event()

    def prepare(rows: list[bytes]) -> np.ndarray:
        if rows[0].startswith(b"expensive"):
            gate.wait(10)
        return rows_of(rows)

    stage = PreprocessStage(workers=2, max_queue=100, timeout_s=10)
    try:
        expensive = asyncio.ensure_future(stage.run(prepare, [b"expensive" * 40_000]))
        await asyncio.sleep(0)
        # The expensive one holds a worker until the gate opens; the others all finish.
        cheap = await asyncio.gather(*(stage.run(prepare, [b"cheap"]) for _ in range(50)))
        assert len(cheap) == 50 and not expensive.done()
        gate.set()
        await expensive
    finally:
        stage.close()


async def test_large_jobs_run_in_a_process_of_their_own_at_a_lower_priority(mnist_pngs):
    stage = PreprocessStage(workers=1, max_queue=10, timeout_s=60)
    spec = ImageSpec()
    try:
        pid, niceness = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert pid != os.getpid() and niceness >= os.nice(0) + 10
        again, _ = await stage.run(whoami, [], cost=LARGE_BYTES)
        assert again == pid  # one worker, kept
        here, _ = await stage.run(whoami, [], cost=100)
        assert here == os.getpid()  # small jobs stay in this process's threads
        prepare = functools.partial(prepare_images, spec, 25_000_000)
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

"""The dynamic batcher, with a plain-Python run_batch (no HTTP, no model)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from service.errors import InferenceFailed, InvalidImage, ModelNotReady, QueueFull, RequestTimedOut
from service.serving.batching import DynamicBatcher


class Recorder:
    """A run_batch that records its batches and the thread it ran on."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[list[int]]] = []
        self.threads: set[str] = set()
        self.gate = gate
        self.calls = 0  # incremented as a batch starts, before it waits on the gate

    def __call__(self, items):
        self.calls += 1
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        self.threads.add(threading.current_thread().name)
        self.batches.append([list(rows) for rows in items])
        return [[value * 10 for value in rows] for rows in items]


def make(run_batch, **overrides) -> DynamicBatcher:
    options = {"max_batch_size": 8, "max_delay_s": 0.0, "max_queue": 100, "timeout_s": 5.0}
    options.update(overrides)
    return DynamicBatcher("test", run_batch, **options)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.001)


async def test_idle_request_runs_alone_and_off_the_event_loop():
    recorder = Recorder()
    batcher = make(recorder)
    batcher.start()
    assert await batcher.submit([3]) == [30]
    await batcher.stop()
    assert recorder.batches == [[[3]]]
    assert all(name.startswith("infer-test") for name in recorder.threads)


async def test_requests_arriving_during_a_batch_form_the_next_batch_in_order():
    gate = threading.Event()
    recorder = Recorder(gate)
    sizes: list[int] = []
    batcher = make(recorder, on_batch=lambda rows, seconds: sizes.append(rows))
    batcher.start()
    first = asyncio.create_task(batcher.submit([0]))
    await wait_for(lambda: recorder.calls == 1)  # the worker took it and is blocked
    rest = [asyncio.create_task(batcher.submit([i])) for i in range(1, 21)]
    await wait_for(lambda: batcher.queue_depth == 20)
    gate.set()
    results = await asyncio.gather(first, *rest)
    await batcher.stop()
    assert results == [[i * 10] for i in range(21)]  # every caller got its own answer
    assert sizes == [1, 8, 8, 4]  # greedy, capped at max_batch_size rows
    assert [rows[0] for batch in recorder.batches for rows in batch] == list(range(21))


async def test_multi_row_requests_count_rows_against_the_batch_size():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make(recorder, max_batch_size=4)
    batcher.start()
    first = asyncio.create_task(batcher.submit([0]))
    await wait_for(lambda: recorder.calls == 1)
    tasks = [asyncio.create_task(batcher.submit(rows)) for rows in ([1, 2, 3], [4, 5], [6] * 9)]
    await wait_for(lambda: batcher.queue_depth == 3)
    gate.set()
    await asyncio.gather(first, *tasks)
    await batcher.stop()
    # [1,2,3] fits; [4,5] would make 5 rows; the 9-row request runs alone.
    assert recorder.batches[1:] == [[[1, 2, 3]], [[4, 5]], [[6] * 9]]


async def test_delay_waits_to_fill_a_batch():
    recorder = Recorder()
    batcher = make(recorder, max_delay_s=0.5, max_batch_size=4)
    batcher.start()
    results = await asyncio.gather(*(batcher.submit([i]) for i in range(4)))
    await batcher.stop()
    assert results == [[0], [10], [20], [30]]
    assert recorder.batches == [[[0], [1], [2], [3]]]


async def test_full_queue_is_refused_with_retry_after():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make(recorder, max_queue=2)
    batcher.start()
    running = asyncio.create_task(batcher.submit([0]))
    await wait_for(lambda: recorder.calls == 1)
    queued = [asyncio.create_task(batcher.submit([i])) for i in (1, 2)]
    await wait_for(lambda: batcher.queue_depth == 2)
    with pytest.raises(QueueFull) as refused:
        await batcher.submit([3])
    assert refused.value.status_code == 503
    assert refused.value.headers["Retry-After"] == "1"
    gate.set()
    assert await asyncio.gather(running, *queued) == [[0], [10], [20]]
    await batcher.stop()


async def test_a_request_that_waited_too_long_gets_504_and_is_not_run():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make(recorder, timeout_s=0.2)
    batcher.start()
    running = asyncio.create_task(batcher.submit([0]))
    await wait_for(lambda: recorder.calls == 1)
    with pytest.raises(RequestTimedOut) as timed_out:
        await batcher.submit([1])
    assert timed_out.value.status_code == 504
    gate.set()
    with pytest.raises(RequestTimedOut):
        await running  # it was stuck behind the gate for longer than the timeout as well
    assert await batcher.submit([2]) == [20]
    await batcher.stop()
    assert [1] not in [rows for batch in recorder.batches for rows in batch]


async def test_a_failing_batch_fails_only_its_requests_and_the_worker_survives():
    calls = []

    def flaky(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("CUDA exploded")
        return [rows[0] for rows in items]

    batcher = make(flaky)
    batcher.start()
    with pytest.raises(InferenceFailed) as failed:
        await batcher.submit([1])
    assert failed.value.status_code == 500
    assert await batcher.submit([2]) == 2
    await batcher.stop()


async def test_a_wrong_result_count_fails_the_batch_instead_of_mixing_answers():
    batcher = make(lambda items: [1] * (len(items) + 1))
    batcher.start()
    results = await asyncio.gather(batcher.submit([1]), batcher.submit([2]), return_exceptions=True)
    await batcher.stop()
    assert all(isinstance(r, InferenceFailed) for r in results), results


async def test_per_request_errors_reach_only_their_request():
    def run(items):
        return [InvalidImage("bad") if rows[0] < 0 else rows[0] for rows in items]

    batcher = make(run)
    batcher.start()
    results = await asyncio.gather(
        batcher.submit([1]), batcher.submit([-1]), batcher.submit([3]), return_exceptions=True
    )
    await batcher.stop()
    assert results[0] == 1 and results[2] == 3
    assert isinstance(results[1], InvalidImage)


async def test_stop_drains_the_queue_then_refuses_new_requests():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make(recorder)
    batcher.start()
    tasks = [asyncio.create_task(batcher.submit([i])) for i in range(5)]
    await wait_for(lambda: recorder.calls == 1)
    stopping = asyncio.create_task(batcher.stop())
    await wait_for(lambda: batcher._closing)
    with pytest.raises(ModelNotReady):
        await batcher.submit([99])
    gate.set()
    await stopping
    assert await asyncio.gather(*tasks) == [[i * 10] for i in range(5)]


async def test_a_cancelled_caller_is_skipped():
    gate = threading.Event()
    recorder = Recorder(gate)
    batcher = make(recorder)
    batcher.start()
    running = asyncio.create_task(batcher.submit([0]))
    await wait_for(lambda: recorder.calls == 1)
    abandoned = asyncio.create_task(batcher.submit([1]))
    kept = asyncio.create_task(batcher.submit([2]))
    await wait_for(lambda: batcher.queue_depth == 2)
    abandoned.cancel()
    gate.set()
    assert await running == [0]
    assert await kept == [20]
    await batcher.stop()
    assert recorder.batches == [[[0]], [[2]]]

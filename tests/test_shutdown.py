"""The SIGTERM drain (service/shutdown.py): unready first, the server's handler once
nothing is in flight; a second signal, or SIGINT, goes straight through."""

from __future__ import annotations

import asyncio
import signal

from service.shutdown import Drain, drain_on_sigterm


class Recorder:
    def __init__(self) -> None:
        self.began = 0
        self.passed: list[int] = []

    def begin(self) -> None:
        self.began += 1

    def then(self, sig: int, frame: object) -> None:
        self.passed.append(sig)


async def wait_for(condition, seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        assert loop.time() < deadline
        await asyncio.sleep(0.005)


async def test_sigterm_waits_for_the_work_in_flight_then_hands_over():
    recorder, in_flight = Recorder(), [2]
    drain = Drain(
        recorder.begin, lambda: in_flight[0], recorder.then, 30, asyncio.get_running_loop()
    )
    drain.handle(signal.SIGTERM, None)
    assert recorder.began == 1 and drain.started
    await asyncio.sleep(0.1)  # two requests still in flight: not handed over
    assert recorder.passed == []
    in_flight[0] = 0
    await wait_for(lambda: recorder.passed == [signal.SIGTERM])


async def test_a_second_sigterm_or_sigint_goes_straight_through():
    recorder = Recorder()
    drain = Drain(recorder.begin, lambda: 1, recorder.then, 30, asyncio.get_running_loop())
    drain.handle(signal.SIGINT, None)
    assert recorder.passed == [signal.SIGINT] and recorder.began == 0
    drain.handle(signal.SIGTERM, None)
    drain.handle(signal.SIGTERM, None)
    assert recorder.passed == [signal.SIGINT, signal.SIGTERM] and recorder.began == 1


async def test_the_drain_gives_up_after_its_timeout():
    recorder = Recorder()
    drain = Drain(recorder.begin, lambda: 1, recorder.then, 0.05, asyncio.get_running_loop())
    drain.handle(signal.SIGTERM, None)
    await wait_for(lambda: recorder.passed == [signal.SIGTERM])


async def test_nothing_is_installed_without_uvicorns_handler():
    before = signal.getsignal(signal.SIGTERM)
    with drain_on_sigterm(lambda: None, lambda: 0, 30) as drain:
        assert drain is None and signal.getsignal(signal.SIGTERM) == before

"""``service.errors.forget_tracebacks``: an answered error lets go of the frames it left."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import cast

import grpc
import pytest

from service.errors import MalformedRequest, forget_tracebacks
from service.metrics import ServiceMetrics
from service.rpc.server import InferenceService
from service.serving.runtime import ServingRuntime


class Body:
    """Stands for a request body (bytes cannot be weakly referenced)."""


def fail_holding(body: Body) -> None:
    raise ValueError("not an image")


def answered_error(body: Body) -> BaseException:
    try:
        try:
            fail_holding(body)
        except ValueError as exc:
            raise MalformedRequest("bad upload") from exc
    except MalformedRequest as exc:
        return exc
    raise AssertionError("unreachable")


def test_the_frames_of_an_error_and_of_its_causes_are_freed_without_the_collector():
    gc.disable()
    try:
        body = Body()
        freed = weakref.ref(body)
        error = answered_error(body)
        del body
        assert freed() is not None  # the traceback's frames hold it
        forget_tracebacks(error)
        assert freed() is None  # by reference counting alone
        assert error.__traceback__ is None and error.__cause__ is not None
        assert error.__cause__.__traceback__ is None
    finally:
        gc.enable()


def test_a_chain_that_loops_back_on_itself_ends():
    first, second = ValueError("a"), ValueError("b")
    first.__context__, second.__context__ = second, first
    forget_tracebacks(first)
    assert first.__traceback__ is None and second.__traceback__ is None


class AbortingContext:
    """A gRPC servicer context as far as an error's answer goes: ``abort`` raises."""

    def __init__(self) -> None:
        self.answered: tuple[grpc.StatusCode, str] | None = None

    async def abort(self, code: grpc.StatusCode, detail: str) -> None:
        self.answered = (code, detail)
        raise grpc.aio.AbortError()


def test_an_error_answered_over_grpc_lets_go_of_the_request_at_once():
    """The gRPC layer's one error mapping (``InferenceService.answer``) drops the
    tracebacks too. A request awaits a future that fails (a batch's answer): the
    frame holding the request also holds that future, which holds the error, whose
    traceback holds the frame, a cycle; with the collector off, the request is freed
    all the same."""
    service = InferenceService(cast(ServingRuntime, None), ServiceMetrics())
    context = AbortingContext()
    freed: list[weakref.ref[Body]] = []

    async def produce() -> None:
        body = Body()
        freed.append(weakref.ref(body))
        answer = asyncio.get_running_loop().create_future()
        answer.set_exception(MalformedRequest("bad upload"))
        await answer

    gc.disable()
    try:
        with pytest.raises(grpc.aio.AbortError):
            asyncio.run(service.answer("ModelInfer", context, produce))
        assert context.answered == (grpc.StatusCode.INVALID_ARGUMENT, "bad upload")
        assert freed[0]() is None
    finally:
        gc.enable()

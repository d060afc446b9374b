"""``service.errors.forget_tracebacks``: an answered error lets go of the frames it left."""

from __future__ import annotations

import gc
import weakref

from service.errors import MalformedRequest, forget_tracebacks


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

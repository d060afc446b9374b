"""JSON request bodies, parsed as the untrusted work they are.

``json.loads`` is C code that holds the GIL for the whole parse: a 5 MB body takes
over 100 ms, and a thread would not free the event loop. So:

* a body of up to ``INLINE_BYTES`` is parsed on the event loop (well under a
  millisecond);
* a larger one is parsed in a worker process (the preprocessing stage's: ``offload``),
  together with ``convert``, which turns the parsed value into what the caller wants
  (for example numpy arrays for the Open Inference Protocol's tensors), so that what
  comes back pickles cheaply; a Python structure of a million floats costs as much to
  unpickle as to parse.

The nesting depth is bounded (``max_depth``) without a regex or a Python loop per
byte: numpy finds the brackets outside strings and takes a running sum. Every
failure is a 4xx :class:`service.errors.ServiceError` of the caller's choosing
(``error``: 422 :class:`InvalidInput` for the model routes, 400 for the V2 routes).

Usage::

    value = await parse_json(body, offload=runtime.stage.run)
    arrays = await parse_json(body, offload=runtime.stage.run, convert=tensors_of)
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput, ServiceError

INLINE_BYTES = 64 * 1024
MAX_DEPTH = 64

# ``PreprocessStage.run``: ``prepare(rows)`` in a worker process, by cost in bytes.
Offload = Callable[[Callable[[Sequence[Any]], Any], Sequence[Any], int], Awaitable[Any]]
Convert = Callable[[Any], Any]

_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def nesting_depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body``: exact for valid JSON (brackets
    inside strings do not count); for a body that is not JSON, a bound. Linear,
    vectorised."""
    data = np.frombuffer(body, dtype=np.uint8)
    if data.size == 0:
        return 0
    quotes = np.flatnonzero(data == _QUOTE)
    if quotes.size:
        # A quote is escaped when an odd number of backslashes precede it.
        index = np.arange(data.size)
        last_plain = np.maximum.accumulate(np.where(data != _BACKSLASH, index, -1))
        before = np.maximum(quotes - 1, 0)
        run = np.where(quotes > 0, before - last_plain[before], 0)
        quotes = quotes[run % 2 == 0]
    toggles = np.zeros(data.size, dtype=np.int8)
    toggles[quotes] = 1
    inside = (np.cumsum(toggles, dtype=np.int64) & 1).astype(bool)
    steps = _OPEN[data]
    steps[inside] = 0
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def too_deep(body: bytes, max_depth: int) -> bool:
    """Whether ``body`` nests deeper than ``max_depth``. Fewer opening brackets than that
    in all (most requests) settle it with two C-speed counts; otherwise numpy."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False
    return nesting_depth(body) > max_depth


def decode(
    body: bytes,
    convert: Convert | None = None,
    max_depth: int = MAX_DEPTH,
    error: type[ServiceError] = InvalidInput,
) -> Any:
    """Check the depth, parse, convert: all of it where this is called."""
    if not body.strip():
        raise error("body: the request body is empty; send a JSON object")
    if too_deep(body, max_depth):
        raise error(f"body: JSON nested {nesting_depth(body)} deep, at most {max_depth}")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise error(
            f"body: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (UnicodeDecodeError, RecursionError):
        raise error("body: not valid JSON (bad encoding, or nested too deeply)") from None
    except ValueError:  # int() past Python's limit on digits (sys.get_int_max_str_digits)
        raise error("body: a number has too many digits") from None
    return convert(value) if convert is not None else value


def decode_rows(rows: Sequence[tuple[bytes, Convert | None, int, type[ServiceError]]]) -> Any:
    """The worker process's side of :func:`parse_json` (one row: one body)."""
    ((body, convert, max_depth, error),) = rows
    return decode(body, convert, max_depth, error)


async def parse_json(
    body: bytes,
    *,
    offload: Offload | None,
    convert: Convert | None = None,
    max_depth: int = MAX_DEPTH,
    error: type[ServiceError] = InvalidInput,
) -> Any:
    """``body`` parsed as JSON (and passed through ``convert``), off the event loop when
    it is large. ``convert`` must pickle (a module-level function) to run off the loop.
    Without ``offload`` everything runs here (tests, tools)."""
    if len(body) <= INLINE_BYTES or offload is None:
        return decode(body, convert, max_depth, error)
    return await offload(decode_rows, [(body, convert, max_depth, error)], len(body))

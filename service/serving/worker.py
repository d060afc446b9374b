"""A worker process for costly inputs: ``python -m service.serving.worker``.

It reads jobs from stdin and writes results to stdout, each one pickled behind an
8-byte length: a job is ``(function, args)``, a result ``(True, value)`` or
``(False, exception)``. It lowers its own CPU priority first, so that the serving
process it works for is served first, and imports what preparing an image needs
before it reads its first job. It exits when stdin closes.

Only the service's own process starts it and writes to it: its input is trusted
(pickles from the parent), while what it prepares (upload bytes) is not.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import IO, Any

HEADER = struct.Struct(">Q")
NICENESS = 19
PRELOAD = ("service.models.kinds.image",)


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One length-prefixed frame; None at the end of the stream."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (length,) = HEADER.unpack(header)
    payload = stream.read(length)
    return payload if len(payload) == length else None


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)))
    stream.write(payload)
    stream.flush()


def whoami(*_: object) -> tuple[int, int]:
    """This process's id and niceness (a probe of the worker; arguments are ignored)."""
    return os.getpid(), os.nice(0)


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    while (frame := read_frame(source)) is not None:
        try:
            function, args = pickle.loads(frame)
            result: tuple[bool, Any] = (True, function(*args))
        except Exception as exc:  # the job's failure is its answer
            result = (False, exc)
        try:
            payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an answer that does not pickle
            payload = pickle.dumps((False, RuntimeError(f"unpicklable result: {exc!r}")))
        write_frame(sink, payload)


def main() -> None:
    os.nice(int(sys.argv[1]) if len(sys.argv) > 1 else NICENESS)
    for module in PRELOAD:
        __import__(module)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()

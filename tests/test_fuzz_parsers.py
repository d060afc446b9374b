"""Property-based fuzzing of the multipart reader and the header-parameter parser
(issue 10): any input gets an answer or a MalformedMultipart, never another exception,
within a time and memory bound per input; well-formed input round-trips."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.http.multipart import MalformedMultipart, header_params, parse_multipart

TIME_BOUND_S = 0.020  # CPU time of one parse
FUZZ = settings(
    max_examples=300,
    deadline=None,  # the bound below is CPU time, which a busy machine does not inflate
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
BOUNDARY = "fuzzb0undary"


def bounded(work: Callable[[], object], size: int) -> object:
    """Run ``work``; assert its CPU time and peak memory (tracemalloc) are bounded."""
    tracemalloc.start()
    started = time.thread_time()
    try:
        result = work()
    except MalformedMultipart as exc:
        result = exc
    finally:
        seconds = time.thread_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < TIME_BOUND_S, f"{seconds * 1000:.1f} ms for {size} bytes"
    assert peak < 64 * 1024 + 8 * size, f"{peak} bytes of memory for {size} bytes of input"
    return result


header_text = st.text(
    alphabet=st.sampled_from([*";=\"\\ *'%aZ9-\t,", "\u00e9", "\x7f", "\u20ac"]),
    max_size=3000,
)


@FUZZ
@given(st.one_of(header_text, st.text(max_size=500)))
def test_header_params_answer_any_value_within_bounds(value):
    result = bounded(lambda: header_params("form-data" + value), len(value) * 4)
    if isinstance(result, dict):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
        assert len(result) <= 32


plain = st.text(
    alphabet=st.characters(blacklist_characters='"\\\r\n;\x00', blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
)


escapable = st.text(
    alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=40,
)


@FUZZ
@given(plain, escapable)
def test_quoted_names_and_escapes_round_trip(name, filename):
    escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
    value = f'form-data; name="{name}"; filename="{escaped}"'
    assert header_params(value) == {"name": name, "filename": filename}


def encode(parts: list[tuple[str, str | None, bytes]]) -> bytes:
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
        )
    return b"".join(chunks) + f"--{BOUNDARY}--\r\n".encode()


part = st.tuples(
    plain,
    st.one_of(st.none(), plain),
    st.binary(max_size=200).filter(lambda b: BOUNDARY.encode() not in b),
)


@FUZZ
@given(st.lists(part, min_size=1, max_size=8))
def test_well_formed_bodies_round_trip(parts):
    body = encode(parts)
    parsed = parse_multipart(body, f"multipart/form-data; boundary={BOUNDARY}", max_parts=8)
    assert [(p.name, p.filename, p.data) for p in parsed] == parts


@FUZZ
@given(
    st.lists(part, min_size=1, max_size=8),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=30)), max_size=6),
)
def test_mutated_bodies_answer_or_refuse_within_bounds(parts, edits):
    body = bytearray(encode(parts))
    for position, replacement in edits:  # overwrite, insert or cut at random places
        position %= len(body) + 1
        body[position : position + len(replacement) // 2] = replacement
    content_type = f"multipart/form-data; boundary={BOUNDARY}"
    result = bounded(lambda: parse_multipart(bytes(body), content_type, max_parts=8), len(body))
    if not isinstance(result, MalformedMultipart):
        assert len(result) <= 8


@FUZZ
@given(st.binary(max_size=4000), header_text)
def test_arbitrary_bytes_and_content_types_answer_or_refuse(body, content_type):
    value = "multipart/form-data" + content_type
    bounded(lambda: parse_multipart(body, value, max_parts=16), len(body) + len(value) * 4)

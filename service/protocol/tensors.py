"""Tensors of the Open Inference Protocol: datatypes, and decoding and encoding data.

A numeric tensor is a numpy array; a BYTES tensor is a list of ``bytes``, one per
element, row-major. Binary tensor data is little-endian and row-major; a BYTES tensor's
binary form is every element as a 4-byte little-endian length, then its bytes. All the
work here is numpy over whole buffers, or one step per BYTES element (never per byte).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import ServiceError

BYTES = "BYTES"
NUMPY_TYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
DATATYPES = (*NUMPY_TYPES, BYTES)
MAX_DIMS = 8
MAX_ELEMENTS = 1 << 26  # per tensor; the body limit is usually far lower
MAX_BYTES_ELEMENTS = 1024  # BYTES elements per tensor (each costs one Python step)
_LENGTH = struct.Struct("<I")

TensorData = np.ndarray | list[bytes]


class ProtocolError(ServiceError):
    """A request that breaks the protocol: bad shape, datatype, size or field."""

    status_code = 400


def check_datatype(datatype: object, where: str) -> str:
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ProtocolError(f"{where}: unknown datatype {str(datatype)[:32]!r}")
    return datatype


def check_shape(shape: object, where: str) -> tuple[int, ...]:
    """A list of 0 to ``MAX_DIMS`` non-negative ints -> a tuple; 400 otherwise."""
    if not isinstance(shape, list | tuple) or len(shape) > MAX_DIMS:
        raise ProtocolError(f"{where}: shape must be a list of at most {MAX_DIMS} integers")
    if not all(type(d) is int and 0 <= d <= MAX_ELEMENTS for d in shape):
        raise ProtocolError(f"{where}: shape must hold non-negative integers")
    dims = tuple(shape)
    if math.prod(dims) > MAX_ELEMENTS:
        raise ProtocolError(f"{where}: more than {MAX_ELEMENTS} elements")
    return dims


def byte_size(datatype: str, shape: tuple[int, ...]) -> int:
    """Bytes of a numeric tensor's binary data."""
    return NUMPY_TYPES[datatype].itemsize * math.prod(shape)


def from_binary(
    datatype: str, shape: tuple[int, ...], raw: bytes | memoryview, where: str
) -> TensorData:
    """Binary tensor data -> a tensor; the size must be exactly what shape x datatype take."""
    count = math.prod(shape)
    if datatype == BYTES:
        return split_bytes(raw, count, where)
    expected = byte_size(datatype, shape)
    if len(raw) != expected:
        raise ProtocolError(
            f"{where}: {len(raw)} bytes of data, but shape {list(shape)} of {datatype} "
            f"takes {expected}"
        )
    return np.frombuffer(raw, dtype=NUMPY_TYPES[datatype]).reshape(shape)


def split_bytes(raw: bytes | memoryview, count: int, where: str) -> list[bytes]:
    """``count`` length-prefixed elements, which must fill ``raw`` exactly."""
    if count > MAX_BYTES_ELEMENTS:
        raise ProtocolError(f"{where}: at most {MAX_BYTES_ELEMENTS} BYTES elements")
    view = memoryview(raw)
    elements = []
    offset = 0
    for _ in range(count):
        if offset + 4 > len(view):
            raise ProtocolError(f"{where}: BYTES data ends inside an element's length")
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > len(view):
            raise ProtocolError(f"{where}: BYTES element of {length} bytes overruns the data")
        elements.append(bytes(view[offset : offset + length]))
        offset += length
    if offset != len(view):
        raise ProtocolError(f"{where}: {len(view) - offset} bytes left after {count} elements")
    return elements


def join_bytes(elements: Sequence[bytes]) -> bytes:
    """BYTES elements -> their binary form, with the 4-byte length prefixes."""
    return b"".join(_LENGTH.pack(len(e)) + e for e in elements)


def from_json(datatype: str, shape: tuple[int, ...], data: object, where: str) -> TensorData:
    """JSON ``data`` (flat or nested, row-major) -> a tensor of ``shape``."""
    count = math.prod(shape)
    if not isinstance(data, list):
        data = [data]  # a scalar stands for one element
    if datatype == BYTES:
        flat = np.asarray(data, dtype=object).reshape(-1) if data else np.empty(0, dtype=object)
        if flat.size != count:
            raise ProtocolError(
                f"{where}: {flat.size} elements, but shape {list(shape)} holds {count}"
            )
        if count > MAX_BYTES_ELEMENTS:
            raise ProtocolError(f"{where}: at most {MAX_BYTES_ELEMENTS} BYTES elements")
        if not all(isinstance(e, str) for e in flat):
            raise ProtocolError(f"{where}: BYTES data in JSON must be strings")
        return [e.encode("utf-8", "surrogatepass") for e in flat]
    dtype = NUMPY_TYPES[datatype]
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        array = np.empty(0, dtype=object)  # ragged lists
    if array.dtype.kind not in _JSON_KINDS[dtype.kind]:
        raise ProtocolError(f"{where}: data must be {datatype} values, in lists of even length")
    if array.size != count:
        raise ProtocolError(
            f"{where}: {array.size} elements, but shape {list(shape)} holds {count}"
        )
    if dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise ProtocolError(f"{where}: a value is out of range for {datatype}")
    return array.astype(dtype).reshape(shape)


# What JSON numbers numpy reads (bool, int, float) may fill each kind of tensor.
_JSON_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}


def to_json(data: TensorData) -> list[Any]:
    """A tensor -> flat JSON data (BYTES as UTF-8 strings, or refused if not UTF-8)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).tolist()
    try:
        return [e.decode("utf-8") for e in data]
    except UnicodeDecodeError:
        raise ProtocolError("a BYTES output is not UTF-8: request it with binary_data") from None


def to_binary(data: TensorData) -> bytes:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).tobytes()
    return join_bytes(data)


def datatype_of(data: TensorData) -> str:
    if not isinstance(data, np.ndarray):
        return BYTES
    for name, dtype in NUMPY_TYPES.items():
        if data.dtype == dtype:
            return name
    raise TypeError(f"no protocol datatype for {data.dtype}")

"""Which files an ONNX model loads besides itself: its external-data locations.

An ONNX initializer may keep its bytes in another file (``data_location: EXTERNAL``,
``external_data: [{key: "location", value: "weights.bin"}, ...]``). The repository
contract lists every file a model loads, with its sha256, so the service must know
these names before ONNX Runtime opens anything. This reads them straight from the
protobuf wire format (the ``onnx`` package is not a serving dependency): it walks the
graph, its initializers and the graphs and tensors inside node attributes, skipping
every other field by its length. It runs at load time, off the request path.
"""

from __future__ import annotations

# Field numbers from onnx.proto3.
MODEL_GRAPH = 7
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_ATTRIBUTE = 5
ATTRIBUTE_TENSOR, ATTRIBUTE_GRAPH, ATTRIBUTE_TENSORS, ATTRIBUTE_GRAPHS = 5, 6, 10, 11
ATTRIBUTE_SPARSE_TENSOR, ATTRIBUTE_SPARSE_TENSORS = 22, 23
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA = 13
ENTRY_KEY, ENTRY_VALUE = 1, 2
MAX_DEPTH = 32  # nested subgraphs (If / Loop bodies)


class MalformedOnnx(ValueError):
    """The file is not a well-formed ONNX protobuf."""


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise MalformedOnnx("truncated or overlong varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def _fields(data: memoryview) -> list[tuple[int, memoryview | None]]:
    """(field number, payload) of every field; payload only for length-delimited ones."""
    found = []
    position = 0
    while position < len(data):
        tag, position = _varint(data, position)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            _, position = _varint(data, position)
            found.append((number, None))
        elif wire == 1:
            position += 8
        elif wire == 5:
            position += 4
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise MalformedOnnx("a field runs past the end of the file")
            found.append((number, data[position : position + length]))
            position += length
        else:
            raise MalformedOnnx(f"unsupported wire type {wire}")
    if position > len(data):
        raise MalformedOnnx("truncated field")
    return found


def _tensor(data: memoryview, out: set[str]) -> None:
    for number, payload in _fields(data):
        if number == TENSOR_EXTERNAL_DATA and payload is not None:
            entry = dict((n, p) for n, p in _fields(payload) if p is not None)
            if bytes(entry.get(ENTRY_KEY, b"")) == b"location":
                out.add(bytes(entry.get(ENTRY_VALUE, b"")).decode("utf-8", "replace"))


def _sparse(data: memoryview, out: set[str]) -> None:
    for number, payload in _fields(data):
        if number in (SPARSE_VALUES, SPARSE_INDICES) and payload is not None:
            _tensor(payload, out)


def _graph(data: memoryview, out: set[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedOnnx("subgraphs nested too deeply")
    for number, payload in _fields(data):
        if payload is None:
            continue
        if number == GRAPH_INITIALIZER:
            _tensor(payload, out)
        elif number == GRAPH_SPARSE_INITIALIZER:
            _sparse(payload, out)
        elif number == GRAPH_NODE:
            for attribute_number, node_payload in _fields(payload):
                if attribute_number == NODE_ATTRIBUTE and node_payload is not None:
                    _attribute(node_payload, out, depth)


def _attribute(data: memoryview, out: set[str], depth: int) -> None:
    for number, payload in _fields(data):
        if payload is None:
            continue
        if number in (ATTRIBUTE_TENSOR, ATTRIBUTE_TENSORS):
            _tensor(payload, out)
        elif number in (ATTRIBUTE_SPARSE_TENSOR, ATTRIBUTE_SPARSE_TENSORS):
            _sparse(payload, out)
        elif number in (ATTRIBUTE_GRAPH, ATTRIBUTE_GRAPHS):
            _graph(payload, out, depth + 1)


def external_data_files(model: bytes) -> set[str]:
    """Every external-data location the model names (as written in it)."""
    out: set[str] = set()
    for number, payload in _fields(memoryview(model)):
        if number == MODEL_GRAPH and payload is not None:
            _graph(payload, out, 0)
    return out

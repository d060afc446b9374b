"""An inference request and response as the protocol carries them, REST or gRPC.

REST: a JSON object, optionally followed by binary tensor data (Triton's binary tensor
data extension: ``Inference-Header-Content-Length``, ``binary_data_size`` on inputs,
``binary_data`` on requested outputs and the request's ``binary_data_output``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from service.protocol.tensors import (
    BYTES,
    ProtocolError,
    TensorData,
    check_datatype,
    check_shape,
    from_binary,
    from_json,
    to_binary,
    to_json,
)

MAX_INPUTS = 16
MAX_NAME = 256
DECODED = "digitpass.decoded"  # an input's JSON data, decoded already (parse_json's transform)


@dataclass(frozen=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: TensorData


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool | None = None  # None: the request's default
    class_count: int = 0


@dataclass(frozen=True)
class InferRequest:
    inputs: list[InputTensor]
    outputs: list[RequestedOutput] | None = None  # None: every output
    id: str | None = None
    binary_output: bool = False  # the request-level binary_data_output


@dataclass
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: TensorData
    binary: bool = False


@dataclass
class InferResponse:
    model_name: str
    model_version: str
    outputs: list[OutputTensor] = field(default_factory=list)
    id: str | None = None


def _name(value: object, where: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ProtocolError(f"{where}: 'name' must be a string of 1 to {MAX_NAME} characters")
    return value


def _parameters(item: dict[str, Any], where: str) -> dict[str, Any]:
    parameters = item.get("parameters", {})
    if not isinstance(parameters, dict):
        raise ProtocolError(f"{where}: 'parameters' must be an object")
    return parameters


def decode_json_data(request: Any) -> Any:
    """Each input's JSON ``data`` -> a tensor, in place (runs where the JSON was parsed,
    so that large data comes back as arrays). Anything malformed is left for
    :func:`request_from_json` to refuse."""
    inputs = request.get("inputs") if isinstance(request, dict) else None
    if isinstance(inputs, list):
        for index, item in enumerate(inputs[:MAX_INPUTS]):
            if isinstance(item, dict) and "data" in item:
                where = f"input '{item.get('name', index)!s:.64}'"
                datatype = check_datatype(item.get("datatype"), where)
                shape = check_shape(item.get("shape"), where)
                item[DECODED] = from_json(datatype, shape, item.pop("data"), where)
    return request


def request_from_json(request: Any, binary: bytes | memoryview = b"") -> InferRequest:
    """A parsed REST request (after :func:`decode_json_data`) and its binary data."""
    if not isinstance(request, dict):
        raise ProtocolError("the request must be a JSON object")
    raw_inputs = request.get("inputs")
    if not isinstance(raw_inputs, list) or not 1 <= len(raw_inputs) <= MAX_INPUTS:
        raise ProtocolError(f"'inputs' must be a list of 1 to {MAX_INPUTS} tensors")
    inputs = []
    offset = 0
    view = memoryview(binary)
    for index, item in enumerate(raw_inputs):
        if not isinstance(item, dict):
            raise ProtocolError(f"input {index}: must be an object")
        name = _name(item.get("name"), f"input {index}")
        where = f"input '{name}'"
        datatype = check_datatype(item.get("datatype"), where)
        shape = check_shape(item.get("shape"), where)
        size = _parameters(item, where).get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0:
                raise ProtocolError(f"{where}: binary_data_size must be a non-negative integer")
            if DECODED in item or "data" in item:
                raise ProtocolError(f"{where}: both 'data' and binary_data_size")
            if offset + size > len(view):
                raise ProtocolError(
                    f"{where}: binary_data_size {size} runs past the {len(view)} bytes of "
                    "binary data"
                )
            data = from_binary(datatype, shape, view[offset : offset + size], where)
            offset += size
        elif DECODED in item:
            data = item[DECODED]
        elif "data" in item:
            data = from_json(datatype, shape, item["data"], where)
        else:
            raise ProtocolError(f"{where}: no 'data' and no binary_data_size")
        inputs.append(InputTensor(name, datatype, shape, data))
    if offset != len(view):
        raise ProtocolError(
            f"{len(view) - offset} bytes of binary data that no input's binary_data_size covers"
        )
    parameters = _parameters(request, "the request")
    binary_output = parameters.get("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise ProtocolError("binary_data_output must be true or false")
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("'id' must be a string")
    return InferRequest(inputs, _requested_outputs(request), request_id, binary_output)


def _requested_outputs(request: dict[str, Any]) -> list[RequestedOutput] | None:
    raw = request.get("outputs")
    if raw is None or raw == []:  # none asked for: every output (as Triton, and as gRPC here)
        return None
    if not isinstance(raw, list) or len(raw) > MAX_INPUTS:
        raise ProtocolError(f"'outputs' must be a list of at most {MAX_INPUTS}")
    outputs = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ProtocolError(f"output {index}: must be an object")
        name = _name(item.get("name"), f"output {index}")
        parameters = _parameters(item, f"output '{name}'")
        binary = parameters.get("binary_data")
        if binary is not None and not isinstance(binary, bool):
            raise ProtocolError(f"output '{name}': binary_data must be true or false")
        outputs.append(RequestedOutput(name, binary, class_count(parameters, name)))
    return outputs


def class_count(parameters: dict[str, Any], name: str) -> int:
    count = parameters.get("classification", 0)
    if type(count) is not int or count < 0:
        raise ProtocolError(f"output '{name}': classification must be a non-negative integer")
    return count


def response_to_rest(response: InferResponse) -> tuple[bytes, int | None]:
    """The REST body, and the JSON header's length when binary data follows it."""
    outputs = []
    chunks = []
    for output in response.outputs:
        item: dict[str, Any] = {
            "name": output.name,
            "datatype": output.datatype,
            "shape": list(output.shape),
        }
        if output.binary:
            raw = to_binary(output.data)
            item["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            item["data"] = to_json(output.data)
        outputs.append(item)
    body: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
    }
    if response.id is not None:
        body["id"] = response.id
    body["outputs"] = outputs
    header = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if not chunks:
        return header, None
    return b"".join([header, *chunks]), len(header)


__all__ = ["BYTES", "InferRequest", "InferResponse", "InputTensor", "OutputTensor"]

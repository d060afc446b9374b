"""gRPC messages <-> the protocol's requests and responses (``service.protocol``).

The messages are tritonclient's generated stubs (``tritonclient.grpc.service_pb2``):
no protobuf code is written here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2

from service.errors import MalformedRequest
from service.protocol.messages import (
    MAX_INPUTS,
    MAX_NAME,
    InferRequest,
    InferResponse,
    InputTensor,
    RequestedOutput,
)
from service.protocol.tensors import (
    BYTES,
    MAX_BYTES_ELEMENTS,
    NUMPY_TYPES,
    ProtocolError,
    TensorData,
    check_datatype,
    check_shape,
    from_binary,
    to_binary,
)

# Which field of InferTensorContents holds each datatype.
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    BYTES: "bytes_contents",
}


def version_of(raw: str) -> int | None:
    if raw == "":
        return None
    if not len(raw) <= 18 or not raw.isascii() or not raw.isdigit() or raw[0] == "0":
        raise MalformedRequest(f"version must be a positive whole number, not {raw[:20]!r}")
    return int(raw)


def _from_contents(datatype: str, shape: tuple[int, ...], contents: Any, where: str) -> TensorData:
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise ProtocolError(
            f"{where}: {datatype} cannot be sent in 'contents'; use raw_input_contents"
        )
    values = getattr(contents, field)
    count = int(np.prod(shape))
    if len(values) != count:
        raise ProtocolError(
            f"{where}: {len(values)} elements, but shape {list(shape)} holds {count}"
        )
    if datatype == BYTES:
        if count > MAX_BYTES_ELEMENTS:
            raise ProtocolError(f"{where}: at most {MAX_BYTES_ELEMENTS} BYTES elements")
        return list(values)
    target = NUMPY_TYPES[datatype]
    array = np.asarray(values)  # as the field holds them: int32/64, uint32/64, float, bool
    if target.kind in "iu" and array.size:
        # INT8, INT16 and UINT8, UINT16 travel in 32-bit fields: a value may not fit.
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise ProtocolError(f"{where}: a value is out of range for {datatype}")
    return array.astype(target).reshape(shape)


def request_from_grpc(message: Any) -> InferRequest:
    raw = list(message.raw_input_contents)
    if not 1 <= len(message.inputs) <= MAX_INPUTS:
        raise ProtocolError(f"'inputs' must hold 1 to {MAX_INPUTS} tensors")
    if raw and len(raw) != len(message.inputs):
        raise ProtocolError(
            f"{len(raw)} raw_input_contents for {len(message.inputs)} inputs: give one per input"
        )
    inputs = []
    for index, tensor in enumerate(message.inputs):
        where = f"input '{tensor.name[:64]}'"
        if not 0 < len(tensor.name) <= MAX_NAME:
            raise ProtocolError(f"input {index}: a name of 1 to {MAX_NAME} characters")
        datatype = check_datatype(tensor.datatype, where)
        shape = check_shape(list(tensor.shape), where)
        if raw:
            if tensor.HasField("contents"):
                raise ProtocolError(
                    f"{where}: values in both contents and raw_input_contents; give one"
                )
            data = from_binary(datatype, shape, raw[index], where)
        else:
            data = _from_contents(datatype, shape, tensor.contents, where)
        inputs.append(InputTensor(tensor.name, datatype, shape, data))
    outputs = None
    if message.outputs:
        outputs = []
        for requested in message.outputs:
            count = 0
            if "classification" in requested.parameters:
                parameter = requested.parameters["classification"]
                kind = parameter.WhichOneof("parameter_choice")
                count = getattr(parameter, kind) if kind in ("int64_param", "uint64_param") else -1
                if count < 0:
                    raise ProtocolError(
                        f"output '{requested.name[:64]}': classification must be a "
                        "non-negative integer"
                    )
            outputs.append(RequestedOutput(requested.name, True, count))
    return InferRequest(inputs, outputs, message.id or None, binary_output=True)


def response_to_grpc(response: InferResponse) -> Any:
    """Every output as raw_output_contents (what tritonclient reads first)."""
    message = service_pb2.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
    )
    for output in response.outputs:
        message.outputs.add(name=output.name, datatype=output.datatype, shape=list(output.shape))
        message.raw_output_contents.append(to_binary(output.data))
    return message


def metadata_message(document: dict[str, Any]) -> Any:
    return service_pb2.ModelMetadataResponse(
        name=document["name"],
        versions=document["versions"],
        platform=document["platform"],
        inputs=[_tensor_metadata(t) for t in document["inputs"]],
        outputs=[_tensor_metadata(t) for t in document["outputs"]],
    )


def _tensor_metadata(tensor: dict[str, Any]) -> Any:
    return service_pb2.ModelMetadataResponse.TensorMetadata(
        name=tensor["name"], datatype=tensor["datatype"], shape=tensor["shape"]
    )


def config_message(document: dict[str, Any]) -> Any:
    config = json_format.ParseDict(document, model_config_pb2.ModelConfig())
    return service_pb2.ModelConfigResponse(config=config)

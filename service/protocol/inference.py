"""Running a protocol request on the served models: the same runtime, batchers and
preprocessing as the friendly routes.

The model's kind declares its tensors (``ModelKind.tensor_inputs``); every input is
checked against them (name, datatype, shape), then the kind turns the tensors into
rows: model input that goes straight to the version's batcher, or raw rows (encoded
images) that go through the preprocessing stage as ``/predict/<name>`` uploads do.
"""

from __future__ import annotations

import numpy as np

from service.models.kinds.tensors import TensorDecl
from service.protocol.classification import top_classes
from service.protocol.messages import InferRequest, InferResponse, OutputTensor
from service.protocol.tensors import BYTES, NUMPY_TYPES, ProtocolError, TensorData
from service.serving.runtime import ServedModel, ServingRuntime

# A FP32 model input also takes these: they convert exactly or nearly (FP64).
FLOAT_SOURCES = frozenset(
    {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16"}
)


def check_input(decl: TensorDecl, datatype: str, shape: tuple[int, ...]) -> None:
    where = f"input '{decl.name}'"
    if datatype != decl.datatype and not (decl.datatype == "FP32" and datatype in FLOAT_SOURCES):
        raise ProtocolError(f"{where}: datatype {datatype}, the model takes {decl.datatype}")
    if not decl.accepts_shape(shape):
        shapes = " or ".join(str(list(s)) for s in (decl.shape, *decl.alternative_shapes))
        raise ProtocolError(f"{where}: shape {list(shape)}, the model takes {shapes}")


async def infer(
    runtime: ServingRuntime, model: str, version: int | None, request: InferRequest
) -> InferResponse:
    served = runtime.lookup(model, version)
    kind = served.model.kind
    declared = {decl.name: decl for decl in kind.tensor_inputs()}
    tensors: dict[str, TensorData] = {}
    for tensor in request.inputs:
        decl = declared.get(tensor.name)
        if decl is None:
            known = ", ".join(sorted(declared))
            raise ProtocolError(f"unknown input '{tensor.name}' (the model takes {known})")
        if tensor.name in tensors:
            raise ProtocolError(f"input '{tensor.name}' given twice")
        check_input(decl, tensor.datatype, tensor.shape)
        tensors[tensor.name] = tensor.data
    rows = kind.rows_from_tensors(tensors)
    prediction = await runtime.predict(
        model, rows.rows, served.model.number, prepared=rows.prepared
    )
    if not np.isfinite(prediction.answers).all():
        # Finite input far outside what the model was trained on (3e38 pixels) can
        # overflow it: the answer would be NaN, which is no answer.
        raise ProtocolError(
            "the model's output is not finite for this input: its values are far "
            "outside the model's range"
        )
    return InferResponse(
        model_name=model,
        model_version=str(prediction.version),
        outputs=_outputs(served, request, prediction.answers),
        id=request.id,
    )


def _outputs(served: ServedModel, request: InferRequest, answers: np.ndarray) -> list[OutputTensor]:
    kind = served.model.kind
    values = kind.output_tensors(answers)
    wanted = request.outputs
    if wanted is None:
        return [
            OutputTensor(name, _datatype(a), a.shape, a, request.binary_output)
            for name, a in values.items()
        ]
    outputs = []
    for requested in wanted:
        array = values.get(requested.name)
        if array is None:
            known = ", ".join(sorted(values))
            raise ProtocolError(f"unknown output '{requested.name}' (the model gives {known})")
        binary = request.binary_output if requested.binary is None else requested.binary
        if requested.class_count:
            scores, labels = kind.class_scores(array)
            classes = top_classes(scores, labels, requested.class_count)
            shape = (scores.shape[0], min(requested.class_count, scores.shape[1]))
            outputs.append(OutputTensor(requested.name, BYTES, shape, classes, binary))
        else:
            outputs.append(
                OutputTensor(requested.name, _datatype(array), array.shape, array, binary)
            )
    return outputs


def _datatype(array: np.ndarray) -> str:
    return next(name for name, dtype in NUMPY_TYPES.items() if array.dtype == dtype)

"""Server metadata, model metadata and Triton's model configuration, as plain dicts.

REST answers them as JSON; gRPC builds its messages from the same dicts.
"""

from __future__ import annotations

from typing import Any

from service import __version__
from service.models.kinds.tensors import TensorDecl
from service.serving.runtime import ServedModel, ServingRuntime

SERVER_NAME = "digitpass"
# Only what is implemented (Triton's names for them).
EXTENSIONS = ("binary_tensor_data", "classification", "model_configuration")
PLATFORMS = {
    "onnx": ("onnxruntime_onnx", "onnxruntime"),
    "torchscript": ("pytorch_libtorch", "pytorch"),
}


def server_metadata() -> dict[str, Any]:
    return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}


def _tensor(decl: TensorDecl) -> dict[str, Any]:
    item: dict[str, Any] = {"name": decl.name, "datatype": decl.datatype, "shape": list(decl.shape)}
    parameters = dict(decl.parameters)
    if decl.alternative_shapes:
        parameters["alternative_shapes"] = [list(s) for s in decl.alternative_shapes]
    if decl.description:
        parameters["description"] = decl.description
    if parameters:
        item["parameters"] = parameters
    return item


def model_metadata(runtime: ServingRuntime, served: ServedModel) -> dict[str, Any]:
    """The V2 model metadata; each tensor's ``parameters`` says what it holds."""
    kind = served.model.kind
    name = served.model.name
    return {
        "name": name,
        "versions": [str(v) for v in sorted(runtime.versions.get(name, ()))],
        "platform": PLATFORMS[served.model.backend.name][0],
        "inputs": [_tensor(d) for d in kind.tensor_inputs()],
        "outputs": [_tensor(d) for d in kind.tensor_outputs()],
    }


def _config_tensor(decl: TensorDecl) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": decl.name,
        "data_type": f"TYPE_{'STRING' if decl.datatype == 'BYTES' else decl.datatype}",
        "dims": list(decl.shape[1:]),  # without the batch axis (max_batch_size > 0)
    }
    return item


def model_config(runtime: ServingRuntime, served: ServedModel) -> dict[str, Any]:
    """Triton's model configuration (its protobuf's field names), as far as it applies."""
    model = served.model
    kind = model.kind
    settings = runtime.settings
    platform, backend = PLATFORMS[model.backend.name]
    return {
        "name": model.name,
        "platform": platform,
        "backend": backend,
        "version_policy": runtime.registry.policy(model.name).to_config(),
        "max_batch_size": settings.max_batch_size,
        "input": [_config_tensor(d) for d in kind.tensor_inputs()],
        "output": [_config_tensor(d) for d in kind.tensor_outputs()],
        "dynamic_batching": {
            "max_queue_delay_microseconds": round(settings.max_batch_delay_ms * 1000),
            "default_queue_policy": {
                "max_queue_size": settings.max_queue,
                "default_timeout_microseconds": round(settings.request_timeout_s * 1_000_000),
            },
        },
        "instance_group": [
            {"count": 1, "kind": "KIND_GPU" if model.backend.device == "cuda" else "KIND_CPU"}
        ],
    }

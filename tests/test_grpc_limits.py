"""gRPC under the limits REST has: a clear status (never INTERNAL) for values that do
not fit their datatype."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.server import ServerHandle, run_server

pytestmark = pytest.mark.e2e

Tensor = service_pb2.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    with run_server() as handle:
        yield handle


@pytest.fixture(scope="module")
def stub(server: ServerHandle) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_url) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def hours_request(**tensor: object) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="pass")
    request.inputs.append(Tensor(name="hours", shape=[1, 1], **tensor))
    return request


@pytest.mark.parametrize(
    ("datatype", "contents"),
    [
        ("INT8", {"int_contents": [300]}),
        ("INT16", {"int_contents": [-70_000]}),
        ("UINT8", {"uint_contents": [256]}),
        ("UINT16", {"uint_contents": [70_000]}),
    ],
)
def test_contents_out_of_range_for_the_datatype_are_invalid_argument(stub, datatype, contents):
    request = hours_request(datatype=datatype, contents=service_pb2.InferTensorContents(**contents))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"out of range for {datatype}" in caught.value.details()
    fits = hours_request(
        datatype=datatype,
        contents=service_pb2.InferTensorContents(**{name: [4] for name in contents}),
    )
    assert stub.ModelInfer(fits, timeout=10).outputs[0].name == "probability"

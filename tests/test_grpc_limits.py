"""gRPC under the limits REST has: one cap on requests in progress for both front ends,
and a clear status (never INTERNAL) for values that do not fit their datatype."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from tests.server import ServerHandle, run_server
from tests.test_e2e_service import metric

pytestmark = pytest.mark.e2e

Tensor = service_pb2.ModelInferRequest.InferInputTensor


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    # One request in progress at most; a body may arrive as slowly as it likes.
    env = {"DIGITPASS_MAX_IN_FLIGHT": "1", "DIGITPASS_MIN_BODY_RATE": "0"}
    with run_server(env) as handle:
        yield handle


@pytest.fixture(scope="module")
def stub(server: ServerHandle) -> Iterator[service_pb2_grpc.GRPCInferenceServiceStub]:
    with grpc.insecure_channel(server.grpc_url) as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def hours_request(**tensor: object) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="pass")
    request.inputs.append(Tensor(name="hours", shape=[1, 1], **tensor))
    return request


def hours_raw(value: float) -> service_pb2.ModelInferRequest:
    request = hours_request(datatype="FP32")
    request.raw_input_contents.append(struct.pack("<f", value))
    return request


def infer_code(stub: service_pb2_grpc.GRPCInferenceServiceStub) -> grpc.StatusCode:
    try:
        stub.ModelInfer(hours_raw(4.0), timeout=10)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_rest_and_grpc_share_one_cap_on_requests_in_progress(server, stub):
    host, port = server.url.removeprefix("http://").split(":")
    body = b'{"hours": [4]}'
    with socket.create_connection((host, int(port)), timeout=10) as held:
        # A REST request in progress: its headers and the first byte of its body.
        held.sendall(
            b"POST /predict/pass HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:1])
        )
        deadline = time.monotonic() + 10
        code = infer_code(stub)
        while code == grpc.StatusCode.OK and time.monotonic() < deadline:
            code = infer_code(stub)  # until the server has taken the REST request in
        assert code == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(hours_raw(4.0), timeout=10)
        assert "requests in progress" in refused.value.details()
        # Health stays visible past the cap.
        assert stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
        held.sendall(body[1:])
        answer = held.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer
    assert infer_code(stub) == grpc.StatusCode.OK  # the slot is free again
    text = server_metrics(server)
    assert metric(text, "digitpass_requests_refused_total", reason="work_cap") >= 1


def server_metrics(server: ServerHandle) -> str:
    import httpx

    return httpx.get(f"{server.url}/metrics", timeout=10).text


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


@pytest.mark.slow
def test_on_sigterm_grpc_and_readiness_go_unready_at_once_while_work_drains():
    """Readiness goes at the signal, on gRPC as on HTTP, while the drain still serves."""
    import signal

    env = {"DIGITPASS_MIN_BODY_RATE": "0", "DIGITPASS_BODY_TIMEOUT_S": "60"}
    with run_server(env) as handle:
        host, port = handle.url.removeprefix("http://").split(":")
        body = b'{"hours": [4]}'
        with (
            grpc.insecure_channel(handle.grpc_url) as channel,
            socket.create_connection((host, int(port)), timeout=30) as held,
        ):
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
            held.sendall(  # in progress: the drain waits for it
                b"POST /predict/pass HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:1])
            )
            handle.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 5
            ready = True
            while ready and time.monotonic() < deadline:
                ready = stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=10).ready
            assert not ready  # while the held request is still in progress
            # Draining: unready, but still serving (as HTTP is) until nothing is in flight.
            reply = stub.ModelInfer(hours_raw(4.0), timeout=10)
            assert reply.outputs[0].name == "probability"
            held.sendall(body[1:])
            assert held.recv(4096).startswith(b"HTTP/1.1 200")  # the drain finished it
        assert handle.process.wait(30) == 0


@pytest.mark.slow
def test_the_grpc_port_has_the_connection_cap_and_the_handshake_timeout():
    """Half-open connections to the gRPC port are capped and dropped as on HTTP's."""
    env = {"DIGITPASS_MAX_CONNECTIONS": "8", "DIGITPASS_HEADER_TIMEOUT_S": "1"}
    with run_server(env) as handle:
        host, port = handle.grpc_url.split(":")
        sockets = [socket.create_connection((host, int(port)), timeout=10) for _ in range(12)]
        try:
            for held in sockets:
                held.settimeout(0.05)
            closed: set[int] = set()
            deadline = time.monotonic() + 5
            while len(closed) < 4 and time.monotonic() < deadline:
                for index, held in enumerate(sockets):
                    if index not in closed and _closed_by_server(held):
                        closed.add(index)
            assert len(closed) >= 4  # the cap of 8 closed the rest at once
            deadline = time.monotonic() + 10
            while len(closed) < len(sockets) and time.monotonic() < deadline:
                for index, held in enumerate(sockets):
                    if index not in closed and _closed_by_server(held):
                        closed.add(index)
            assert len(closed) == len(sockets)  # the handshake timeout dropped every one
        finally:
            for held in sockets:
                held.close()
        with grpc.insecure_channel(handle.grpc_url) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(service_pb2.ServerLiveRequest(), timeout=10).live


def _closed_by_server(held: socket.socket) -> bool:
    """Whether the server has closed ``held`` (what it sent before, such as its HTTP/2
    settings or a GOAWAY, is read and dropped)."""
    try:
        while data := held.recv(4096):
            del data
    except (TimeoutError, BlockingIOError):
        return False
    except OSError:
        return True
    return True


def test_a_huge_name_is_a_clear_error_not_a_metadata_overflow(stub):
    unknown = service_pb2.ModelInferRequest(model_name="x" * 1_000_000)
    unknown.inputs.append(Tensor(name="hours", datatype="FP32", shape=[1, 1]))
    unknown.raw_input_contents.append(struct.pack("<f", 4.0))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(unknown, timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("unknown model 'xxx")
    assert len(caught.value.details()) < 2000
    named = service_pb2.ModelInferRequest(model_name="pass")
    named.inputs.append(Tensor(name="h" * 10_000, datatype="FP32", shape=[1, 1]))
    named.raw_input_contents.append(struct.pack("<f", 4.0))
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(named, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "a name of 1 to 256 characters" in caught.value.details()


def test_a_message_that_does_not_parse_is_invalid_argument_in_plain_words(server):
    with grpc.insecure_channel(server.grpc_url) as channel:
        raw = channel.unary_unary(
            "/inference.GRPCInferenceService/ModelInfer",
            request_serializer=lambda data: data,
            response_deserializer=lambda data: data,
        )
        with pytest.raises(grpc.RpcError) as caught:
            raw(b"\xff" * 16, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "the ModelInfer request message does not parse"


def test_methods_not_implemented_say_so_plainly_and_log_nothing(server, stub):
    calls = {
        "ModelStatistics": lambda: stub.ModelStatistics(
            service_pb2.ModelStatisticsRequest(name="pass"), timeout=10
        ),
        "RepositoryIndex": lambda: stub.RepositoryIndex(
            service_pb2.RepositoryIndexRequest(), timeout=10
        ),
        "RepositoryModelLoad": lambda: stub.RepositoryModelLoad(
            service_pb2.RepositoryModelLoadRequest(model_name="pass"), timeout=10
        ),
        "ModelStreamInfer": lambda: list(stub.ModelStreamInfer(iter([hours_raw(4.0)]), timeout=10)),
    }
    for name, call in calls.items():
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED, name
        assert caught.value.details() == f"{name} is not implemented here"
    log = server.log()
    assert "Traceback" not in log and "NotImplementedError" not in log
    assert infer_code(stub) == grpc.StatusCode.OK  # the implemented ones still answer


def test_contents_and_raw_contents_together_are_refused_as_rest_refuses_them(stub):
    request = hours_raw(4.0)
    request.inputs[0].contents.fp32_contents.append(4.0)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "both contents and raw_input_contents" in caught.value.details()


@pytest.mark.parametrize(
    "parameter",
    [
        service_pb2.InferParameter(string_param="2"),
        service_pb2.InferParameter(bool_param=True),
        service_pb2.InferParameter(double_param=2.0),
        service_pb2.InferParameter(int64_param=-1),
    ],
)
def test_a_classification_count_that_is_not_a_whole_number_is_refused(stub, parameter):
    request = hours_raw(4.0)
    output = request.outputs.add(name="probability")
    output.parameters["classification"].CopyFrom(parameter)
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "classification must be a non-negative integer" in caught.value.details()


def test_a_classification_count_as_int64_or_uint64_is_the_top_k(stub):
    for parameter in (
        service_pb2.InferParameter(int64_param=2),
        service_pb2.InferParameter(uint64_param=2),
    ):
        request = hours_raw(4.0)
        output = request.outputs.add(name="probability")
        output.parameters["classification"].CopyFrom(parameter)
        reply = stub.ModelInfer(request, timeout=10)
        assert reply.outputs[0].datatype == "BYTES" and list(reply.outputs[0].shape) == [1, 2]

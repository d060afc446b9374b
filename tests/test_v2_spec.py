"""The REST protocol checked against the spec itself, in plain HTTP: the JSON examples
of ``kserve/open-inference-protocol`` (specification/protocol/inference_rest.md),
with the example's tensors renamed to a served model's, and the error object."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.conftest import MODELS_DIR


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("spec") / "models"
    for name in ("pass", "points", "digit"):
        shutil.copytree(MODELS_DIR / name / "1", root / name / "1")
    settings = Settings(model_repository=root, reload_interval_s=0, grpc_port=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_spec_inference_request_example(client):
    """The spec's example: ``"id": "42"``, two inputs, one requested output; the
    response repeats the id and gives the output's name, shape, datatype and data."""
    request = {
        "id": "42",
        "inputs": [{"name": "hours", "shape": [2, 1], "datatype": "FP32", "data": [1, 7]}],
        "outputs": [{"name": "probability"}],
    }
    reply = client.post("/v2/models/pass/infer", json=request)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    body = reply.json()
    assert body["id"] == "42"
    assert (body["model_name"], body["model_version"]) == ("pass", "1")
    (output,) = body["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == ("probability", [2, 1], "FP32")
    assert output["data"][0] < 0.5 < output["data"][1]


def test_the_spec_example_as_written_is_refused_with_the_error_object(client):
    """The spec's example verbatim: its model takes input0 and input1 (and its BOOL
    input has 1 value for shape [3]); ours does not: 400 and ``{"error": ...}``."""
    request = {
        "id": "42",
        "inputs": [
            {"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]},
            {"name": "input1", "shape": [3], "datatype": "BOOL", "data": [True]},
        ],
        "outputs": [{"name": "output0"}],
    }
    reply = client.post("/v2/models/pass/infer", json=request)
    assert reply.status_code == 400
    assert set(reply.json()) == {"error"}
    assert "input1" in reply.json()["error"]
    request["inputs"][1]["data"] = [True, False, True]
    reply = client.post("/v2/models/pass/infer", json=request)
    assert reply.status_code == 400 and "unknown input 'input0'" in reply.json()["error"]


@pytest.mark.parametrize("data", [[[1], [4]], [1, 4]], ids=["natural (nested)", "flattened"])
def test_tensor_data_natural_or_flattened_gives_the_same_answer(client, data):
    request = {"inputs": [{"name": "hours", "shape": [2, 1], "datatype": "FP32", "data": data}]}
    reply = client.post("/v2/models/points/infer", json=request)
    assert reply.status_code == 200
    assert reply.json()["outputs"][0]["data"] == pytest.approx([2.0, 8.0], abs=1e-4)


def test_fp64_int32_and_int64_hours_are_taken_too(client):
    for datatype, data in (("FP64", [4.0]), ("INT32", [4]), ("INT64", [4])):
        request = {
            "inputs": [{"name": "hours", "shape": [1, 1], "datatype": datatype, "data": data}]
        }
        reply = client.post("/v2/models/points/infer", json=request)
        assert reply.status_code == 200, reply.text
        assert reply.json()["outputs"][0]["data"] == pytest.approx([8.0], abs=1e-4)


def test_server_and_model_metadata_follow_the_spec_objects(client):
    server = client.get("/v2").json()
    assert set(server) == {"name", "version", "extensions"}
    model = client.get("/v2/models/pass").json()
    assert set(model) == {"name", "versions", "platform", "inputs", "outputs"}
    assert model["versions"] == ["1"]
    for tensor in (*model["inputs"], *model["outputs"]):
        assert {"name", "datatype", "shape"} <= set(tensor)
        assert tensor["shape"][0] == -1  # a variable dimension
    assert client.get("/v2/models/pass/versions/1").json()["name"] == "pass"


def test_health_and_readiness_are_the_status_code_alone(client):
    for path in (
        "/v2/health/live",
        "/v2/health/ready",
        "/v2/models/pass/ready",
        "/v2/models/pass/versions/1/ready",
    ):
        reply = client.get(path)
        assert (reply.status_code, reply.content) == (200, b"")
    assert client.get("/v2/models/pass/versions/2/ready").status_code == 404
    assert client.get("/v2/models/nope/ready").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "fragment"),
    [
        ("GET", "/v2/models/nope", None, 404, "unknown model 'nope'"),
        ("GET", "/v2/models/pass/versions/9/config", None, 404, "no version 9"),
        ("GET", "/v2/models/pass/versions/x", None, 400, "positive whole number"),
        ("GET", "/v2/models/pass/stats", None, 404, "no such endpoint"),
        ("GET", "/v2/models/pass/infer", None, 405, "not allowed"),
        ("POST", "/v2/models/pass/infer", b"{", 400, "invalid JSON"),
        ("POST", "/v2/models/pass/infer", b"", 400, "body is empty"),
        ("POST", "/v2/models/pass/infer", b"[" * 64 + b"]" * 64, 400, "nested 64 deep, at most 32"),
        (
            "POST",
            "/v2/models/pass/infer",
            json.dumps(
                {"inputs": [{"name": "hours", "shape": [1, 1], "datatype": "FP32", "data": [-1]}]}
            ).encode(),
            400,
            "from 0 to",
        ),
        (
            "POST",
            "/v2/models/pass/infer",
            json.dumps(
                {"inputs": [{"name": "hours", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
            ).encode(),
            400,
            "shape [1, 2]",
        ),
        (
            "POST",
            "/v2/models/pass/infer",
            json.dumps(
                {
                    "inputs": [{"name": "hours", "shape": [1, 1], "datatype": "FP32", "data": [1]}],
                    "outputs": [{"name": "x"}],
                }
            ).encode(),
            400,
            "unknown output 'x'",
        ),
        # The detail quotes the client's name, a lone surrogate here: still a JSON 400.
        (
            "POST",
            "/v2/models/pass/infer",
            b'{"inputs": [{"name": "hours", "shape": [1, 1], "datatype": "FP32", "data": [1]}],'
            b' "outputs": [{"name": "\\ud800"}]}',
            400,
            "unknown output '?'",
        ),
        (
            "POST",
            "/v2/models/digit/infer",
            b'{"inputs": [{"name": "\\udfff", "shape": [1], "datatype": "FP32", "data": [1]}]}',
            400,
            "input '?'",
        ),
        # A number past Python's 4300-digit limit for int(): refused, not a 500.
        (
            "POST",
            "/v2/models/pass/infer",
            b'{"inputs": [{"name": "hours", "shape": [1, 1], "datatype": "INT64", "data": ['
            + b"1" * 5000
            + b"]}]}",
            400,
            "too many digits",
        ),
    ],
)
def test_errors_are_the_error_object_with_the_right_status(
    client, method, path, body, status, fragment
):
    reply = client.request(method, path, content=body)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error"}
    assert fragment in reply.json()["error"]


def test_v2_requests_are_counted_by_route_template(client):
    client.get("/v2/models/pass/versions/1")
    metrics = client.get("/metrics").text
    assert 'route="/v2/models/{model}/versions/{version}"' in metrics
    assert 'route="/v2/models/{model}/infer"' in metrics


@pytest.mark.parametrize("declared", ["x", "-1", "\u00b2", "99999", "9" * 5000])
def test_a_bad_inference_header_content_length_is_a_400(client, declared):
    reply = client.post(
        "/v2/models/pass/infer",
        content=b"{}",
        headers={"Inference-Header-Content-Length": declared.encode("latin-1")},
    )
    assert reply.status_code == 400
    assert "Inference-Header-Content-Length" in reply.json()["error"]


def test_a_compressed_body_is_refused_with_a_400(client):
    reply = client.post("/v2/models/pass/infer", content=b"x", headers={"Content-Encoding": "gzip"})
    assert reply.status_code == 400 and "Content-Encoding" in reply.json()["error"]

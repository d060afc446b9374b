"""The Open Inference Protocol with the standard clients, ``tritonclient.http`` and
``tritonclient.grpc``, against a real server on free ports, with no digitpass-specific
code on the client side."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image
from tritonclient.utils import InferenceServerException

from tests.conftest import MODELS_DIR, load_mnist_test_set, png_bytes
from tests.server import ServerHandle, run_server
from tests.test_e2e_service import metric, post_digits, wait_for_queued

pytestmark = pytest.mark.e2e

MEAN, STD = 0.1307, 0.3081
# What the preprocessing does last: each of the 256 grey levels to its normalised value.
LEVELS = ((np.arange(256, dtype=np.float64) / 255.0 - MEAN) / STD).astype(np.float32)


def normalised(images: np.ndarray) -> np.ndarray:
    """uint8 [n, 28, 28] -> the digit model's FP32 input [n, 784]."""
    return LEVELS[images.reshape(len(images), 784)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """digit 1 and 2 side by side (``latest: 2``), pass and points."""
    root = tmp_path_factory.mktemp("v2") / "models"
    for name, versions in (("digit", (1, 2)), ("pass", (1,)), ("points", (1,))):
        for version in versions:
            shutil.copytree(MODELS_DIR / name / str(version), root / name / str(version))
    (root / "digit" / "config.json").write_text(
        json.dumps({"version_policy": {"latest": {"num_versions": 2}}})
    )
    env = {
        "DIGITPASS_MODEL_REPOSITORY": str(root),
        "DIGITPASS_RELOAD_INTERVAL_S": "0",
        # One client process sends the 64 requests one after another: a short wait
        # lets the batcher gather them (Triton's max_queue_delay).
        "DIGITPASS_MAX_BATCH_DELAY_MS": "10",
    }
    with run_server(env) as handle:
        yield handle


@pytest.fixture(scope="module")
def http(server: ServerHandle) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(server.url.removeprefix("http://"), concurrency=64)
    yield client
    client.close()


@pytest.fixture(scope="module")
def rpc(server: ServerHandle) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_mnist_test_set(mnist_dir)
    return images[:1000], labels[:1000]


def friendly(server: ServerHandle, png: bytes, version: int | None = None) -> dict:
    query = {"version": version} if version else {}
    reply = httpx.post(
        f"{server.url}/predict/digit",
        params=query,
        files={"image": ("d.png", png, "image/png")},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


@pytest.mark.parametrize("client_name", ["http", "rpc"])
def test_health_metadata_and_config(client_name, request):
    client = request.getfixturevalue(client_name)
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digit") and client.is_model_ready("digit", "1")
    assert not client.is_model_ready("digit", "3") and not client.is_model_ready("nope")
    as_json = client_name == "http"
    server = client.get_server_metadata(**({} if as_json else {"as_json": True}))
    assert server["name"] == "digitpass"
    assert sorted(server["extensions"]) == [
        "binary_tensor_data",
        "classification",
        "model_configuration",
    ]
    meta = client.get_model_metadata("digit", **({} if as_json else {"as_json": True}))
    assert meta["versions"] == ["1", "2"] and meta["platform"] == "onnxruntime_onnx"
    inputs = {t["name"]: (t["datatype"], [int(d) for d in t["shape"]]) for t in meta["inputs"]}
    assert inputs == {"image": ("FP32", [-1, 784]), "image_bytes": ("BYTES", [-1, 1])}
    outputs = [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta["outputs"]]
    assert outputs == [("probabilities", "FP32", [-1, 10])]
    if as_json:  # REST shows what each tensor holds
        preprocessing = meta["inputs"][0]["parameters"]["preprocessing"]
        assert (preprocessing["mean"], preprocessing["std"]) == (MEAN, STD)
    config = client.get_model_config("pass", **({} if as_json else {"as_json": True}))
    config = config if as_json else config["config"]
    assert config["name"] == "pass" and config["backend"] == "onnxruntime"
    assert int(config["max_batch_size"]) == 64
    assert config["input"][0]["name"] == "hours" and config["input"][0]["data_type"] == "TYPE_FP32"
    assert [int(d) for d in config["input"][0]["dims"]] == [1]
    assert "dynamic_batching" in config
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    digit = client.get_model_config("digit", **({} if as_json else {"as_json": True}))
    digit = digit if as_json else digit["config"]
    assert digit["version_policy"] == {"latest": {"num_versions": 2}}


def test_http_infer_with_binary_and_json_data_and_bytes_images(server, http, mnist):
    images, labels = mnist
    pngs = [png_bytes(images[i]) for i in range(4)]
    expected = [friendly(server, png)["probabilities"] for png in pngs]
    as_bytes = httpclient.InferInput("image_bytes", [4, 1], "BYTES")
    as_bytes.set_data_from_numpy(np.array(pngs, dtype=np.object_).reshape(4, 1))
    result = http.infer("digit", [as_bytes])
    assert result.get_response()["model_version"] == "2"
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
    for binary in (True, False):
        tensor = httpclient.InferInput("image", [4, 1, 28, 28], "FP32")
        tensor.set_data_from_numpy(normalised(images[:4]).reshape(4, 1, 28, 28), binary_data=binary)
        wanted = httpclient.InferRequestedOutput("probabilities", binary_data=binary)
        result = http.infer("digit", [tensor], outputs=[wanted])
        described = result.get_output("probabilities")
        assert ("binary_data_size" in described.get("parameters", {})) is binary
        assert result.as_numpy("probabilities").argmax(axis=1).tolist() == labels[:4].tolist()


def test_grpc_infer_with_raw_contents_and_bytes_images(server, rpc, mnist):
    images, labels = mnist
    pngs = [png_bytes(images[i]) for i in range(4)]
    expected = [friendly(server, png)["probabilities"] for png in pngs]
    as_bytes = grpcclient.InferInput("image_bytes", [4], "BYTES")
    as_bytes.set_data_from_numpy(np.array(pngs, dtype=np.object_))
    result = rpc.infer("digit", [as_bytes])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-6)
    tensor = grpcclient.InferInput("image", [4, 784], "FP32")
    tensor.set_data_from_numpy(normalised(images[:4]))
    result = rpc.infer("digit", [tensor], request_id="r-1")
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("digit", "2", "r-1")
    assert result.as_numpy("probabilities").argmax(axis=1).tolist() == labels[:4].tolist()


@pytest.mark.parametrize("client_name", ["http", "rpc"])
def test_versioned_infer_reaches_the_version_asked_for(server, client_name, request, mnist):
    module = httpclient if client_name == "http" else grpcclient
    client = request.getfixturevalue(client_name)
    png = png_bytes(mnist[0][8])
    answers = {}
    for version in ("1", "2", ""):
        images = module.InferInput("image_bytes", [1], "BYTES")
        images.set_data_from_numpy(np.array([png], dtype=np.object_))
        result = client.infer("digit", [images], model_version=version)
        response = result.get_response()
        got = response["model_version"] if client_name == "http" else response.model_version
        assert got == (version or "2")
        answers[version] = result.as_numpy("probabilities")[0]
    for version in (1, 2):
        np.testing.assert_allclose(
            answers[str(version)], friendly(server, png, version)["probabilities"], atol=1e-6
        )
    assert not np.allclose(answers["1"], answers["2"], atol=1e-6)  # two different models
    np.testing.assert_array_equal(answers[""], answers["2"])


@pytest.mark.parametrize("client_name", ["http", "rpc"])
def test_pass_and_points_take_fp32_hours_and_pass_classifies(server, client_name, request):
    module = httpclient if client_name == "http" else grpcclient
    client = request.getfixturevalue(client_name)
    hours = np.array([[1.0], [4.0], [7.0]], dtype=np.float32)
    expected = httpx.post(f"{server.url}/predict/pass", json={"hours": [1, 4, 7]}).json()
    tensor = module.InferInput("hours", [3, 1], "FP32")
    tensor.set_data_from_numpy(hours)
    result = client.infer("pass", [tensor])
    probability = result.as_numpy("probability")
    assert probability.shape == (3, 1)
    np.testing.assert_allclose(
        probability[:, 0], [p["probability"] for p in expected["predictions"]], atol=1e-6
    )
    top = module.InferRequestedOutput("probability", class_count=1)
    classes = client.infer("pass", [tensor], outputs=[top]).as_numpy("probability")
    assert [c[0].decode().split(":")[2] for c in classes] == ["fail", "pass", "pass"]
    points = client.infer("points", [tensor]).as_numpy("points")
    np.testing.assert_allclose(points[:, 0], [2.0, 8.0, 14.0], atol=1e-4)


def test_classification_returns_the_top_k_digits_with_labels(http, rpc, mnist):
    images, labels = mnist
    for module, client in ((httpclient, http), (grpcclient, rpc)):
        tensor = module.InferInput("image", [3, 784], "FP32")
        tensor.set_data_from_numpy(normalised(images[:3]))
        wanted = module.InferRequestedOutput("probabilities", class_count=3)
        classes = client.infer("digit", [tensor], outputs=[wanted]).as_numpy("probabilities")
        assert classes.shape == (3, 3)
        for row, label in zip(classes, labels[:3], strict=True):
            score, index, name = row[0].decode().split(":")
            assert int(index) == label and name == str(label) and float(score) > 0.9
            scores = [float(c.decode().split(":")[0]) for c in row]
            assert scores == sorted(scores, reverse=True)


def batch_rows_and_calls(server: ServerHandle) -> tuple[float, float]:
    text = httpx.get(f"{server.url}/metrics").text
    rows = metric(text, "digitpass_inference_batch_size_sum", model="digit")
    calls = metric(text, "digitpass_inference_batch_size_count", model="digit")
    return rows, calls


@pytest.mark.slow
@pytest.mark.parametrize("client_name", ["http", "rpc"])
def test_async_infer_with_64_in_flight_answers_each_in_place_and_batches(
    server, client_name, request, mnist
):
    images, _ = mnist
    client = request.getfixturevalue(client_name)
    module = httpclient if client_name == "http" else grpcclient
    inputs = normalised(images[:64])
    whole = module.InferInput("image", [64, 784], "FP32")
    whole.set_data_from_numpy(inputs)
    reference = client.infer("digit", [whole]).as_numpy("probabilities")
    rows_before, calls_before = batch_rows_and_calls(server)
    results: list[object] = [None] * 64

    def keep(index: int):
        def callback(result, error):
            results[index] = error if error is not None else result

        return callback

    pending = []
    for i in range(64):
        one = module.InferInput("image", [1, 784], "FP32")
        one.set_data_from_numpy(inputs[i : i + 1])
        if client_name == "http":
            pending.append(client.async_infer("digit", [one]))
        else:
            client.async_infer("digit", [one], callback=keep(i))
    if client_name == "http":
        results = [p.get_result(timeout=60) for p in pending]
    else:
        wait_for(lambda: all(r is not None for r in results), 60)
    for i, result in enumerate(results):
        assert not isinstance(result, Exception), result
        np.testing.assert_allclose(result.as_numpy("probabilities")[0], reference[i], atol=1e-6)
    rows_after, calls_after = batch_rows_and_calls(server)
    assert rows_after - rows_before == 64
    assert calls_after - calls_before < 64  # some requests shared an inference call


def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)  # polling interval, not synchronisation


def test_errors_are_clear_http(server, http):
    tensor = httpclient.InferInput("image", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    cases = [
        (lambda: http.infer("nope", [tensor]), "404", "unknown model 'nope'"),
        (lambda: http.infer("digit", [tensor], model_version="7"), "404", "no version 7"),
        (lambda: http.infer("digit", [tensor]), "400", "shape [1, 3]"),
        (lambda: http.get_model_metadata("nope"), "404", "unknown model"),
    ]
    wrong_type = httpclient.InferInput("image", [1, 784], "BYTES")
    wrong_type.set_data_from_numpy(np.array([[b"x"] * 784], dtype=np.object_))
    cases.append((lambda: http.infer("digit", [wrong_type]), "400", "datatype BYTES"))
    not_image = httpclient.InferInput("image_bytes", [1], "BYTES")
    not_image.set_data_from_numpy(np.array([b"not an image"], dtype=np.object_))
    cases.append((lambda: http.infer("digit", [not_image]), "400", ""))
    unknown = httpclient.InferInput("pixels", [1, 784], "FP32")
    unknown.set_data_from_numpy(np.zeros((1, 784), np.float32))
    cases.append((lambda: http.infer("digit", [unknown]), "400", "unknown input 'pixels'"))
    for call, status, fragment in cases:
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == status, caught.value
        assert fragment in caught.value.message()


def test_errors_are_clear_grpc(rpc):
    tensor = grpcclient.InferInput("image", [1, 3], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 3), np.float32))
    hours = grpcclient.InferInput("hours", [1, 1], "FP32")
    hours.set_data_from_numpy(np.array([[1e9]], np.float32))
    cases = [
        (lambda: rpc.infer("nope", [tensor]), grpc.StatusCode.NOT_FOUND, "unknown model"),
        (
            lambda: rpc.infer("digit", [tensor], model_version="7"),
            grpc.StatusCode.NOT_FOUND,
            "no version 7",
        ),
        (lambda: rpc.infer("digit", [tensor]), grpc.StatusCode.INVALID_ARGUMENT, "shape [1, 3]"),
        (lambda: rpc.infer("pass", [hours]), grpc.StatusCode.INVALID_ARGUMENT, "from 0 to"),
        (lambda: rpc.get_model_metadata("nope"), grpc.StatusCode.NOT_FOUND, "unknown model"),
    ]
    for call, code, fragment in cases:
        with pytest.raises(InferenceServerException) as caught:
            call()
        assert caught.value.status() == str(code), caught.value
        assert fragment in caught.value.message()


def test_a_byte_size_that_does_not_match_the_shape_is_a_400(server):
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1, 784],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 3136},
                }
            ]
        }
    ).encode()
    reply = httpx.post(
        f"{server.url}/v2/models/digit/infer",
        content=header + b"\0" * 3000,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert reply.status_code == 400
    assert "runs past" in reply.json()["error"]


def test_the_body_limit_and_json_depth_hold_on_v2(server):
    deep = b'{"inputs": ' + b"[" * 40 + b"]" * 40 + b"}"
    reply = httpx.post(f"{server.url}/v2/models/digit/infer", content=deep)
    assert reply.status_code == 400 and "at most 32" in reply.json()["error"]
    huge = b"0" * (5 * 1024 * 1024 + 1)
    reply = httpx.post(f"{server.url}/v2/models/digit/infer", content=huge)
    assert reply.status_code == 413 and "limit" in reply.json()["error"]


@pytest.mark.slow
def test_1000_mnist_images_as_tensors_and_as_png_bytes_agree_with_predict_digit(
    server, http, rpc, mnist
):
    images, labels = mnist
    pngs = [png_bytes(image) for image in images]
    replies = asyncio.run(post_digits(server.url, pngs, concurrency=16))
    assert all(r.status_code == 200 for r in replies)
    reference = np.array([r.json()["probabilities"] for r in replies], dtype=np.float32)
    # The canvases /predict/digit fed the model (explain=true), as tensors: the same
    # input, so the same probabilities.
    canvases = []
    for start in range(0, 1000, 250):
        batch = httpx.post(
            f"{server.url}/predict/digits",
            params={"explain": "true"},
            files=[("images", ("d.png", png, "image/png")) for png in pngs[start : start + 250]],
            timeout=60,
        ).json()["predictions"]
        canvases += [decode_canvas(p["canvas"]) for p in batch]
    tensors = normalised(np.stack(canvases))
    by_tensor, by_bytes, raw = [], [], []
    for start in range(0, 1000, 100):
        tensor = grpcclient.InferInput("image", [100, 784], "FP32")
        tensor.set_data_from_numpy(tensors[start : start + 100])
        by_tensor.append(rpc.infer("digit", [tensor]).as_numpy("probabilities"))
        encoded = httpclient.InferInput("image_bytes", [100, 1], "BYTES")
        encoded.set_data_from_numpy(np.array(pngs[start : start + 100], dtype=np.object_)[:, None])
        by_bytes.append(http.infer("digit", [encoded]).as_numpy("probabilities"))
        plain = httpclient.InferInput("image", [100, 784], "FP32")
        plain.set_data_from_numpy(normalised(images[start : start + 100]))
        raw.append(http.infer("digit", [plain]).as_numpy("probabilities"))
    for got in (np.concatenate(by_tensor), np.concatenate(by_bytes)):
        assert (got.argmax(axis=1) == reference.argmax(axis=1)).sum() == 1000
        np.testing.assert_allclose(got, reference, atol=1e-5)
    # The raw MNIST tensors skip the preprocessing: close to it, and as accurate.
    plain_digits = np.concatenate(raw).argmax(axis=1)
    assert (plain_digits == reference.argmax(axis=1)).mean() >= 0.99
    assert (plain_digits == labels).mean() >= 0.98


def decode_canvas(data_url: str) -> np.ndarray:
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("L"), dtype=np.uint8)


@pytest.mark.slow
def test_v2_requests_share_the_friendly_routes_queue_and_a_full_one_is_503(tmp_path, mnist):
    """Four /predict/digit uploads fill the digit batcher's queue (max 4, a 2 s batch
    delay): V2 REST and gRPC requests are refused by that same queue, then all finish."""
    root = tmp_path / "models"
    shutil.copytree(MODELS_DIR / "digit" / "2", root / "digit" / "2")
    env = {
        "DIGITPASS_MODEL_REPOSITORY": str(root),
        "DIGITPASS_RELOAD_INTERVAL_S": "0",
        "DIGITPASS_MAX_BATCH_DELAY_MS": "2000",
        "DIGITPASS_MAX_BATCH_SIZE": "256",
        "DIGITPASS_MAX_QUEUE": "4",
    }
    png = png_bytes(mnist[0][0])
    with run_server(env) as server:

        async def scenario() -> list[httpx.Response]:
            queued = asyncio.create_task(post_digits(server.url, [png] * 4, concurrency=4))
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                await wait_for_queued(client, 4)
                tensor = httpclient.InferInput("image", [1, 784], "FP32")
                tensor.set_data_from_numpy(normalised(mnist[0][:1]))
                client_http = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
                with pytest.raises(InferenceServerException) as refused:
                    client_http.infer("digit", [tensor])
                assert refused.value.status() == "503"
                assert "queue is full" in refused.value.message()
                rpc_tensor = grpcclient.InferInput("image", [1, 784], "FP32")
                rpc_tensor.set_data_from_numpy(normalised(mnist[0][:1]))
                with (
                    grpcclient.InferenceServerClient(server.grpc_url) as client_rpc,
                    pytest.raises(InferenceServerException) as unavailable,
                ):
                    client_rpc.infer("digit", [rpc_tensor])
                assert unavailable.value.status() == str(grpc.StatusCode.UNAVAILABLE)
            return await queued

        finished = asyncio.run(scenario())
    assert [r.status_code for r in finished] == [200] * 4


@pytest.mark.slow
def test_a_large_json_request_is_parsed_off_the_loop_and_answered(server, http, mnist):
    """300 images as JSON numbers (several MB, over the inline limit): parsed in a
    worker process, answered exactly as the same tensor in binary."""
    images, labels = mnist
    tensor = httpclient.InferInput("image", [300, 784], "FP32")
    tensor.set_data_from_numpy(normalised(images[:300]), binary_data=False)
    as_json = http.infer("digit", [tensor]).as_numpy("probabilities")
    tensor.set_data_from_numpy(normalised(images[:300]), binary_data=True)
    as_binary = http.infer("digit", [tensor]).as_numpy("probabilities")
    np.testing.assert_allclose(as_json, as_binary, atol=1e-6)
    assert (as_json.argmax(axis=1) == labels[:300]).mean() >= 0.98


def test_grpc_shares_the_body_limit_and_the_metrics(server, rpc):
    too_big = grpcclient.InferInput("image", [1700, 784], "FP32")  # 5.3 MB > 5 MiB
    too_big.set_data_from_numpy(np.zeros((1700, 784), np.float32))
    with pytest.raises(InferenceServerException) as caught:
        rpc.infer("digit", [too_big])
    assert caught.value.status() == str(grpc.StatusCode.RESOURCE_EXHAUSTED)
    hours = grpcclient.InferInput("hours", [1, 1], "FP32")
    hours.set_data_from_numpy(np.array([[4.0]], np.float32))
    rpc.infer("points", [hours])
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        metric(
            text,
            "digitpass_http_requests_total",
            method="GRPC",
            route="grpc:ModelInfer",
            status="200",
        )
        >= 1
    )


@pytest.mark.slow
def test_with_two_workers_both_serve_grpc_on_the_same_port(tmp_path):
    root = tmp_path / "models"
    shutil.copytree(MODELS_DIR / "points" / "1", root / "points" / "1")
    command = [
        sys.executable,
        "-m",
        "service",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "2",
    ]
    env = {"DIGITPASS_MODEL_REPOSITORY": str(root), "DIGITPASS_RELOAD_INTERVAL_S": "0"}
    with run_server(env, command) as server:
        hours = grpcclient.InferInput("hours", [1, 1], "FP32")
        hours.set_data_from_numpy(np.array([[4.0]], np.float32))
        for _ in range(10):  # new connections, spread over both processes by the kernel
            with grpcclient.InferenceServerClient(server.grpc_url) as client:
                assert client.infer("points", [hours]).as_numpy("points")[0, 0] == pytest.approx(
                    8.0, abs=1e-3
                )
        assert server.log().count('"event": "grpc_started"') == 2


@pytest.mark.parametrize("client_name", ["http", "rpc"])
@pytest.mark.parametrize("value", [3e38, -3e38])
def test_finite_input_that_overflows_the_model_is_a_clear_400(client_name, value, request, mnist):
    """3e38 is a finite FP32, but the digit model's logits overflow on it: the answer
    would be NaN (or a 500, where JSON cannot hold it). Every form is refused; a sane
    request beside it is answered."""
    client = request.getfixturevalue(client_name)
    module = httpclient if client_name == "http" else grpcclient
    for binary in (False, True):
        for classes in (0, 3):
            inputs = [module.InferInput("image", [1, 784], "FP32")]
            if client_name == "http":
                inputs[0].set_data_from_numpy(
                    np.full((1, 784), value, np.float32), binary_data=binary
                )
                outputs = [
                    httpclient.InferRequestedOutput(
                        "probabilities", binary_data=binary, class_count=classes
                    )
                ]
            else:
                inputs[0].set_data_from_numpy(np.full((1, 784), value, np.float32))
                outputs = [grpcclient.InferRequestedOutput("probabilities", class_count=classes)]
            with pytest.raises(InferenceServerException) as caught:
                client.infer("digit", inputs, outputs=outputs)
            expected = "400" if client_name == "http" else "StatusCode.INVALID_ARGUMENT"
            assert caught.value.status() == expected, caught.value
            assert "not finite" in caught.value.message()
    sane = module.InferInput("image", [1, 784], "FP32")
    image = ((mnist[0][:1].reshape(1, 784) / 255.0 - MEAN) / STD).astype(np.float32)
    sane.set_data_from_numpy(image)
    answer = client.infer("digit", [sane]).as_numpy("probabilities")
    assert np.isfinite(answer).all() and int(answer.argmax()) == int(mnist[1][0])

"""Every endpoint and every error row, through the real app (TestClient + lifespan)."""

from __future__ import annotations

import gc
import io
import itertools
import json
import logging
import math
import shutil
import types
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

import service
from service.app import YOUNG_COLLECTION_THRESHOLD, create_app
from service.imaging.confidence import UNCERTAIN_BELOW, uncertain_flags
from service.imaging.pipeline import ImageSpec, preprocess_image
from service.logs import JsonFormatter


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


def first_digits(mnist_pngs, count):
    return mnist_pngs[:count]


# --- /predict/pass -------------------------------------------------------------------


def test_pass_get_shape_and_values(client):
    response = client.get("/predict/pass", params={"hours": 4})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"hours", "probability", "passed", "model"}
    assert body["hours"] == 4.0
    assert 0.5 < body["probability"] <= 1.0 and body["passed"] is True
    assert body["model"]["name"] == "pass" and body["model"]["version"] >= 1
    low = client.get("/predict/pass?hours=1").json()
    assert low["passed"] is False and low["probability"] < 0.5


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?hours=",
        "?hours=abc",
        "?hours=nan",
        "?hours=inf",
        "?hours=-inf",
        "?hours=-1",
        "?hours=10000.5",
        "?hours=1e309",
    ],
)
def test_pass_get_rejects_bad_hours_naming_the_parameter(client, query):
    response = client.get(f"/predict/pass{query}")
    assert response.status_code == 422, response.text
    assert "hours" in response.json()["detail"]


def test_pass_post_keeps_input_order(client):
    hours = [7, 1, 3, 0, 10000]
    response = client.post("/predict/pass", json={"hours": hours})
    assert response.status_code == 200
    body = response.json()
    assert [p["hours"] for p in body["predictions"]] == hours
    by_hours = {p["hours"]: p["probability"] for p in body["predictions"]}
    assert by_hours[0] < by_hours[1] < by_hours[3] < by_hours[7] <= by_hours[10000]
    assert [p["passed"] for p in body["predictions"]] == [True, False, True, False, True]
    single = client.get("/predict/pass?hours=3").json()["probability"]
    assert math.isclose(by_hours[3], single, rel_tol=1e-6)


@pytest.mark.parametrize(
    "payload",
    [
        {"hours": []},
        {"hours": [1] * 1025},
        {"hours": "4"},
        {"hours": [1, "x"]},
        {"hours": [-1]},
        {},
        [1, 2],
        {"hours": [None]},
    ],
)
def test_pass_post_rejects_bad_bodies(client, payload):
    response = client.post("/predict/pass", json=payload)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"], str)


def test_pass_post_rejects_nan_in_json(client):
    response = client.post(
        "/predict/pass", content=b'{"hours": [NaN]}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_pass_post_accepts_1024_values(client):
    hours = np.linspace(0, 10, 1024).tolist()
    body = client.post("/predict/pass", json={"hours": hours}).json()
    probabilities = [p["probability"] for p in body["predictions"]]
    assert len(probabilities) == 1024
    assert all(b >= a - 1e-6 for a, b in itertools.pairwise(probabilities))
    assert probabilities[0] < 0.01 and probabilities[-1] > 0.99


# --- /predict/digit(s) -----------------------------------------------------------------


def test_digit_multipart_and_raw_body_agree_and_are_right(client, mnist_pngs, committed_model):
    spec = ImageSpec.from_metadata(committed_model("digit").metadata["input"]["preprocessing"])
    for data, label in first_digits(mnist_pngs, 10):
        multipart = client.post("/predict/digit", files={"image": ("d.png", data, "image/png")})
        raw = client.post("/predict/digit", content=data, headers={"content-type": "image/png"})
        assert multipart.status_code == raw.status_code == 200
        body = multipart.json()
        assert body == raw.json()
        assert set(body) == {"digit", "confidence", "uncertain", "probabilities", "model"}
        assert body["digit"] == label
        assert len(body["probabilities"]) == 10
        assert math.isclose(sum(body["probabilities"]), 1.0, abs_tol=1e-5)
        assert body["confidence"] == max(body["probabilities"])
        # the whole rule: under the threshold, or a solid shape (what the canvas shows)
        canvas = spec.denormalize(preprocess_image(data, spec, max_pixels=25_000_000))
        flagged = uncertain_flags(np.array([body["confidence"]]), canvas)
        assert body["uncertain"] is bool(flagged[0])
        assert body["uncertain"] is (body["confidence"] < UNCERTAIN_BELOW)  # digits aren't solid
        assert body["model"]["name"] == "digit"


def test_digits_keep_upload_order(client, mnist_pngs):
    sample = first_digits(mnist_pngs, 40)
    files = [("images", (f"{i}.png", data, "image/png")) for i, (data, _) in enumerate(sample)]
    response = client.post("/predict/digits", files=files)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 40
    digits = [p["digit"] for p in predictions]
    assert sum(d == label for d, (_, label) in zip(digits, sample, strict=True)) >= 39
    one_by_one = [
        client.post("/predict/digit", content=d, headers={"content-type": "image/png"}).json()[
            "digit"
        ]
        for d, _ in sample
    ]
    assert digits == one_by_one


def test_digits_bad_image_names_its_index(client, mnist_pngs):
    files = [
        ("images", ("a.png", mnist_pngs[0][0], "image/png")),
        ("images", ("b.png", b"not an image", "image/png")),
    ]
    response = client.post("/predict/digits", files=files)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("input 1:")


def test_digits_limits(client, mnist_pngs):
    data = mnist_pngs[0][0]
    too_many = [("images", (f"{i}.png", data, "image/png")) for i in range(257)]
    assert client.post("/predict/digits", files=too_many).status_code in (400, 422)
    wrong_field = client.post("/predict/digits", files={"image": ("a.png", data, "image/png")})
    assert wrong_field.status_code == 422
    assert "images" in wrong_field.json()["detail"]


def blank_png(size=(64, 64), color=255):
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def post_raw(client, data, content_type="image/png", **kwargs):
    return client.post(
        "/predict/digit", content=data, headers={"content-type": content_type}, **kwargs
    )


def assert_error(response, status, *, contains=""):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    assert isinstance(detail, str) and contains.lower() in detail.lower()


def test_error_table(client, mnist_pngs):
    good = mnist_pngs[0][0]
    assert_error(post_raw(client, b""), 400, contains="empty")
    assert_error(
        client.post("/predict/digit", files={"image": ("e.png", b"", "image/png")}),
        400,
        contains="empty",
    )
    assert_error(post_raw(client, b"hello, I am not an image"), 400)
    assert_error(post_raw(client, good[: len(good) // 2]), 400)
    assert_error(post_raw(client, b"x=1", "application/x-www-form-urlencoded"), 415)
    assert_error(post_raw(client, good, "text/plain"), 415)
    assert_error(client.post("/predict/digit", content=good), 415)
    assert_error(post_raw(client, blank_png()), 422, contains="no digit found")
    assert_error(post_raw(client, blank_png(color=0)), 422, contains="no digit found")
    assert_error(
        client.post("/predict/digit", files={"picture": ("a.png", good, "image/png")}),
        422,
        contains="image",
    )
    text_field = client.post(
        "/predict/digit",
        data={"image": "text, not a file"},
        files={"other": ("a.png", good, "image/png")},
    )
    assert_error(text_field, 422, contains="file upload")
    twice = client.post(
        "/predict/digit",
        files=[("image", ("a.png", good, "image/png")), ("image", ("b.png", good, "image/png"))],
    )
    assert_error(twice, 422, contains="form field 'image' given 2 times: send one")
    # ... and the server keeps serving normally.
    assert (
        client.post("/predict/digit", files={"image": ("a.png", good, "image/png")}).json()["digit"]
        == mnist_pngs[0][1]
    )


def test_body_over_the_limit_is_refused_before_it_is_read(make_settings):
    settings = make_settings(max_upload_bytes=64 * 1024)
    big = b"\x89PNG" + bytes(100 * 1024)
    with TestClient(create_app(settings)) as limited:
        assert_error(post_raw(limited, big), 413, contains="limit")

        def chunks():
            for _ in range(100):
                yield bytes(1024)

        assert_error(post_raw(limited, chunks()), 413, contains="limit")
        files = {"image": ("big.png", big, "image/png")}
        assert_error(limited.post("/predict/digit", files=files), 413)
        assert limited.get("/predict/pass?hours=3").status_code == 200


def test_image_over_the_pixel_limit_is_413(make_settings):
    settings = make_settings(max_image_pixels=1_000_000)
    with TestClient(create_app(settings)) as limited:
        assert_error(post_raw(limited, blank_png(size=(1001, 1000))), 413, contains="pixel")
        assert post_raw(limited, blank_png(size=(1000, 1000))).status_code == 422


def test_decompression_bomb_is_413(client):
    bomb = blank_png(size=(20_000, 20_000), color=0)  # 400 Mpx, a few hundred kB of PNG
    assert len(bomb) < 5 * 1024 * 1024
    assert_error(post_raw(client, bomb), 413)


# --- operations ---------------------------------------------------------------------


def test_health_ready_and_models(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["models"]) == {"pass", "digit", "points"}
    models = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert set(models) == {"pass", "digit", "points"}
    digit = models["digit"]
    assert digit["backend"] == "onnx" and digit["device"] == "cpu"
    assert digit["providers"] == ["CPUExecutionProvider"]
    assert digit["metrics"]["test_accuracy"] >= 0.98
    assert "decision_boundary_hours" in models["pass"]["metrics"]
    assert digit["loaded_at"]
    assert {name: m["task"] for name, m in models.items()} == {
        "pass": "binary-classifier",
        "digit": "image-classifier",
        "points": "scalar-regressor",
    }


def test_not_ready_without_models(tmp_path):
    from service.settings import Settings

    (tmp_path / "pass").mkdir()  # a model folder with no version in it
    settings = Settings(model_repository=tmp_path, reload_interval_s=0)
    with TestClient(create_app(settings)) as empty:
        assert empty.get("/healthz").status_code == 200
        assert_error(empty.get("/readyz"), 503, contains="no model")
        assert_error(empty.get("/predict/pass?hours=4"), 503, contains="not loaded")
        assert_error(empty.get("/predict/other?hours=4"), 404, contains="not found")
        unavailable = empty.get("/models").json()["unavailable"]
        assert unavailable == [{"name": "pass", "reason": "no version folder"}]


def test_metrics_exposes_requests_batches_queue_and_versions(client, mnist_pngs):
    client.get("/predict/pass?hours=4")
    post_raw(client, mnist_pngs[0][0])
    text = client.get("/metrics").text
    assert (
        'digitpass_http_requests_total{method="GET",route="/predict/pass",status="200"} 1.0' in text
    )
    assert (
        'digitpass_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/predict/digit",status="200"}'
        in text
    )
    assert 'digitpass_inference_batch_size_count{model="digit"} 1.0' in text
    assert 'digitpass_inference_duration_seconds_count{model="pass"} 1.0' in text
    assert 'digitpass_queue_depth{model="digit"} 0.0' in text
    assert 'digitpass_model_version{model="digit"}' in text


def test_unknown_routes_are_json_404_and_not_a_metrics_label(client):
    assert_error(client.get("/nope/123"), 404)
    assert "/nope/123" not in client.get("/metrics").text


def test_admin_reload_reports_models(client):
    body = client.post("/admin/reload").json()
    assert {m["name"] for m in body["models"]} == {"pass", "digit", "points"}
    assert body["failures"] == []


def test_admin_reload_needs_the_token_when_one_is_set(make_settings):
    with TestClient(create_app(make_settings(admin_token="s3cret"))) as guarded:
        assert_error(guarded.post("/admin/reload"), 401, contains="token")
        assert_error(guarded.post("/admin/reload", headers={"authorization": "Bearer nope"}), 401)
        ok = guarded.post("/admin/reload", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_openapi_documents_both_upload_forms(client):
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/predict/digit"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in content and "image/png" in content
    assert spec["paths"]["/predict/pass"]["get"]["responses"]["422"]
    assert client.get("/docs").status_code == 200


# --- backends -----------------------------------------------------------------------


def test_torchscript_backend_gives_the_same_answers(make_settings, mnist_pngs):
    sample = first_digits(mnist_pngs, 20)
    answers = {}
    for backend in ("onnx", "torchscript"):
        with TestClient(create_app(make_settings(backend=backend))) as backend_client:
            models = {m["name"]: m for m in backend_client.get("/models").json()["models"]}
            assert models["digit"]["backend"] == backend
            digits = [post_raw(backend_client, d).json() for d, _ in sample]
            passes = backend_client.post("/predict/pass", json={"hours": [0.5, 2, 2.5, 3, 9]})
            answers[backend] = (digits, passes.json()["predictions"])
    onnx_digits, onnx_pass = answers["onnx"]
    ts_digits, ts_pass = answers["torchscript"]
    for a, b in zip(onnx_digits, ts_digits, strict=True):
        assert a["digit"] == b["digit"]
        assert np.allclose(a["probabilities"], b["probabilities"], atol=1e-4)
    for a, b in zip(onnx_pass, ts_pass, strict=True):
        assert a["passed"] == b["passed"]
        assert abs(a["probability"] - b["probability"]) < 1e-5


# --- reload -------------------------------------------------------------------------


def republish(root, name, source, target, corrupt=None):
    """Copy version ``source`` to ``target`` as a new version (optionally corrupted)."""
    import shutil

    shutil.copytree(root / name / str(source), root / name / str(target))
    metadata_path = root / name / str(target) / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["version"] = target
    metadata_path.write_text(json.dumps(metadata))
    if corrupt:  # same size, different bytes: only the checksum can tell
        path = root / name / str(target) / corrupt
        data = bytearray(path.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 16] = b"\xff" * 16
        path.write_bytes(bytes(data))


def test_reload_picks_up_a_new_version_and_skips_a_broken_one(client, model_repo):
    (current,) = [int(p.name) for p in (model_repo / "digit").iterdir()]
    republish(model_repo, "digit", current, current + 1, corrupt="model.onnx")
    body = client.post("/admin/reload").json()
    assert [(f["name"], f["version"]) for f in body["failures"]] == [("digit", current + 1)]
    assert "sha256" in body["failures"][0]["reason"]
    assert client.get("/readyz").json()["models"]["digit"] == current
    # Every version still skipped is reported; a known-bad one is not retried until its
    # files change (one failed load in the metrics, after two scans).
    again = client.post("/admin/reload").json()["failures"]
    assert [(f["name"], f["version"]) for f in again] == [("digit", current + 1)]
    assert 'digitpass_model_reloads_total{model="digit",outcome="failed"} 1.0' in (
        client.get("/metrics").text
    )
    republish(model_repo, "digit", current, current + 2)
    body = client.post("/admin/reload").json()
    assert body["failures"] == []
    assert client.get("/readyz").json()["models"]["digit"] == current + 2
    assert (
        client.get("/metrics").text.count(
            f'digitpass_model_version{{model="digit"}} {current + 2}.0'
        )
        == 1
    )


def test_what_startup_loaded_is_exempt_from_garbage_collection_until_shutdown(make_settings):
    gc.unfreeze()
    before = gc.get_threshold()
    with TestClient(create_app(make_settings())) as served:
        frozen = gc.get_freeze_count()
        serving = gc.get_threshold()
        assert served.get("/predict/pass?hours=4").status_code == 200
    assert frozen > 10_000  # modules, the app and the models
    assert serving == (YOUNG_COLLECTION_THRESHOLD, *before[1:])  # young objects: less often
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before


def _service_frames_in_cycles() -> list[str]:
    """The frames of this service's code that only the garbage collector would free."""
    service_root = str(Path(service.__file__).parent)
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        return [
            f"{frame.f_code.co_filename}:{frame.f_code.co_name}"
            for frame in gc.garbage
            if isinstance(frame, types.FrameType)
            and frame.f_code.co_filename.startswith(service_root)
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


@pytest.mark.parametrize(
    ("path", "status"), [("/predict/digit", 400), ("/v2/models/digit/infer", 400)]
)
def test_a_refused_request_is_freed_at_once_not_left_to_the_garbage_collector(
    make_settings, path, status
):
    """An error's traceback holds the frames it left, which hold the request's body and
    the future holding the error: a cycle, freed only at the collector's next run
    (with a quiet server, not soon). The HTTP layer drops the tracebacks once answered."""
    not_an_image = b"x" * 1_000_000
    with TestClient(create_app(make_settings())) as client:

        def send() -> int:
            if path.startswith("/v2"):  # encoded images in the Open Inference Protocol
                encoded = {"name": "image_bytes", "shape": [1], "datatype": "BYTES"}
                payload = {"inputs": [{**encoded, "data": ["x" * 1_000_000]}]}
                return client.post(path, json=payload).status_code
            files = {"image": ("x.png", not_an_image, "image/png")}
            return client.post(path, files=files).status_code

        assert send() == status  # warm: what the first request builds once
        _service_frames_in_cycles()
        assert send() == status
        assert _service_frames_in_cycles() == []


# --- request ids, access log, HEAD --------------------------------------------------------


def test_every_response_carries_a_request_id(client):
    first = client.get("/predict/pass?hours=4").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert first and second and first != second
    error = client.get("/predict/pass?hours=-1")
    assert error.status_code == 422 and error.headers["x-request-id"]
    assert client.get("/nope").headers["x-request-id"]


def test_the_clients_request_id_is_kept_when_it_is_sane(client):
    sent = {"x-request-id": "abc-123"}
    assert client.get("/predict/pass?hours=4", headers=sent).headers["x-request-id"] == "abc-123"
    for bad in ("x" * 129, "tab\there"):
        answer = client.get("/healthz", headers={"x-request-id": bad}).headers["x-request-id"]
        assert answer != bad and answer


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def access_records(app, request):
    collect = Collect()
    logging.getLogger("service.access").addHandler(collect)
    try:
        with TestClient(app) as served:
            answer = request(served)
    finally:
        logging.getLogger("service.access").removeHandler(collect)
    return answer, collect.records


def test_access_log_is_one_json_line_per_request_when_switched_on(make_settings):
    app = create_app(make_settings(access_log=True))
    answer, records = access_records(
        app, lambda c: c.get("/predict/pass?hours=4", headers={"x-request-id": "r-1"})
    )
    assert answer.status_code == 200 and len(records) == 1
    record = records[0]
    line = json.loads(JsonFormatter().format(record))
    assert line["event"] == "request" and line["request_id"] == "r-1"
    assert (record.getMessage(), record.method, record.path, record.status) == (
        "request",
        "GET",
        "/predict/pass",
        200,
    )
    assert record.request_id == "r-1" and record.duration_ms > 0


def test_no_access_log_by_default(make_settings):
    answer, records = access_records(create_app(make_settings()), lambda c: c.get("/healthz"))
    assert answer.status_code == 200 and records == []


def test_json_logs_carry_no_ansi_colour_codes():
    record = logging.makeLogRecord(
        {"msg": "Started", "color_message": "\x1b[32mStarted\x1b[0m", "levelno": 20}
    )
    assert "color_message" not in JsonFormatter().format(record)


def test_head_on_health_and_readiness(client):
    for path in ("/healthz", "/readyz"):
        answer = client.head(path)
        assert answer.status_code == 200 and answer.content == b""


@pytest.mark.parametrize("value", [True, "1", [1], {"h": 1}])
def test_json_hours_must_be_numbers_not_what_reads_as_one(client, value):
    answer = client.post("/predict/pass", json={"hours": [4, value]})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.hours.1: Input should be a valid number")


def test_json_body_problems_say_what_to_do(client):
    form = client.post("/predict/pass", content=b"hours=4", headers={"content-type": "text/plain"})
    assert form.status_code == 422 and "Content-Type: application/json" in form.json()["detail"]
    broken = client.post(
        "/predict/pass", content=b'{"hours": [1,', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"].startswith("body: invalid JSON at line 1, column 14")
    deep = client.post("/predict/pass", content=b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code == 422
    for body in (b'{"hours": [' + b"9" * 5000 + b"]}", b'{"hours": ' + b"9" * 5000 + b"}"):
        huge = client.post(
            "/predict/pass", content=body, headers={"content-type": "application/json"}
        )
        assert huge.status_code == 422 and "too many digits" in huge.json()["detail"]


# --- discovery: removal and route collisions ------------------------------------------


def test_a_removed_model_folder_is_unloaded_and_its_routes_are_gone(client, model_repo):
    assert client.get("/predict/points?hours=4").status_code == 200
    shutil.rmtree(model_repo / "points")
    client.post("/admin/reload")
    assert client.get("/predict/points?hours=4").status_code == 404
    assert "points" not in client.get("/readyz").json()["models"]
    assert "/predict/points" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/predict/pass?hours=4").status_code == 200


def test_a_served_model_keeps_its_routes_when_a_newcomer_would_take_them(make_settings, model_repo):
    """A served model named 'digits' is not displaced by a 'digit' that appears later:
    the newcomer, whose batch route would be /predict/digits, is the one refused."""
    shutil.move(model_repo / "digit", model_repo / "digits")
    version = next((model_repo / "digits").iterdir())
    metadata = json.loads((version / "metadata.json").read_text())
    (version / "metadata.json").write_text(json.dumps({**metadata, "name": "digits"}))
    with TestClient(create_app(make_settings())) as served:
        assert served.get("/readyz").json()["models"]["digits"] == int(version.name)
        shutil.copytree(version, model_repo / "digit" / version.name)
        (model_repo / "digit" / version.name / "metadata.json").write_text(
            json.dumps({**metadata, "name": "digit"})
        )
        served.post("/admin/reload")
        models = served.get("/models").json()
        assert "digits" in {m["name"] for m in models["models"]}
        refused = {u["name"]: u["reason"] for u in models["unavailable"]}
        assert refused["digit"] == "route /predict/digits is already served for model 'digits'"

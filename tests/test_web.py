"""The web page's server side, without a browser: the page, its files, the model-file
routes, the offline docs and ``POST /predict/digit?explain=true``.

The page itself is tested in a real browser in ``tests/test_web_browser.py``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.app import create_app
from service.http.web import STATIC_DIR
from service.imaging.pipeline import ImageSpec, to_canvas
from service.models.kinds.image import canvas_png_data_url
from service.models.repository import list_versions

REPO_ROOT = Path(__file__).resolve().parent.parent
DIGIT = str(list_versions(REPO_ROOT / "models" / "digit")[-1])  # the served version
EXAMPLES = REPO_ROOT / "docs" / "examples"
TEST_IDS = (
    "digit-canvas",
    "clear",
    "digit-prediction",
    "digit-probabilities",
    "hours",
    "pass-probability",
    "points-prediction",
)


@pytest.fixture
def client(make_settings):
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


def assert_404_json(response):
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]


def decode_data_url(url: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :], validate=True)))


# --- the page and its files ------------------------------------------------------------


def test_page_is_html_with_every_test_hook(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for test_id in TEST_IDS:
        assert f'data-testid="{test_id}"' in response.text, test_id
    hours = re.search(r"<input[^>]*data-testid=\"hours\"[^>]*>", response.text)
    assert hours is not None
    for attribute in ('type="range"', 'min="0"', 'max="10"', 'step="0.1"'):
        assert attribute in hours[0]


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [("app.js", "text/javascript"), ("style.css", "text/css"), ("index.html", "text/html")],
)
def test_static_files_are_served_from_the_package(client, filename, media_type):
    response = client.get(f"/static/{filename}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (STATIC_DIR / filename).read_bytes()


def test_the_page_names_no_other_host():
    """Every URL in the page's files is relative: no CDN, no fonts from elsewhere."""
    for path in STATIC_DIR.iterdir():
        # an XML namespace name (createElementNS), not something that is fetched
        text = path.read_text(encoding="utf-8").replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(https?:)?//[a-z0-9]", text, re.IGNORECASE), path.name
        assert "@import" not in text and 'fetch("/' not in text, path.name


@pytest.mark.parametrize(
    "url",
    [
        "/static/nothing.js",
        "/static/.hidden",
        "/static/..%2Fapp.py",
        "/static/%2E%2E",
        "/static/docs/core.py",
        "/static/docs/..%2F__init__.py",
        "/static/" + "a" * 300 + ".js",
    ],
)
def test_unknown_static_files_are_404_json(client, url):
    assert_404_json(client.get(url))


def test_wheel_includes_the_static_files():
    """hatchling ships every file inside the package folders; nothing excludes these."""
    from hatchling.builders.wheel import WheelBuilder

    builder = WheelBuilder(str(REPO_ROOT))
    shipped = {f.distribution_path for f in builder.recurse_included_files()}
    for path in STATIC_DIR.iterdir():
        assert f"service/static/{path.name}" in shipped, path.name


# --- offline docs ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_this_server(client, page):
    response = client.get(page)
    assert response.status_code == 200
    urls = re.findall(r"(?:src|href|url)\s*[=:]\s*['\"]([^'\"]+)['\"]", response.text)
    assert urls, response.text
    for url in urls:
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url
    assert "https://" not in response.text and "http://" not in response.text


def test_docs_assets_are_the_bundles(client):
    js = client.get("/static/docs/swagger-ui-bundle.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert len(js.content) > 100_000
    redoc = client.get("/static/docs/redoc.standalone.js")
    assert redoc.status_code == 200 and b"cdn.redoc.ly" not in redoc.content
    assert client.get("/docs/oauth2-redirect").status_code == 200


# --- model files -----------------------------------------------------------------------


def test_model_files_lists_the_pngs_of_the_metadata(client, model_repo):
    for name in ("digit", "pass"):
        version = list_versions(model_repo / name)[-1]
        metadata = json.loads((model_repo / name / str(version) / "metadata.json").read_text())
        expected = sorted(f for f in metadata["artifacts"] if f.endswith(".png"))
        response = client.get(f"/models/{name}/{version}/files")
        assert response.status_code == 200
        assert response.json() == {"files": expected}
    assert "loss_curve.png" in client.get(f"/models/digit/{DIGIT}/files").json()["files"]


def test_a_listed_png_is_served(client, model_repo):
    response = client.get(f"/models/digit/{DIGIT}/files/loss_curve.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.content == (model_repo / "digit" / DIGIT / "loss_curve.png").read_bytes()


@pytest.mark.parametrize(
    "url",
    [
        f"/models/digit/{DIGIT}/files/model.onnx",  # listed, not a PNG
        f"/models/digit/{DIGIT}/files/metadata.json",  # not listed
        f"/models/digit/{DIGIT}/files/nothing.png",  # not there
        f"/models/digit/{DIGIT}/files/..%2F..%2Fpass%2F1%2Fprobability_curve.png",
        f"/models/digit/{DIGIT}/files/%2E%2E",
        f"/models/digit/{DIGIT}/files/.png",
        "/models/digit/1/files/loss_curve.png",  # a version that is not served
        "/models/digit/0/files/loss_curve.png",
        "/models/digit/01/files/loss_curve.png",
        "/models/digit/x/files/loss_curve.png",
        "/models/nothing/1/files/loss_curve.png",  # no such model
        "/models/../1/files/loss_curve.png",
        "/models/%2E%2E/1/files/loss_curve.png",
        "/models/digit/1/files",
        "/models/nothing/1/files",
        "/models/%2E%2E/digit/files",
        "/models/" + "a" * 300 + "/1/files",
        f"/models/digit/{DIGIT}/files/" + "a" * 300 + ".png",
        "/models/digit/99999999999/files",
    ],
)
def test_model_files_refuse_everything_else_with_404_json(client, url):
    assert_404_json(client.get(url))


def test_an_unlisted_png_in_the_folder_is_refused(client, model_repo):
    (model_repo / "digit" / DIGIT / "extra.png").write_bytes(
        (model_repo / "digit" / DIGIT / "loss_curve.png").read_bytes()
    )
    assert_404_json(client.get(f"/models/digit/{DIGIT}/files/extra.png"))
    assert "extra.png" not in client.get(f"/models/digit/{DIGIT}/files").json()["files"]


def test_symlinks_out_of_the_version_folder_are_refused(client, model_repo, tmp_path):
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    listed = model_repo / "digit" / DIGIT / "loss_curve.png"
    listed.unlink()  # the models are loaded already: the folder is only read from now on
    listed.symlink_to(outside)
    assert_404_json(client.get(f"/models/digit/{DIGIT}/files/loss_curve.png"))
    assert "loss_curve.png" not in client.get(f"/models/digit/{DIGIT}/files").json()["files"]
    # a model folder, or a version folder, that is a link (out of the repository, or not)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(model_repo / "pass" / "1", elsewhere / "1")
    (model_repo / "linked").symlink_to(elsewhere)
    (model_repo / "pass" / "7").symlink_to(elsewhere / "1")
    (model_repo / "pass" / "8").symlink_to(model_repo / "pass" / "1")
    for url in ("/models/linked/1", "/models/pass/7", "/models/pass/8"):
        assert_404_json(client.get(f"{url}/files"))
        assert_404_json(client.get(f"{url}/files/probability_curve.png"))
    assert client.get("/models/pass/1/files/probability_curve.png").status_code == 200


def test_model_file_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "404" in paths["/models/{name}/{version}/files"]["get"]["responses"]
    png = paths["/models/{name}/{version}/files/{filename}"]["get"]["responses"]
    assert "image/png" in png["200"]["content"] and "404" in png
    explain = paths["/predict/digit"]["post"]["parameters"]
    assert [p["name"] for p in explain] == ["explain", "version"]  # ?version=N: every route


def test_models_response_keeps_its_shape(client):
    """The page reads /models but adds nothing to it (other code depends on it)."""
    for model in client.get("/models").json()["models"]:
        assert set(model) == {
            "name",
            "version",
            "task",
            "backend",
            "device",
            "providers",
            "metrics",
            "labels",
            "created_at",
            "loaded_at",
        }


# --- explain=true -----------------------------------------------------------------------


def test_canvas_png_data_url_round_trips():
    canvas = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    image = decode_data_url(canvas_png_data_url(canvas))
    assert image.size == (28, 28) and image.mode == "L"
    assert np.array_equal(np.asarray(image), canvas)
    with pytest.raises(ValueError):
        canvas_png_data_url(canvas.astype(np.float32))


@pytest.mark.parametrize("example", ["7.png", "2.png"])
def test_explain_returns_the_preprocessed_canvas(make_settings, model_repo, example):
    data = (EXAMPLES / example).read_bytes()
    metadata = json.loads((model_repo / "digit" / DIGIT / "metadata.json").read_text())
    spec = ImageSpec.from_metadata(metadata["input"]["preprocessing"])
    with TestClient(create_app(make_settings())) as client:
        plain = client.post("/predict/digit", files={"image": (example, data, "image/png")})
        explained = client.post(
            "/predict/digit?explain=true", files={"image": (example, data, "image/png")}
        )
        raw = client.post(
            "/predict/digit",
            params={"explain": "true"},
            content=data,
            headers={"content-type": "image/png"},
        )
        not_explained = client.post(
            "/predict/digit?explain=false", content=data, headers={"content-type": "image/png"}
        )
    assert plain.status_code == explained.status_code == raw.status_code == 200
    assert "canvas" not in plain.json() and "canvas" not in not_explained.json()
    body = explained.json()
    assert {k: v for k, v in body.items() if k != "canvas"} == plain.json()
    assert raw.json() == body
    image = decode_data_url(body["canvas"])
    assert image.format == "PNG" and image.size == (28, 28)
    expected = to_canvas(data, spec, max_pixels=25_000_000)
    assert np.array_equal(np.asarray(image.convert("L")), expected)


def test_explain_errors_are_the_usual_ones(client):
    bad = client.post(
        "/predict/digit?explain=true", content=b"xx", headers={"content-type": "image/png"}
    )
    assert bad.status_code == 400 and set(bad.json()) == {"detail"}
    silly = client.post(
        "/predict/digit?explain=perhaps",
        content=(EXAMPLES / "7.png").read_bytes(),
        headers={"content-type": "image/png"},
    )
    assert silly.status_code == 422 and "explain" in silly.json()["detail"]


# --- the browser tests' own guard ----------------------------------------------------------


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_browser_tests_fail_under_ci_and_skip_elsewhere_without_a_browser(monkeypatch, ci, outcome):
    from tests import browser_support

    monkeypatch.setattr(browser_support, "chromium_path", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(BaseException) as raised:
        browser_support.require_browser()
    assert (
        raised.type is {"failed": pytest.fail.Exception, "skipped": pytest.skip.Exception}[outcome]
    )
    assert "make browser" in str(raised.value)

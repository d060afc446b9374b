"""The page at ``GET /`` and the offline API docs, in headless Chromium.

A real server (``python -m service`` on a free port, a private copy of the committed
models) and Debian's Chromium driven by Playwright. Every page runs with the network
cut off: a request to any host but the server is aborted, and the test fails.
Synchronisation is by polling against a deadline (Playwright's ``expect``), never by
sleeping. The run also writes the README's screenshots, ``docs/screenshots/``.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from service.models.repository import list_versions
from tests.browser_support import (
    DIGIT_STROKES,
    NetworkGuard,
    canvas_png,
    data_url_bytes,
    draw,
    draw_by_cdp,
    require_browser,
)
from tests.server import run_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
EXAMPLES = REPO_ROOT / "docs" / "examples"
DEADLINE_MS = 20_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require_browser()
    root = tmp_path_factory.mktemp("browser") / "models"
    for name in ("pass", "digit", "points"):
        newest = list_versions(REPO_ROOT / "models" / name)[-1]
        shutil.copytree(REPO_ROOT / "models" / name / str(newest), root / name / str(newest))
    env = {"DIGITPASS_MODEL_REPOSITORY": str(root), "DIGITPASS_RELOAD_INTERVAL_S": "0"}
    with run_server(env) as handle:
        yield handle


@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=DEADLINE_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=require_browser(), args=["--no-sandbox", "--disable-gpu"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any, server: Any) -> Iterator[Callable[..., Any]]:
    """Open a path of the server in a fresh context, network cut off but for the server."""
    guards: list[NetworkGuard] = []
    contexts: list[Any] = []

    def open_(path: str = "/", width: int = 1280, height: int = 900, **context: Any) -> Any:
        ctx = browser.new_context(viewport={"width": width, "height": height}, **context)
        guard = NetworkGuard(server.url)
        guard.install(ctx)
        guards.append(guard)
        contexts.append(ctx)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.errors = errors
        page.goto(server.url + path)
        return page

    yield open_
    for ctx in contexts:
        ctx.close()
    for guard in guards:
        guard.assert_only_the_server()


def expect_status(page: Any, section: str, status: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(f"#{section}")).to_have_attribute("data-status", status)


def api_digit(server: Any, png: bytes) -> dict[str, Any]:
    response = httpx.post(
        server.url + "/predict/digit?explain=true",
        content=png,
        headers={"content-type": "image/png"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def api_pass(server: Any, hours: str) -> dict[str, Any]:
    response = httpx.get(server.url + "/predict/pass", params={"hours": hours})
    assert response.status_code == 200, response.text
    return response.json()


# --- digit --------------------------------------------------------------------------------


@pytest.mark.parametrize("digit", [1, 7, 0])
def test_a_drawn_digit_is_read_as_the_api_reads_the_same_canvas(open_page, server, digit):
    page = open_page()
    draw(page, DIGIT_STROKES[digit])
    expect_status(page, "digit", "done")
    shown = page.get_by_test_id("digit-prediction").text_content()
    answer = api_digit(server, canvas_png(page))
    assert shown == str(answer["digit"]) == str(digit)
    # the bars are the API's probabilities, and the image is what the model saw
    bars = page.get_by_test_id("digit-probabilities").locator("li")
    assert bars.count() == 10
    best = page.get_by_test_id("digit-probabilities").locator("li.best")
    assert best.get_attribute("data-digit") == str(digit)
    shown_percent = best.locator(".value").text_content()
    assert shown_percent == f"{100 * answer['probabilities'][digit]:.1f} %"
    seen = page.get_by_test_id("digit-seen").get_attribute("src")
    assert data_url_bytes(seen) == data_url_bytes(answer["canvas"])
    # an uncertain reading says so, a confident one does not
    confidence = page.locator("#digit-confidence").text_content()
    assert confidence.startswith("uncertain: ") is answer["uncertain"], confidence
    assert page.errors == []


@pytest.mark.parametrize("pointer", ["touch", "pen"])
def test_a_finger_and_a_pen_draw_too(open_page, server, pointer):
    page = open_page(has_touch=pointer == "touch")
    page.get_by_test_id("digit-canvas").evaluate(
        """c => { window.pointerTypes = [];
                  c.addEventListener("pointerdown", e => pointerTypes.push(e.pointerType)); }"""
    )
    draw_by_cdp(page, DIGIT_STROKES[7], pointer)
    expect_status(page, "digit", "done")
    assert page.evaluate("window.pointerTypes") == [pointer]
    shown = page.get_by_test_id("digit-prediction").text_content()
    assert shown == str(api_digit(server, canvas_png(page))["digit"]) == "7"


def test_predictions_update_while_drawing(open_page, server):
    """Mid-stroke (the button still down), the page already asks the model."""
    page = open_page()
    box = page.get_by_test_id("digit-canvas").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    for step in range(1, 31):
        page.mouse.move(
            box["x"] + 0.5 * box["width"], box["y"] + (0.15 + 0.7 * step / 30) * box["height"]
        )
    expect_status(page, "digit", "done")  # answered before the pointer is released
    assert page.get_by_test_id("digit-prediction").text_content() != ""
    page.mouse.up()
    expect_status(page, "digit", "done")
    assert page.get_by_test_id("digit-prediction").text_content() == str(
        api_digit(server, canvas_png(page))["digit"]
    )


def test_clear_resets_the_canvas_and_the_prediction(open_page):
    from playwright.sync_api import expect

    page = open_page()
    draw(page, DIGIT_STROKES[7])
    expect_status(page, "digit", "done")
    expect(page.get_by_test_id("digit-prediction")).to_have_text("7")
    page.get_by_test_id("clear").click()
    expect_status(page, "digit", "idle")
    expect(page.get_by_test_id("digit-prediction")).to_have_text("")
    expect(page.get_by_test_id("digit-seen")).to_be_hidden()
    values = page.get_by_test_id("digit-probabilities").locator(".value").all_text_contents()
    assert values == [""] * 10
    white = page.get_by_test_id("digit-canvas").evaluate(
        """c => c.getContext('2d').getImageData(0, 0, c.width, c.height).data
               .every(v => v === 255)"""
    )
    assert white is True
    # and it draws again afterwards
    draw(page, DIGIT_STROKES[1])
    expect_status(page, "digit", "done")
    expect(page.get_by_test_id("digit-prediction")).to_have_text("1")


def test_an_uploaded_photo_is_read(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    data = (EXAMPLES / "2.png").read_bytes()
    page.get_by_test_id("photo").set_input_files(
        {"name": "2.png", "mimeType": "image/png", "buffer": data}
    )
    expect_status(page, "digit", "done")
    expect(page.get_by_test_id("digit-prediction")).to_have_text(
        str(api_digit(server, data)["digit"])
    )
    assert page.get_by_test_id("digit-prediction").text_content() == "2"


def test_a_dropped_photo_is_read(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    data = (EXAMPLES / "7.png").read_bytes()
    transfer = page.evaluate_handle(
        """b64 => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], "7.png", { type: "image/png" }));
            return transfer;
        }""",
        base64.b64encode(data).decode(),
    )
    page.locator("#dropzone").dispatch_event("drop", {"dataTransfer": transfer})
    expect_status(page, "digit", "done")
    expect(page.get_by_test_id("digit-prediction")).to_have_text("7")
    assert api_digit(server, data)["digit"] == 7


def test_an_api_error_is_shown_in_words(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    junk = b"these are not the pixels you are looking for"
    detail = httpx.post(
        server.url + "/predict/digit", files={"image": ("notes.txt", junk, "text/plain")}
    ).json()["detail"]
    assert detail
    page.get_by_test_id("photo").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": junk}
    )
    expect_status(page, "digit", "error")
    error = page.get_by_test_id("digit-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(detail)
    expect(error).to_contain_text("HTTP 400")
    expect(page.get_by_test_id("digit-prediction")).to_have_text("")


# --- hours --------------------------------------------------------------------------------


def assert_probability_shown(page: Any, server: Any, hours: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("hours")).to_have_value(hours)
    expect_status(page, "hours-card", "done")
    answer = api_pass(server, hours)
    text = page.get_by_test_id("pass-probability").text_content()
    assert len(text.split(".")[-1]) == 3, text
    assert abs(float(text) - answer["probability"]) <= 0.0005 + 1e-9, (text, answer)
    expected = "pass" if answer["passed"] else "fail"
    expect(page.get_by_test_id("pass-verdict")).to_have_text(expected)


def test_the_slider_by_keyboard(open_page, server):
    page = open_page()
    slider = page.get_by_test_id("hours")
    assert_probability_shown(page, server, "4")
    slider.focus()
    page.keyboard.press("Home")
    assert_probability_shown(page, server, "0")
    for _ in range(25):
        page.keyboard.press("ArrowRight")
    assert_probability_shown(page, server, "2.5")
    page.keyboard.press("ArrowLeft")
    assert_probability_shown(page, server, "2.4")
    page.keyboard.press("End")
    assert_probability_shown(page, server, "10")
    assert page.locator("label[for=hours]").text_content().strip() == "Hours studied"


def test_the_slider_by_value(open_page, server):
    page = open_page()
    slider = page.get_by_test_id("hours")
    for hours in ("7", "1", "2.6", "0.1"):
        slider.fill(hours)
        assert_probability_shown(page, server, hours)


def test_points_are_shown_from_the_served_points_model(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    points = page.get_by_test_id("points-prediction")
    expect(points).to_be_visible()
    for hours in ("4", "6.5"):
        page.get_by_test_id("hours").fill(hours)
        answer = httpx.get(server.url + "/predict/points", params={"hours": hours}).json()
        expect(points).to_have_text(f"{answer['points']:.1f}")
        assert_probability_shown(page, server, hours)


def test_points_are_hidden_when_no_points_model_is_served(open_page, server):
    """Without a ``points`` model in /models (the browser's request interception takes
    it out), the page shows no points output."""
    from playwright.sync_api import expect

    def without_points(route: Any) -> None:
        body = route.fetch().json()
        body["models"] = [m for m in body["models"] if m["name"] != "points"]
        route.fulfill(json=body)

    page = open_page()
    page.route(lambda url: url == f"{server.url}/models", without_points)
    page.reload()
    expect(page.get_by_test_id("points-prediction")).to_be_hidden()
    assert_probability_shown(page, server, "4")


def test_the_sigmoid_curve_is_the_models_own(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    boundary = page.get_by_test_id("decision-boundary")
    expect(boundary).to_have_count(1)
    expect(page.get_by_test_id("half-line")).to_have_count(1)
    models = {m["name"]: m for m in httpx.get(server.url + "/models").json()["models"]}
    expected = models["pass"]["metrics"]["decision_boundary_hours"]
    assert abs(float(boundary.get_attribute("data-hours")) - expected) < 0.02
    points = page.locator("#sigmoid polyline").get_attribute("points").split()
    assert len(points) == 101


# --- models -------------------------------------------------------------------------------


def test_models_accuracy_confusion_matrix_and_training_curves(open_page, server):
    from playwright.sync_api import expect

    page = open_page()
    expect_status(page, "models", "done")
    models = httpx.get(server.url + "/models").json()["models"]
    digit = next(m for m in models if m["name"] == "digit")
    card = page.locator("[data-model=digit]")
    expect(card.locator("h3")).to_have_text(f"digit v{digit['version']}")
    expect(card.locator(".facts")).to_contain_text(
        f"test accuracy {100 * digit['metrics']['test_accuracy']:.1f} %"
    )
    matrix = digit["metrics"]["confusion_matrix"]
    cells = card.get_by_test_id("confusion-matrix").locator("tbody td")
    assert cells.all_text_contents() == [str(v) for row in matrix for v in row]
    for model in models:
        files = httpx.get(f"{server.url}/models/{model['name']}/{model['version']}/files")
        images = page.locator(f"[data-model={model['name']}] .curves img")
        expect(images).to_have_count(len(files.json()["files"]))
        for image in images.all():
            image.scroll_into_view_if_needed()
            expect(image).to_have_js_property("complete", True)
            assert image.evaluate("i => i.naturalWidth") > 0


# --- API docs, offline ----------------------------------------------------------------------


def test_swagger_ui_renders_the_operations_offline(open_page):
    from playwright.sync_api import expect

    page = open_page("/docs")
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible()
    paths = page.locator(".opblock-summary-path").all_text_contents()
    assert "/predict/digit" in paths and "/predict/pass" in paths and "/models" in paths


def test_redoc_renders_offline(open_page):
    from playwright.sync_api import expect

    page = open_page("/redoc")
    heading = page.get_by_role("heading", name="Classify one handwritten digit image")
    expect(heading).to_be_visible()
    expect(page.get_by_role("heading", name="P(pass) for hours studied")).to_be_visible()


# --- screenshots for the README ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "width", "height"), [("page-desktop", 1280, 900), ("page-phone", 390, 844)]
)
def test_screenshots(open_page, name, width, height):
    from playwright.sync_api import expect

    page = open_page("/", width=width, height=height)
    draw(page, DIGIT_STROKES[7])
    expect_status(page, "digit", "done")
    expect_status(page, "hours-card", "done")
    expect_status(page, "models", "done")
    expect(page.get_by_test_id("decision-boundary")).to_have_count(1)
    for image in page.locator(".curves img").all():
        image.scroll_into_view_if_needed()
        expect(image).to_have_js_property("complete", True)
    page.evaluate("window.scrollTo(0, 0)")
    # the page fits the width: nothing sticks out sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    png = page.screenshot(full_page=True, animations="disabled")
    (SCREENSHOTS / f"{name}.png").write_bytes(png)
    assert Image.open(io.BytesIO(png)).size[0] == width
    assert json.dumps(page.errors) == "[]"
    assert np.asarray(Image.open(io.BytesIO(png))).std() > 0

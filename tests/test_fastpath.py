"""The ASGI fast path answers exactly as the FastAPI routes do, and declines the rest.

Every request is sent twice, to an app with the fast path and to one without it
(``fast_path=False``: FastAPI's routes only), and the two answers must match byte for
byte. A spy on ``FastPredictRoutes.handle`` proves which path answered.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service.api import replies
from service.api.fastpath import simple_hours
from service.app import DigitpassAPI, create_app
from service.settings import Settings

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
COMPARED_HEADERS = ("content-type", "content-length", "retry-after", "connection")
UPLOAD_LIMIT = 64 * 1024
PIXEL_LIMIT = 1_000_000


class Spy:
    """Records what ``handle`` returned for each request (True: the fast path answered)."""

    def __init__(self, app: DigitpassAPI) -> None:
        assert app.fast_routes is not None
        self.answered: list[bool] = []
        original = app.fast_routes.handle

        async def handle(scope: Any, receive: Any, send: Any) -> bool:
            answered = await original(scope, receive, send)
            if scope["type"] == "http":
                self.answered.append(answered)
            return answered

        app.fast_routes.handle = handle


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[TestClient, TestClient, Spy]]:
    """Both apps, on the committed models (read only: reloading is off)."""

    def settings(fast_path: bool) -> Settings:
        return Settings(
            model_repository=MODELS_DIR,
            reload_interval_s=0,
            max_upload_bytes=UPLOAD_LIMIT,
            max_image_pixels=PIXEL_LIMIT,
            fast_path=fast_path,
        )

    fast_app, slow_app = create_app(settings(True)), create_app(settings(False))
    with (
        TestClient(fast_app, raise_server_exceptions=False) as fast,
        TestClient(slow_app, raise_server_exceptions=False) as slow,
    ):
        assert slow_app.fast_routes is None
        yield fast, slow, Spy(fast_app)


def png(size: tuple[int, int] = (64, 64), color: int = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def raw(data: object, content_type: str | None = "image/png") -> dict[str, object]:
    headers = {} if content_type is None else {"content-type": content_type}
    return {"content": data, "headers": headers}


def chunked(total: int) -> Iterator[bytes]:
    for _ in range(total // 1024):
        yield bytes(1024)


def same_answer(fast: TestClient, slow: TestClient, method: str, url: str, **kwargs: Any) -> Any:
    a = fast.request(method, url, **kwargs)
    b = slow.request(method, url, **kwargs)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    for name in COMPARED_HEADERS:
        assert a.headers.get(name) == b.headers.get(name), name
    return a


PASS_ANSWERED = ["4", "0", "10000", "2.5", "004.50", "9999.999999"]
PASS_DECLINED = ["", "?hours=", "?hours=10000.5", "?hours=-1", "?hours=1e3", "?hours=+4"]
PASS_DECLINED += ["?hours=4&x=1", "?hours=4&hours=5", "?hours=%34", "?hours=nan", "?Hours=4"]


@pytest.mark.parametrize("hours", PASS_ANSWERED)
def test_pass_queries_it_answers(clients, hours):
    fast, slow, spy = clients
    response = same_answer(fast, slow, "GET", f"/predict/pass?hours={hours}")
    assert spy.answered[-1] is True
    assert response.status_code == 200
    assert response.json()["hours"] == float(hours)


@pytest.mark.parametrize("query", PASS_DECLINED)
def test_pass_queries_it_leaves_to_fastapi(clients, query):
    fast, slow, spy = clients
    response = same_answer(fast, slow, "GET", f"/predict/pass{query}")
    assert spy.answered[-1] is False
    assert response.status_code in (200, 422)  # "4&x=1" and repeated hours are valid


def test_simple_hours_parses_only_plain_decimals():
    assert simple_hours(b"hours=4") == 4.0
    assert simple_hours(b"hours=0.125") == 0.125
    assert simple_hours(b"hours=10000") == 10000.0
    for query in (b"hours=10000.01", b"hours=4.", b"hours=.5", b"hours=4 ", b"", b"x=4"):
        assert simple_hours(query) is None, query


def test_digit_answers_match(clients, mnist_pngs):
    fast, slow, spy = clients
    for data, label in mnist_pngs[:5]:
        files = {"image": ("d.png", data, "image/png")}
        response = same_answer(fast, slow, "POST", "/predict/digit", files=files)
        assert spy.answered[-1] is True
        assert response.json()["digit"] == label
        same_answer(fast, slow, "POST", "/predict/digit", **raw(data))
        assert spy.answered[-1] is True


DIGIT_ERRORS = {
    "empty body": (raw(b""), 400),
    "no content type": (raw(b"\x89PNG....", None), 415),
    "text/plain": (raw(b"hello", "text/plain"), 415),
    "form-urlencoded": (raw(b"x=1", "application/x-www-form-urlencoded"), 415),
    "not an image": (raw(b"hello, I am not an image"), 400),
    "no boundary": (raw(b"--x\r\n", "multipart/form-data"), 400),
    "broken multipart": (raw(b"garbage", "multipart/form-data; boundary=abc"), 400),
    "missing field": ({"files": {"picture": ("a.png", png(), "image/png")}}, 422),
    "text field": ({"data": {"image": "text"}, "files": {"x": ("a.png", b"1", "a/b")}}, 422),
    "empty file": ({"files": {"image": ("a.png", b"", "image/png")}}, 400),
    "blank white": (raw(png()), 422),
    "blank black": (raw(png(color=0)), 422),
    "declared over the limit": (raw(b"\x89PNG" + bytes(UPLOAD_LIMIT)), 413),
    "chunked over the limit": (raw(chunked(2 * UPLOAD_LIMIT)), 413),
    "pixels over the limit": (raw(png(size=(1001, 1000))), 413),
}


@pytest.mark.parametrize("case", DIGIT_ERRORS, ids=list(DIGIT_ERRORS))
def test_digit_errors_match(clients, case):
    fast, slow, spy = clients
    kwargs, status = DIGIT_ERRORS[case]
    if case == "chunked over the limit":  # a generator is used up by the first request
        kwargs = {**kwargs, "content": chunked(2 * UPLOAD_LIMIT)}
        response_fast = fast.post("/predict/digit", **kwargs)
        kwargs = {**kwargs, "content": chunked(2 * UPLOAD_LIMIT)}
        response_slow = slow.post("/predict/digit", **kwargs)
        assert (response_fast.status_code, response_fast.content) == (
            response_slow.status_code,
            response_slow.content,
        )
        response = response_fast
    else:
        response = same_answer(fast, slow, "POST", "/predict/digit", **kwargs)
    assert spy.answered[-1] is True
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)
    if case == "declared over the limit":
        assert response.headers["connection"] == "close"


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/predict/digit"), ("POST", "/predict/pass"), ("GET", "/predict/digits")],
)
def test_other_methods_and_routes_go_to_fastapi(clients, method, url):
    fast, slow, spy = clients
    response = same_answer(fast, slow, method, url)
    assert spy.answered[-1] is False
    assert response.status_code in (405, 415, 422)


def test_an_unexpected_error_is_a_json_500_both_ways(clients, mnist_pngs, monkeypatch):
    fast, slow, spy = clients

    def broken(*args: object) -> bytes:
        raise RuntimeError("a bug")

    monkeypatch.setattr(replies, "pass_reply", broken)
    monkeypatch.setattr(replies, "digit_reply", broken)
    response = same_answer(fast, slow, "GET", "/predict/pass?hours=4")
    assert spy.answered[-1] is True
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    response = same_answer(fast, slow, "POST", "/predict/digit", **raw(mnist_pngs[0][0]))
    assert response.status_code == 500


def metric(client: TestClient, route: str, method: str, status: int) -> float:
    wanted = f'digitpass_http_requests_total{{method="{method}",route="{route}",status="{status}"}}'
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_fast_answers_are_counted_under_the_route_template(clients, mnist_pngs):
    fast, _, spy = clients
    before_ok = metric(fast, "/predict/digit", "POST", 200)
    before_bad = metric(fast, "/predict/digit", "POST", 415)
    before_pass = metric(fast, "/predict/pass", "GET", 200)
    for _ in range(3):
        assert fast.post("/predict/digit", **raw(mnist_pngs[0][0])).status_code == 200
    assert fast.post("/predict/digit", **raw(b"x", "text/plain")).status_code == 415
    assert fast.get("/predict/pass?hours=3").status_code == 200
    assert spy.answered[-5:] == [True] * 5
    assert metric(fast, "/predict/digit", "POST", 200) == before_ok + 3
    assert metric(fast, "/predict/digit", "POST", 415) == before_bad + 1
    assert metric(fast, "/predict/pass", "GET", 200) == before_pass + 1


def run_asgi(
    client: TestClient, headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Call the app directly, in its own event loop; return what it sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict/digit",
        "raw_path": b"/predict/digit",
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    incoming = iter(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    return sent


def test_a_client_that_leaves_mid_upload_gets_no_answer_and_is_counted(clients):
    fast, _, spy = clients
    before = metric(fast, "/predict/digit", "POST", 499)
    headers = [(b"content-type", b"image/png"), (b"content-length", b"4000")]
    messages = [
        {"type": "http.request", "body": b"\x89PNG", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert run_asgi(fast, headers, messages) == []
    assert spy.answered[-1] is True
    assert metric(fast, "/predict/digit", "POST", 499) == before + 1


def test_an_invalid_content_length_is_400_both_ways(clients):
    fast, slow, _ = clients
    headers = [(b"content-type", b"image/png"), (b"content-length", b"12x")]
    body = [{"type": "http.request", "body": b"x", "more_body": False}]
    answers = [run_asgi(client, headers, list(body)) for client in (fast, slow)]
    assert answers[0] == answers[1]
    start, end = answers[0]
    assert start["status"] == 400 and (b"connection", b"close") in start["headers"]
    assert end["body"] == b'{"detail":"invalid Content-Length header"}'

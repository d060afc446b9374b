"""Requests whose exact answers (status, body, headers) are the HTTP contract.

``tests/data/http_contract.json`` holds the answers recorded from the service before
the serving-architecture change (``python -m tests.contract_cases --record``), and
``tests/test_http_contract.py`` requires today's service to give the same ones. The
digit answers were re-recorded once, deliberately, when replies gained ``uncertain``.
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

CONTRACT_FILE = Path(__file__).resolve().parent / "data" / "http_contract.json"
COMPARED_HEADERS = ("content-type", "content-length", "retry-after", "connection")
UPLOAD_LIMIT = 64 * 1024
PIXEL_LIMIT = 1_000_000


def png(size: tuple[int, int] = (64, 64), color: int = 255) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png() -> bytes:
    """A thick '1' on a 28x28 black canvas, fixed so that the recorded answer is stable."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[4:24, 12:16] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(
    fields: list[tuple[str, str | None, bytes]], boundary: str = "b0undary"
) -> dict[str, Any]:
    lines = []
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        lines.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        lines.append(data + b"\r\n")
    body = b"".join(lines) + f"--{boundary}--\r\n".encode()
    return {
        "content": body,
        "headers": {"content-type": f"multipart/form-data; boundary={boundary}"},
    }


def raw(data: bytes, content_type: str | None = "image/png") -> dict[str, Any]:
    return {
        "content": data,
        "headers": {} if content_type is None else {"content-type": content_type},
    }


def cases() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """name -> (method, url, httpx request keyword arguments)."""
    good = digit_png()
    json_headers = {"content-type": "application/json"}
    table: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for hours in ["4", "0", "10000", "2.5", "004.50", "9999.999999", "1e3", "+4", "%34"]:
        table[f"pass GET hours={hours}"] = ("GET", f"/predict/pass?hours={hours}", {})
    for query in ["", "?hours=", "?hours=abc", "?hours=nan", "?hours=inf", "?hours=-1"]:
        table[f"pass GET bad {query!r}"] = ("GET", f"/predict/pass{query}", {})
    for query in ["?hours=10000.5", "?hours=1e309", "?Hours=4", "?hours=4&hours=5"]:
        table[f"pass GET other {query!r}"] = ("GET", f"/predict/pass{query}", {})
    table["pass GET extra parameter"] = ("GET", "/predict/pass?hours=4&x=1", {})
    bodies: dict[str, Any] = {
        "ordered": {"hours": [7, 1, 3, 0, 10000]},
        "empty list": {"hours": []},
        "too many": {"hours": [1] * 1025},
        "string": {"hours": "4"},
        "mixed": {"hours": [1, "x"]},
        "negative": {"hours": [-1]},
        "no field": {},
        "a list": [1, 2],
        "null": {"hours": [None]},
    }
    for name, payload in bodies.items():
        table[f"pass POST {name}"] = ("POST", "/predict/pass", {"json": payload})
    table["pass POST NaN"] = (
        "POST",
        "/predict/pass",
        {"content": b'{"hours": [NaN]}', "headers": json_headers},
    )
    table["digit raw"] = ("POST", "/predict/digit", raw(good))
    table["digit multipart"] = ("POST", "/predict/digit", multipart([("image", "d.png", good)]))
    table["digits two"] = (
        "POST",
        "/predict/digits",
        multipart([("images", "a.png", good), ("images", "b.png", good)]),
    )
    table["digits bad second"] = (
        "POST",
        "/predict/digits",
        multipart([("images", "a.png", good), ("images", "b.png", b"not an image")]),
    )
    table["digits none"] = ("POST", "/predict/digits", multipart([("image", "a.png", good)]))
    table["digits raw"] = ("POST", "/predict/digits", raw(good))
    digit_errors: dict[str, dict[str, Any]] = {
        "empty body": raw(b""),
        "no content type": raw(b"\x89PNG....", None),
        "text/plain": raw(b"hello", "text/plain"),
        "form-urlencoded": raw(b"x=1", "application/x-www-form-urlencoded"),
        "not an image": raw(b"hello, I am not an image"),
        "truncated": raw(good[: len(good) // 2]),
        "no boundary": raw(b"--x\r\n", "multipart/form-data"),
        "broken multipart": raw(b"garbage", "multipart/form-data; boundary=abc"),
        "missing field": multipart([("picture", "a.png", png())]),
        "text field": multipart([("image", None, b"text"), ("x", "a.png", b"1")]),
        "empty file": multipart([("image", "a.png", b"")]),
        "blank white": raw(png()),
        "blank black": raw(png(color=0)),
        "declared over the limit": raw(b"\x89PNG" + bytes(UPLOAD_LIMIT)),
        "pixels over the limit": raw(png(size=(1001, 1000))),
        "invalid content-length": {
            "content": good,
            "headers": {"content-type": "image/png", "content-length": "abc"},
        },
    }
    for name, kwargs in digit_errors.items():
        table[f"digit {name}"] = ("POST", "/predict/digit", kwargs)
    table["GET /predict/digit"] = ("GET", "/predict/digit", {})
    table["GET /predict/digits"] = ("GET", "/predict/digits", {})
    table["unknown route"] = ("GET", "/nope", {})
    table["unknown model"] = ("GET", "/predict/nope?hours=4", {})
    table["healthz"] = ("GET", "/healthz", {})
    table["readyz"] = ("GET", "/readyz", {})
    return table


def answer(response: Any) -> dict[str, Any]:
    return {
        "status": response.status_code,
        "body": response.content.decode("utf-8", "replace"),
        "headers": {h: response.headers.get(h) for h in COMPARED_HEADERS},
    }


def record(models_dir: Path) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings(
        model_repository=models_dir,
        reload_interval_s=0,
        max_upload_bytes=UPLOAD_LIMIT,
        max_image_pixels=PIXEL_LIMIT,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        return {
            name: answer(client.request(method, url, **kwargs))
            for name, (method, url, kwargs) in cases().items()
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=CONTRACT_FILE)
    args = parser.parse_args()
    args.out.write_text(json.dumps(record(args.models), indent=1, sort_keys=True) + "\n")

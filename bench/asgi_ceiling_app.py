"""The ceiling of digitpass's model routes: its request handling, with no model behind it.

digitpass answers the model routes in plain ASGI, ahead of FastAPI's routing
(``service/http/router.py``), so the FastAPI ceiling (``bench/ceiling_app.py``) no
longer bounds it. This app does what the router does before and after the model: the
same query parser, the same size-limited body reader and multipart parser
(``service.http.inputs``, ``service.http.asgi``), and a constant JSON answer of the
same size, on the same uvicorn (``bench.launch``). What digitpass does beyond this is
the shared layers and the model: batching, preprocessing and inference.
"""

from __future__ import annotations

from typing import Any

from bench.payload import DIGIT_ANSWER, PASS_ANSWER
from service.errors import ServiceError
from service.http.asgi import declared_length_error, read_body, send_json
from service.http.errors import error_body
from service.http.inputs import HttpInput
from service.http.replies import json_bytes
from service.settings import Settings

MAX_BODY_BYTES = Settings.model_fields["max_upload_bytes"].default  # digitpass's default
PASS_REPLY = json_bytes(PASS_ANSWER)
DIGIT_REPLY = json_bytes(DIGIT_ANSWER)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path, method = scope["path"], scope["method"]
    try:
        if path == "/predict/pass" and method == "GET":
            hours = HttpInput(scope, b"").query_value("hours")
            if hours is None or not 0 <= float(hours) <= 10_000:
                await send_json(send, 422, error_body("query.hours: invalid"))
                return
            await send_json(send, 200, PASS_REPLY)
        elif path == "/predict/digit" and method == "POST":
            refused = declared_length_error(scope, MAX_BODY_BYTES)
            if refused is not None:
                raise refused
            body = await read_body(receive, MAX_BODY_BYTES)
            HttpInput(scope, body).upload("image")
            await send_json(send, 200, DIGIT_REPLY)
        elif path == "/healthz":
            await send_json(send, 200, b'{"status":"ok"}')
        else:
            await send_json(send, 404, error_body("Not Found"))
    except ServiceError as exc:
        await send_json(send, exc.status_code, error_body(exc.detail))

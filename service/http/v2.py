"""The Open Inference Protocol over REST (KServe V2, with Triton's extensions).

Plain ASGI, inside the shared layers (metrics, body limit), ahead of the model router:

* ``GET /v2``: server metadata; ``GET /v2/health/live``, ``GET /v2/health/ready``;
* ``GET /v2/models/{model}[/versions/{version}]``: model metadata;
* ``GET .../ready``, ``GET .../config`` (Triton's model configuration);
* ``POST .../infer``: JSON, or JSON then binary tensor data
  (``Inference-Header-Content-Length``).

Health and readiness answer with the status alone. Errors are ``{"error": "..."}``:
400 for a bad request, 404 for an unknown model or version, 413 over the body limit,
503 when a queue is full, 504 past the time limit (``service.http.errors`` words them,
in the shared layers).
"""

from __future__ import annotations

import json

from service.errors import MalformedRequest, ModelNotReady, NotFound, ServiceError
from service.http.asgi import ASGIApp, Receive, Scope, Send, header, read_body
from service.http.json_body import parse_json
from service.http.pipeline import ROUTE_KEY
from service.http.router import until_disconnect
from service.protocol.describe import model_config, model_metadata, server_metadata
from service.protocol.inference import infer
from service.protocol.messages import decode_json_data, request_from_json, response_to_rest
from service.serving.runtime import ServingRuntime

# Tensors nest one level per dimension; 32 is well above any model here.
MAX_JSON_DEPTH = 32

PREFIX = "/v2"
HEADER_LENGTH = b"inference-header-content-length"
MODEL_ACTIONS = frozenset({"ready", "config", "infer"})
_TEMPLATES = {
    None: "/v2/models/{model}",
    "ready": "/v2/models/{model}/ready",
    "config": "/v2/models/{model}/config",
    "infer": "/v2/models/{model}/infer",
}


async def respond(
    send: Send,
    status: int,
    body: bytes = b"",
    content_type: bytes | None = b"application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None and body:
        headers.append((b"content-type", content_type))
    headers += extra or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class V2Routes:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.runtime: ServingRuntime | None = None
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        await self._dispatch(scope, receive, send)  # errors: service.http.errors

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")[2:]  # after "", "v2"
        method = scope["method"]
        runtime = self.runtime
        if runtime is None:
            raise ModelNotReady("the service is starting")
        if not parts:
            scope[ROUTE_KEY] = "/v2"
            self._allow(method, "GET")
            await respond(send, 200, json.dumps(server_metadata()).encode())
            return
        if parts[0] == "health" and len(parts) == 2 and parts[1] in ("live", "ready"):
            scope[ROUTE_KEY] = f"/v2/health/{parts[1]}"
            self._allow(method, "GET", "HEAD")
            live = parts[1] == "live" or runtime.ready
            await respond(send, 200 if live else 503)
            return
        if parts[0] != "models" or len(parts) < 2:
            raise NotFound(f"no such endpoint: {scope['path'][:100]}")
        model, rest = parts[1], parts[2:]
        version = None
        if len(rest) >= 2 and rest[0] == "versions":
            version, rest = self._version(rest[1]), rest[2:]
        action = rest[0] if len(rest) == 1 and rest[0] in MODEL_ACTIONS else None
        if rest and action is None:
            raise NotFound(f"no such endpoint: {scope['path'][:100]}")
        template = _TEMPLATES[action]
        scope[ROUTE_KEY] = template.replace(
            "{model}", "{model}/versions/{version}" if version else "{model}"
        )
        if action == "infer":
            self._allow(method, "POST")
            await self._infer(scope, receive, send, runtime, model, version)
            return
        self._allow(method, "GET", *(("HEAD",) if action == "ready" else ()))
        if action == "ready":
            try:
                runtime.lookup(model, version)
            except ServiceError as exc:
                await respond(send, 400 if exc.status_code == 422 else exc.status_code)
                return
            await respond(send, 200)
            return
        served = runtime.lookup(model, version)
        document = (
            model_config(runtime, served) if action == "config" else model_metadata(runtime, served)
        )
        await respond(send, 200, json.dumps(document).encode())

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise MethodNotAllowed(f"method {method[:16]} not allowed here", allowed)

    @staticmethod
    def _version(raw: str) -> int:
        if not 0 < len(raw) <= 18 or not raw.isascii() or not raw.isdigit() or raw[0] == "0":
            raise MalformedRequest(f"version must be a positive whole number, not {raw[:20]!r}")
        return int(raw)

    async def _infer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        runtime: ServingRuntime,
        model: str,
        version: int | None,
    ) -> None:
        runtime.lookup(model, version)  # 404 before the body is read
        if header(scope, b"content-encoding") not in (None, "identity"):
            raise MalformedRequest("Content-Encoding is not supported: send the body as it is")
        body = await read_body(receive, self._max_body_bytes)
        declared = header(scope, HEADER_LENGTH)
        if declared is None:
            json_part, binary = body, b""
        else:
            plain = declared.isascii() and declared.isdigit() and len(declared) <= 18
            if not plain or int(declared) > len(body):  # (int() of 4300+ digits raises)
                raise MalformedRequest(
                    f"Inference-Header-Content-Length must be a number of bytes up to the "
                    f"body's {len(body)}"
                )
            length = int(declared)
            json_part, binary = body[:length], memoryview(body)[length:]
        parsed = await parse_json(
            json_part,
            offload=runtime.stage.run,
            convert=decode_json_data,
            max_depth=MAX_JSON_DEPTH,
            error=MalformedRequest,
        )
        request = request_from_json(parsed, binary)
        # What the request needs of the body, it holds (binary tensors are views of it):
        # the rest goes now, not when the work is done.
        del body, json_part, binary, parsed
        # Work that stops when its client goes away, as on the model routes.
        response = await until_disconnect(infer(runtime, model, version, request), receive)
        payload, header_length = response_to_rest(response)
        if header_length is None:
            await respond(send, 200, payload)
            return
        extra = [(HEADER_LENGTH, str(header_length).encode())]
        await respond(send, 200, payload, b"application/octet-stream", extra)


class MethodNotAllowed(ServiceError):
    status_code = 405

    def __init__(self, detail: str, allowed: tuple[str, ...]) -> None:
        super().__init__(detail, headers={"Allow": ", ".join(allowed)})

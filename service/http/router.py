"""The model routes, answered in plain ASGI ahead of FastAPI's routing.

Every served model brings its routes (``ModelKind.routes``: ``/predict/<name>`` and,
for some kinds, more). This router holds them in one dictionary keyed by method and
path, rebuilt whenever the served models change, so a request takes one lookup to
reach its route; anything else goes on to FastAPI unread. It runs inside the shared
layers (``service.http.pipeline``), which time it, limit its body and map its errors.

Two models may not claim the same path (a model named ``digits`` would take the batch
route of ``digit``): the model that claims it second is refused, with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from service.errors import InvalidInput, ModelNotReady
from service.http.asgi import ASGIApp, ClientGone, Receive, Scope, Send, read_body, send_json
from service.http.errors import error_body
from service.http.inputs import HttpInput
from service.http.json_body import INLINE_BYTES, parse_json
from service.http.pipeline import ROUTE_KEY
from service.http.replies import json_bytes
from service.models.kinds import Route
from service.models.kinds.base import PREDICT_PREFIX
from service.models.loaded import LoadedModel
from service.models.repository import version_of
from service.serving.runtime import ServingRuntime

NO_BODY_METHODS = frozenset({"GET", "HEAD"})
T = TypeVar("T")


def requested_version(raw: str | None) -> int | None:
    """``?version=N`` on a model route: a served version, or None for the default.

    Written as the repository names version folders (``version_of``: ASCII digits, no
    leading zero), as the V2 and gRPC front ends take it: ``01`` is refused everywhere.
    """
    if raw is None:
        return None
    version = version_of(raw)
    if version is None:
        raise InvalidInput("query.version: a version is a positive whole number")
    return version


class ModelRouter:
    def __init__(self, app: ASGIApp, runtime: ServingRuntime | None, max_body_bytes: int) -> None:
        self.app = app
        self.runtime = runtime
        self._max_body_bytes = max_body_bytes
        self._routes: dict[tuple[str, str], tuple[str, Route]] = {}
        self._methods: dict[str, list[str]] = {}
        self.generation = 0  # bumped on every rebuild (the OpenAPI document follows it)

    def routes(self) -> list[tuple[str, Route]]:
        return list(self._routes.values())

    def rebuild(self, models: Mapping[str, LoadedModel]) -> list[tuple[str, str]]:
        """Route every model in ``models``; return the (name, reason) of those refused."""
        claimed: dict[str, str] = {}
        table: dict[tuple[str, str], tuple[str, Route]] = {}
        refused = []
        # Models routed already keep their paths; a newcomer that collides is refused.
        routed = {name for name, _ in self._routes.values()}
        for name in sorted(models, key=lambda n: (n not in routed, n)):
            routes = models[name].kind.routes()
            clash = next((r.path for r in routes if claimed.get(r.path, name) != name), None)
            if clash is not None:
                refused.append(
                    (name, f"route {clash} is already served for model '{claimed[clash]}'")
                )
                continue
            for route in routes:
                claimed[route.path] = name
                table[(route.method, route.path)] = (name, route)
        methods: dict[str, list[str]] = {}
        for method, path in table:
            methods.setdefault(path, []).append(method)
        self._routes, self._methods = table, methods
        self.generation += 1
        return refused

    def _unavailable_model(self, scope: Scope) -> bool:
        """A path of a model folder that has no loadable version (yet): 503, not 404."""
        path = scope.get("path", "")
        if self.runtime is None or not path.startswith(PREDICT_PREFIX):
            return False
        return path[len(PREDICT_PREFIX) :] in self.runtime.registry.unavailable()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self._routes.get((scope.get("method"), scope.get("path")))
        if entry is None or scope["type"] != "http" or self.runtime is None:
            allowed = self._methods.get(scope.get("path", "")) if scope["type"] == "http" else None
            if allowed:
                scope[ROUTE_KEY] = scope["path"]
                headers = {"Allow": ", ".join(sorted(allowed))}
                await send_json(send, 405, error_body("Method Not Allowed"), headers)
                return
            if self._unavailable_model(scope):
                raise ModelNotReady(f"model '{scope['path'][len(PREDICT_PREFIX) :]}' is not loaded")
            await self.app(scope, receive, send)
            return
        name, route = entry
        scope[ROUTE_KEY] = route.path
        body = (
            b""
            if route.method in NO_BODY_METHODS
            else await read_body(receive, self._max_body_bytes)
        )
        request = HttpInput(scope, body)
        version = requested_version(request.query_value("version"))
        if len(body) > INLINE_BYTES and request.wants_json():
            # A large JSON body: parsed in a worker process, not on the event loop.
            request.parsed = await parse_json(body, offload=self.runtime.stage.run)
        decoded = route.decode(request)
        # The rows are copies out of the body (an upload's image part): let the body go
        # now rather than hold both while the work runs.
        del body, request
        work = self.runtime.predict(name, decoded.rows, version)
        if route.method in NO_BODY_METHODS:
            prediction = await work
        else:  # uploads: costly work that must stop when its client goes away
            prediction = await until_disconnect(work, receive)
        payload = prediction.kind.reply(route, decoded, prediction)
        await send_json(send, 200, json_bytes(payload))


async def until_disconnect(work: Awaitable[T], receive: Receive) -> T:
    """Await ``work``; if the client disconnects first, cancel it (the stage and the
    batcher then drop what is left of it) and raise :class:`ClientGone`.

    The body has been read, so ``receive`` now returns only at a disconnect. One task
    watches for it and cancels this one; the work itself runs here, in this task.
    """
    this = asyncio.current_task()
    assert this is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        message = await receive()
        if message["type"] == "http.disconnect":
            gone = True
            this.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            this.uncancel()  # our own cancellation, turned into ClientGone
            raise ClientGone from None
        raise
    finally:
        watcher.cancel()

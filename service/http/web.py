"""The web page, its static files, the model files it shows, and offline API docs.

``install_web(app)`` adds, in one call from the app factory:

* ``GET /``: the page (``service/static/index.html``), plain HTML, CSS and
  JavaScript with no CDN and no build step;
* ``GET /static/{filename}``: the page's own files, and under
  ``/static/docs/{filename}`` the Swagger UI and ReDoc bundles that the
  ``fastapi-offline`` package ships;
* ``GET /docs``, ``GET /docs/oauth2-redirect`` and ``GET /redoc``: the API docs,
  loading those bundles from this server only (the app is built with FastAPI's
  default, CDN-based ``docs_url`` and ``redoc_url`` turned off);
* ``GET /models/{name}/{version}/files``: ``{"files": [...]}``, the PNG files
  that a served version's ``metadata.json`` lists in ``artifacts`` (training curves);
* ``GET /models/{name}/{version}/files/{filename}``: one of those files.

A model file is served only for a version being served, when its verified metadata
lists it in ``artifacts`` (so its name is a plain file name, checked by the repository
contract), its name ends in ``.png``, and it is a regular file directly inside the
version folder, with no symbolic link on the way below the repository root (the
folders and the file resolve to themselves). Anything else is 404 ``{"detail": ...}``.
"""

from __future__ import annotations

import asyncio
import functools
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response

from service.errors import NotFound
from service.http.schemas import ErrorResponse
from service.models.repository import ModelVersion, version_of
from service.serving.runtime import ServingRuntime

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
DOCS_ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
_NO_CACHE = {"Cache-Control": "no-cache"}


router = APIRouter()


def _docs_assets_dir() -> Path:
    return Path(str(resources.files("fastapi_offline") / "static"))


def _file_reply(path: Path, headers: dict[str, str] | None = None) -> Response:
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return Response(path.read_bytes(), media_type=media_type, headers=headers or _NO_CACHE)


@functools.cache
def docs_asset_bytes(filename: str) -> bytes:
    """A docs bundle. ReDoc's sidebar shows a logo from its CDN, hidden when it fails to
    load: here it is an empty ``data:`` URL, so the page asks no other host at all."""
    data = (_docs_assets_dir() / filename).read_bytes()
    if filename == "redoc.standalone.js":
        data = data.replace(REDOC_CDN_LOGO, b"data:,")
    return data


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return _file_reply(STATIC_DIR / "index.html")


@router.get("/static/docs/{filename}", include_in_schema=False)
async def docs_asset(filename: str) -> Response:
    if filename not in DOCS_ASSETS:
        raise NotFound(f"no such file: {filename}")
    data = await asyncio.to_thread(docs_asset_bytes, filename)
    media_type = MEDIA_TYPES[Path(filename).suffix]
    return Response(data, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{filename}", include_in_schema=False)
async def static_file(filename: str) -> Response:
    if filename not in static_files():
        raise NotFound(f"no such file: {filename}")
    return await asyncio.to_thread(_file_reply, STATIC_DIR / filename)


@functools.cache
def static_files() -> frozenset[str]:
    """The page's files: what the package ships in ``service/static/``, and nothing else."""
    return frozenset(
        path.name for path in STATIC_DIR.iterdir() if path.is_file() and path.suffix in MEDIA_TYPES
    )


def served_version(runtime: ServingRuntime, name: str, version: str) -> ModelVersion:
    """The served version ``name``/``version``; ``NotFound`` otherwise."""
    served = runtime.served.get(name)
    if served is None or version_of(version) != served.model.number:
        raise NotFound(f"no served model version {name}/{version}")
    return served.model.version


def listed_pngs(root: Path, version: ModelVersion) -> list[str]:
    """The ``.png`` artifacts of ``version`` that are real files inside its folder."""
    return sorted(
        filename
        for filename in version.spec.artifacts
        if filename.lower().endswith(".png") and _model_file(root, version, filename) is not None
    )


def _model_file(root: Path, version: ModelVersion, filename: str) -> Path | None:
    """The file, if it and every folder down to it from ``root`` are what they seem."""
    expected = root.resolve() / version.name / str(version.version) / filename
    try:
        real = expected.resolve()
        return real if real == expected and real.is_file() else None
    except OSError:  # a name too long, say
        return None


def model_file(root: Path, version: ModelVersion, filename: str) -> Path:
    """A listed PNG of a served version, as a real path inside it; ``NotFound`` otherwise."""
    path = None
    if filename in version.spec.artifacts and filename.lower().endswith(".png"):
        path = _model_file(root, version, filename)
    if path is None:
        raise NotFound(f"no file {filename!r} in model version {version.name}/{version.version}")
    return path


def _runtime(request: Request) -> ServingRuntime:
    return request.app.state.runtime


def _repository(request: Request) -> Path:
    return Path(request.app.state.settings.model_repository)


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse}}


@router.get(
    "/models/{name}/{version}/files",
    tags=["operations"],
    summary="The PNG files (training curves) of a model version",
    responses=_NOT_FOUND,
)
async def model_files(request: Request, name: str, version: str) -> dict[str, list[str]]:
    served = served_version(_runtime(request), name, version)
    files = await asyncio.to_thread(listed_pngs, _repository(request), served)
    return {"files": files}


@router.get(
    "/models/{name}/{version}/files/{filename}",
    tags=["operations"],
    summary="One PNG file of a model version, as its metadata lists it",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}},
        **_NOT_FOUND,
    },
)
async def model_file_png(request: Request, name: str, version: str, filename: str) -> Response:
    served = served_version(_runtime(request), name, version)
    root = _repository(request)

    def read() -> Response:
        return _file_reply(model_file(root, served, filename))

    return await asyncio.to_thread(read)


def install_web(app: FastAPI) -> None:
    """Add the page, its files, the model-file routes and the offline docs to ``app``.

    Build ``app`` with ``docs_url=None, redoc_url=None``: this serves both instead.
    """
    app.include_router(router)
    openapi_url = app.openapi_url or "/openapi.json"
    oauth2_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{oauth2_url}",
            swagger_js_url=f"{root}/static/docs/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/static/docs/swagger-ui.css",
            swagger_favicon_url=f"{root}/static/docs/favicon.png",
            swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
        )

    @app.get(oauth2_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/static/docs/redoc.standalone.js",
            redoc_favicon_url=f"{root}/static/docs/favicon.png",
            with_google_fonts=False,
        )

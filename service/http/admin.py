"""Who may use the privileged routes (``POST /admin/reload``): a FastAPI dependency.

Secure by default:

* with ``DIGITPASS_ADMIN_TOKEN`` set, a request needs ``Authorization: Bearer <token>``;
  anything else, a missing, malformed or non-ASCII header included, gets 401 with
  ``WWW-Authenticate: Bearer``;
* without a token the routes are off (403, saying how to set one), unless the server
  listens on a loopback address only (``--host 127.0.0.1``, for local work). Behind a
  reverse proxy on the same host every client looks local: set a token there.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request

from service.errors import Forbidden, Unauthorized
from service.settings import Settings

BEARER = b"bearer "
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="digitpass admin"'}


def _presented_token(request: Request) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header, as raw bytes, or None."""
    raw = None
    for key, value in request.scope.get("headers", ()):
        if key == b"authorization":
            raw = value
            break
    if raw is None or raw[: len(BEARER)].lower() != BEARER:
        return None
    return raw[len(BEARER) :].strip()


def check_admin(settings: Settings, request: Request) -> None:
    """Raise 401 or 403 unless ``request`` may use an admin route."""
    token = settings.admin_token
    if token is None:
        if settings.listens_on_loopback_only():
            return
        raise Forbidden(
            "admin routes are off: no admin token is configured. Set DIGITPASS_ADMIN_TOKEN "
            "and send 'Authorization: Bearer <token>'"
        )
    presented = _presented_token(request)
    if presented is None or not secrets.compare_digest(presented, token.encode("ascii")):
        raise Unauthorized(
            "admin token required: Authorization: Bearer <token>", headers=dict(CHALLENGE)
        )


async def require_admin(request: Request) -> None:
    check_admin(request.app.state.settings, request)


AdminDep = Annotated[None, Depends(require_admin)]

"""Reply bodies as compact JSON bytes."""

from __future__ import annotations

import json
from typing import Any

_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def json_bytes(payload: dict[str, Any]) -> bytes:
    """Compact JSON. Answers are finite by construction; NaN would be a bug."""
    return _encode(payload).encode()

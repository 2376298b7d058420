"""JSON responses serialised with orjson (dataclasses, datetimes and enums included)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

JSON = "application/json"


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type=JSON, headers=headers)

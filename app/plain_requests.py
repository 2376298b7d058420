"""Binding the hot operations' requests without FastAPI's per-request machinery, with FastAPI's
outcomes.

For every request FastAPI solves the operation's dependency tree, parses the content type with
``email.message``, decodes the body with the standard ``json`` module and validates it; for
``POST /v1/screenings`` and ``POST /v1/screenings/evaluate``, the operations intake apps call
for every screening, that is a large share of the time the service spends on a request (see
docs/performance.md). A ``Binder`` builds an endpoint's arguments from a *plainly valid*
request: a JSON content type, a body that the body model accepts when it parses the JSON itself
(``model_validate_json``: no intermediate objects), header values that need no validation
beyond a pattern; for any other request it returns None. The fast lane
(``app/runtime/fast_lane.py``) calls the endpoint with those arguments, and hands every request
its binder declines to FastAPI's own handler, so every error response is exactly FastAPI's.

The values are those FastAPI would have passed: Pydantic's JSON parser reads every document
``json`` accepts and the model admits as ``json`` does (large integers exactly, NaN and
Infinity, the last of repeated keys, escapes), and refuses what ``json`` reads but JSON forbids
(a byte order mark, UTF-16, a lone surrogate), which then goes FastAPI's way;
``tests/api/test_plain_requests.py`` sends such bodies both ways.

Domain routers define their binders next to their endpoints with these helpers; nothing here
knows the HTTP runtime.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.security.caller import Caller

# The arguments of an endpoint for an authorized request (its caller), or None when the
# request is not plainly valid and FastAPI's handler must take it.
Binder = Callable[[Request, Caller], Awaitable[dict[str, Any] | None]]
Model = TypeVar("Model", bound=BaseModel)

_JSON_TYPES = frozenset({"application/json"})


async def plain_json_body(request: Request, model: type[Model]) -> Model | None:
    """The body as ``model`` if it is plainly valid JSON for it, else None."""
    content_type = first_header(request, b"content-type")
    if content_type is None or content_type.partition(";")[0].strip().lower() not in _JSON_TYPES:
        return None
    body = await request.body()
    if not body:
        return None
    try:
        return model.model_validate_json(body)
    except ValidationError:  # invalid JSON included: FastAPI reports it its own way
        return None


def first_header(request: Request, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as ``request.headers.get`` gives it,
    read from the raw ASGI list without building Starlette's ``Headers``."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


class Unplain(Exception):
    """A header value that FastAPI must validate (and perhaps refuse) itself."""


def plain_header(request: Request, name: str, pattern: re.Pattern[str]) -> str | None:
    """The single value of header ``name`` if it fully matches ``pattern``, None when it is
    absent; Unplain when it is repeated or does not match."""
    raw = name.encode("latin-1")
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    values = [value.decode("latin-1") for key, value in headers if key == raw]
    if not values:
        return None
    if len(values) > 1 or pattern.fullmatch(values[0]) is None:
        raise Unplain(name)
    return values[0]

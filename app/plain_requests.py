"""The hot operations without FastAPI's per-request machinery, with FastAPI's outcomes.

For every request FastAPI solves the operation's dependency tree, parses the content type with
``email.message``, decodes the body with the standard ``json`` module and validates it; for
``POST /v1/screenings`` and ``POST /v1/screenings/evaluate``, the operations intake apps call
for every screening, that is a large share of the time the service spends on a request (see
docs/performance.md). An endpoint marked ``@bound_directly(binder)`` is called by its route
(``GuardedRoute``) with the arguments the binder builds from a *plainly valid* request: a JSON
content type, a body that orjson decodes to what ``json`` would (no number of 19 digits or
more, which orjson and ``json`` read differently) and that the body model accepts, header
values that need no validation beyond a pattern. The values are those FastAPI would have
passed (the same model validated in the same mode from the same data). Any other request,
invalid or merely unusual, goes through FastAPI's own handler, so every error response is
exactly FastAPI's.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.audit.trail import Caller

Binder = Callable[[Request, Caller], Awaitable[dict[str, Any] | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Model = TypeVar("Model", bound=BaseModel)

BINDERS: dict[Callable[..., Any], Binder] = {}

# orjson reads integers beyond 64 bits as floats: a body with a run of 19 digits goes the
# standard way (every digit mapped to 0, then one substring search: a regex costs 15 times more)
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_NUMBER = b"0" * 19
_JSON_TYPES = frozenset({"application/json"})


def bound_directly(binder: Binder) -> Callable[[Endpoint], Endpoint]:
    """Let the route call the endpoint with ``binder``'s arguments when it returns any (None:
    FastAPI's handler takes the request). Apply below the route decorator."""

    def register(endpoint: Endpoint) -> Endpoint:
        BINDERS[endpoint] = binder
        return endpoint

    return register


async def plain_json_body(request: Request, model: type[Model]) -> Model | None:
    """The body as ``model`` if it is plainly valid JSON for it, else None."""
    content_type = request.headers.get("content-type")
    if content_type is None or content_type.partition(";")[0].strip().lower() not in _JSON_TYPES:
        return None
    body = await request.body()
    if not body or _LONG_NUMBER in body.translate(_DIGITS_AS_ZERO):
        return None
    try:
        return model.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


class Unplain(Exception):
    """A header value that FastAPI must validate (and perhaps refuse) itself."""


def plain_header(request: Request, name: str, pattern: re.Pattern[str]) -> str | None:
    """The single value of header ``name`` if it fully matches ``pattern``, None when it is
    absent; Unplain when it is repeated or does not match."""
    values = request.headers.getlist(name)
    if not values:
        return None
    if len(values) > 1 or pattern.fullmatch(values[0]) is None:
        raise Unplain(name)
    return values[0]

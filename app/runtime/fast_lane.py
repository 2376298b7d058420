"""The hot operations past the ASGI middleware stack, with the stack's outcomes.

Between the edge and a route, every request crosses FastAPI's and Starlette's middleware
stack: the server-error layer, the telemetry layer, FastAPI's body limit, the exception layer,
the exit stack and the router, each wrapping ``send`` once more, and then FastAPI's handler,
which solves the operation's dependencies and parses its body. For ``POST /v1/screenings`` and
``POST /v1/screenings/evaluate``, the operations intake apps call for every screening, crossing
them costs about as much as evaluating the answers (see docs/performance.md).

``FastLane`` sits between the edge and that stack, with the lanes ``app/main.py`` hands it:
each a route and the binder of its endpoint (``lanes_of``; the binders are the screenings
router's ``DIRECT_BINDERS``). A request for a lane whose body is declared within the body limit
(a Content-Length, no chunked body) is answered here by the functions the route itself calls:
``authorize``, the route's binder and its endpoint; CORS wraps this layer (app/runtime/cors.py),
so a browser's request takes the lane too and its answer still carries the CORS headers. An
error raised on the way is answered by the exception handler the stack would have chosen for it.
This is the only place where requests are bound directly. Every other request goes into the
stack untouched, and so does one whose body the binder finds not plainly valid, with the body
the lane read: FastAPI's own handler then answers it, without authorizing it a second time
(``authorize`` keeps the caller on the request state).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.plain_requests import Binder
from app.security.access import action_of, authorize
from app.security.actions import Action

ExceptionHandler = Callable[[Request, Any], Response | Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Lane:
    """One operation answered past the stack."""

    route: APIRoute
    action: Action
    binder: Binder
    endpoint: Callable[..., Awaitable[Response]]


def lanes_of(
    routes: Iterable[BaseRoute], binders: Mapping[Callable[..., Any], Binder]
) -> dict[str, Lane]:
    """A lane for each endpoint of ``binders``, by the path of its route in ``routes`` (a
    router's routes carry its prefix; it must be included without another). Each must be an
    authorized POST route without path parameters."""
    lanes: dict[str, Lane] = {}
    for route in routes:
        if isinstance(route, APIRoute) and route.endpoint in binders:
            action = action_of(route.dependant)
            if route.methods != {"POST"} or route.param_convertors or action is None:
                raise ValueError(f"{route.path} cannot have a lane")
            lanes[route.path] = Lane(route, action, binders[route.endpoint], route.endpoint)
    if len(lanes) != len(binders):
        raise ValueError("a binder's endpoint is not among the routes")
    return lanes


class FastLane:
    """Answer the plain requests of ``lanes``; pass everything else to ``app`` (the stack)."""

    def __init__(
        self, app: ASGIApp, application: FastAPI, lanes: Mapping[str, Lane], max_body_bytes: int
    ) -> None:
        self.app = app
        self.application = application
        self.max_body_bytes = max_body_bytes
        self.lanes = dict(lanes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = (
            self.lanes.get(get_route_path(scope))
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if lane is None or not self._plain(scope["headers"]):
            await self.app(scope, receive, send)
            return
        body, complete = await _read(receive)
        pending: Message | None = {"type": "http.request", "body": body, "more_body": not complete}

        async def replay() -> Message:
            """The body read here, once, then what the client sends next (its disconnect)."""
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()

        if not complete:  # the client went away: the stack sees what it sent, then that
            await self.app(scope, replay, send)
            return
        scope["route"] = lane.route  # what the router would set: the access line names it
        scope["endpoint"] = lane.endpoint
        scope["path_params"] = {}
        request = Request(scope, replay)
        request._body = body  # read whole already: where Request.body() keeps what it read
        try:
            caller = await authorize(request, lane.action)
            arguments = await lane.binder(request, caller)
            if arguments is None:  # not plainly valid: FastAPI's handler answers it
                await self.app(scope, replay, send)
                return
            response = await lane.endpoint(**arguments)
        except Exception as error:
            handler = self._handler(error)
            try:
                if handler is None:
                    raise
                response = await _answer(handler, request, error)
            except Exception as unhandled:  # as the server-error layer: 500, then re-raise
                handlers = self.application.exception_handlers
                server_error = handlers.get(500) or handlers[Exception]
                response = await _answer(server_error, request, unhandled)
                await response(scope, replay, send)
                raise
        await response(scope, replay, send)

    def _plain(self, headers: list[tuple[bytes, bytes]]) -> bool:
        """A single declared length within the body limit."""
        length: bytes | None = None
        for name, value in headers:
            if name == b"content-length":
                if length is not None:
                    return False
                length = value
            elif name == b"transfer-encoding":
                return False
        return length is not None and length.isdigit() and int(length) <= self.max_body_bytes

    def _handler(self, error: Exception) -> ExceptionHandler | None:
        """The handler the exception layer would call for ``error`` (by status for HTTP
        exceptions, then by class along the error's MRO); None for the server-error layer's."""
        handlers = self.application.exception_handlers
        if isinstance(error, StarletteHTTPException) and error.status_code in handlers:
            return handlers[error.status_code]
        for cls in type(error).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None


async def _answer(handler: ExceptionHandler, request: Request, error: Exception) -> Response:
    """What ``handler`` answers (Starlette allows plain and async handlers)."""
    response = handler(request, error)
    return await response if inspect.isawaitable(response) else response


async def _read(receive: Receive) -> tuple[bytes, bool]:
    """The whole body, and whether it arrived whole (False: the client disconnected)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks), True

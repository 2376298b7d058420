"""Every request answered within its deadline, and its body read within a shorter one.

A statement timeout bounds one database statement, but a request makes several, waits for a
pooled connection, a worker process or an identity provider: with PostgreSQL frozen, a read that
made three statements took three statement timeouts. ``Deadline`` bounds the request as a
whole. When ``request_seconds`` pass before the response has started, the work under way is
cancelled and the client gets 503 ``deadline-exceeded`` with Retry-After. A response already
started cannot be changed: the connection is closed.

The body has its own, shorter bound (``body_seconds``): a client that trickles its body, or
declares more than it sends and stalls, gets 408 ``request-timeout`` and its connection closed,
instead of holding a worker's connection and memory for the whole deadline.

Each request records when its body, then its answer, is due; one timer of the process checks
the requests under way every ``SWEEP_SECONDS`` and cancels those past due. A request therefore
costs a dictionary entry, not a timer, task or future of its own (those cost 7 to 20 % of an
evaluation's time, measured).

Malformed HTTP and slow *headers* never reach the application: uvicorn answers the first, and
the proxy in front must bound the second (docs/deployment.md, "Timeouts").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.errors import AppError, DeadlineExceeded, RequestTimeout

logger = logging.getLogger("carelevel.deadline")

# How long a client that met the deadline is asked to wait before retrying, in seconds.
RETRY_AFTER_SECONDS = 5

# The answer to an error raised outside the application's handlers, for a request's path.
EdgeProblem = Callable[[str, AppError], Response]


# How often the requests under way are checked against their deadlines: a request is stopped
# at most this long after its deadline.
SWEEP_SECONDS = 0.25


@dataclass(slots=True)
class _Request:
    due: float  # loop time by which the body (then the answer) must have come
    body_whole: bool
    started: bool = False  # the response has begun: it can no longer be replaced
    stopped: bool = False  # cancelled by this layer at its deadline


class Deadline:
    def __init__(
        self,
        app: ASGIApp,
        *,
        request_seconds: float,
        body_seconds: float,
        edge_problem: EdgeProblem,
    ) -> None:
        self.app = app
        self.request_seconds = request_seconds
        self.body_seconds = min(body_seconds, request_seconds)
        self.edge_problem = edge_problem
        self._under_way: dict[asyncio.Task[Any], _Request] = {}
        self._sweeping: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        if scope["type"] != "http" or task is None:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        body_whole = not _has_body(scope["headers"])
        request = _Request(
            arrived + (self.request_seconds if body_whole else self.body_seconds), body_whole
        )

        async def receive_tracked() -> Message:
            message = await receive()
            if not request.body_whole and (
                message["type"] != "http.request" or not message.get("more_body", False)
            ):
                request.body_whole = True
                request.due = arrived + self.request_seconds
            return message

        async def send_tracked(message: Message) -> None:
            request.started = True
            await send(message)

        self._under_way[task] = request
        if self._sweeping is None:
            self._sweeping = loop.call_later(SWEEP_SECONDS, self._sweep)
        try:
            await self.app(scope, receive_tracked, send_tracked)
            return
        except asyncio.CancelledError:
            if not request.stopped or task.uncancel() > 0:
                raise  # cancelled by the server (the client went away), not by this layer
        finally:
            del self._under_way[task]
        await self.edge_problem(scope["path"], self._problem(request))(scope, receive, send)

    def _sweep(self) -> None:
        """Stop every request past its deadline that has not begun its answer; check again
        while any is under way."""
        now = asyncio.get_running_loop().time()
        for task, request in self._under_way.items():
            if request.due <= now and not request.stopped and not request.started:
                request.stopped = True
                task.cancel()
        self._sweeping = (
            asyncio.get_running_loop().call_later(SWEEP_SECONDS, self._sweep)
            if self._under_way
            else None
        )

    def _problem(self, request: _Request) -> AppError:
        if not request.body_whole:
            return RequestTimeout(
                f"The request body did not arrive within {self.body_seconds:g} s.",
                headers={"Connection": "close"},
            )
        logger.warning("request stopped at its deadline of %g s", self.request_seconds)
        return DeadlineExceeded(
            f"The request was not answered within {self.request_seconds:g} s and was "
            "stopped; retry shortly.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request declares a body (a length over 0, or a chunked one)."""
    for name, value in headers:
        if name == b"content-length":
            return value not in (b"0", b"")
        if name == b"transfer-encoding":
            return True
    return False

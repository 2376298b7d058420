"""Every request answered within its deadline, and its body read within a shorter one.

A statement timeout bounds one database statement, but a request makes several, waits for a
pooled connection, a worker thread or an identity provider: with PostgreSQL frozen, a read that
made three statements took three statement timeouts. ``Deadline`` bounds the request as a
whole. When ``request_seconds`` pass before the response has started, the client gets 503
``deadline-exceeded`` with Retry-After at once, and the work under way is cancelled in the
background (its clean-up, such as returning a connection to a frozen database, may take longer,
and the client does not wait for it). A response already started cannot be changed: it is
left to finish.

The body has its own, shorter bound (``body_seconds``): a client that trickles its body, or
declares more than it sends and stalls, gets 408 ``request-timeout`` and its connection closed,
instead of holding a worker's connection and memory for the whole deadline. Where the body is
read inside the application (FastAPI's handlers), the error is answered there like any other;
where the fast lane reads it first, it reaches this layer and is answered here.

Malformed HTTP and slow *headers* never reach the application: uvicorn answers the first, and
the proxy in front must bound the second (docs/deployment.md, "Timeouts").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from fastapi import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.errors import AppError, DeadlineExceeded, RequestTimeout

logger = logging.getLogger("carelevel.deadline")

# How long a client that met the deadline is asked to wait before retrying, in seconds.
RETRY_AFTER_SECONDS = 5

# The answer to an error raised outside the application's handlers, for a request's path.
EdgeProblem = Callable[[str, AppError], Response]


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
        self.body_seconds = body_seconds
        self.edge_problem = edge_problem
        # Requests given up at their deadline, still unwinding (kept referenced until done).
        self._abandoned: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = answered_here = False

        async def send_unless_answered(message: Message) -> None:
            nonlocal started
            if answered_here:  # the request was given up: what it sends now goes nowhere
                return
            started = True
            await send(message)

        handling = asyncio.ensure_future(
            self.app(scope, _body_in_time(receive, self.body_seconds), send_unless_answered)
        )
        try:
            done, _ = await asyncio.wait((handling,), timeout=self.request_seconds)
        except asyncio.CancelledError:  # the server itself is cancelling this request
            handling.cancel()
            raise
        problem: AppError
        if done:
            try:
                handling.result()
                return
            except RequestTimeout as error:  # a body the fast lane was reading
                if started:
                    raise
                problem = error
        elif started:  # too late to answer otherwise: let the response finish
            await handling
            return
        else:
            handling.cancel()
            self._abandoned.add(handling)
            handling.add_done_callback(self._unwound)
            logger.warning("request stopped at its deadline of %g s", self.request_seconds)
            problem = DeadlineExceeded(
                f"The request was not answered within {self.request_seconds:g} s and was "
                "stopped; retry shortly.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        answered_here = True
        await self.edge_problem(scope["path"], problem)(scope, receive, send)

    def _unwound(self, task: asyncio.Task[None]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Retrieved so that asyncio does not report it; the type only (no request data).
            logger.warning(
                "a request stopped at its deadline ended with %s", type(task.exception()).__name__
            )


def _body_in_time(receive: Receive, seconds: float) -> Receive:
    """``receive``, raising RequestTimeout (408) when the body is not whole ``seconds`` after
    the request arrived. What is received after the body (a disconnect) waits unbounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    body_whole = False

    async def receive_in_time() -> Message:
        nonlocal body_whole
        if body_whole:
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {seconds:g} s.",
                headers={"Connection": "close"},
            ) from None
        body_whole = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return receive_in_time

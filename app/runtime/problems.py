"""The exception handlers: every error, from any layer below, answered as RFC 9457
problem+json (app/kernel/errors.py defines the errors and the problem body), or in the
representation a path prefix asks for (an OperationOutcome under /fhir/). Validation errors
list field paths and messages, never the submitted values.

A body over FastAPI's ``max_body_size`` (set in app/main.py) is refused by the framework as it
is read, with an ``HTTPException(413)`` answered here (``ProblemHandlers.too_large``). When the
body was *declared* too large (its Content-Length), Starlette replaces whatever the application
answers with a text/plain 413 of its own; ``ProblemHandlers.framework_refusals`` wraps the
middleware stack to give that refusal the same representation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.errors import (
    PROBLEM_BASE,
    PROBLEM_JSON,
    AppError,
    FieldProblem,
    MalformedJson,
    PayloadTooLarge,
    UnsupportedMediaType,
    field_problems,
)
from app.kernel.errors import problem_response as plain_problem

logger = logging.getLogger("carelevel.errors")

# Records the failure of a request (its status) where the caller was authenticated.
FailureHook = Callable[[Request, int], Awaitable[None]]
# The error body of a path prefix: (status, detail, field problems, extra members, headers).
Representation = Callable[
    [int, str, Sequence[FieldProblem] | None, dict[str, Any] | None, dict[str, str] | None],
    Response,
]


def _is_json_content_type(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _body_not_sent_as_json(request: Request, errors: Sequence[Any]) -> bool:
    """FastAPI hands an endpoint the raw bytes when the content type is not JSON (or missing,
    since it checks content types strictly); the model then fails on the body as a whole."""
    return not _is_json_content_type(request.headers.get("content-type")) and any(
        tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes | bytearray)
        for e in errors
    )


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts at the request's path (Starlette names only those of
    the first route that matches the path, and FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(request.url.path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


# SQLSTATE classes that mean "the database cannot serve now", not "this request is wrong":
# connection exceptions (08), the server shutting down, crashed or starting up (57P0x), too many
# connections (53300). A retry after a while succeeds, so they are 503 with Retry-After.
UNAVAILABLE_SQLSTATES = ("08", "57P", "53300")


def _database_is_unavailable(error: DBAPIError) -> bool:
    sqlstate = str(getattr(error.orig, "sqlstate", None) or "")
    return sqlstate.startswith(UNAVAILABLE_SQLSTATES)


class ProblemHandlers:
    """The application's exception handlers. ``on_failure(request, status)`` runs for every
    failure an authenticated caller may be told of (the audit trail records it); a path that
    starts with a prefix of ``representations`` gets that representation of the error."""

    def __init__(
        self, on_failure: FailureHook, representations: Sequence[tuple[str, Representation]]
    ) -> None:
        self.on_failure = on_failure
        self.representations = tuple(representations)

    def install(self, app: FastAPI) -> None:
        """Every error leaves as a problem; nothing leaks a stack trace or a submitted value."""
        app.add_exception_handler(AppError, self.app_error)  # type: ignore[arg-type]
        app.add_exception_handler(RequestValidationError, self.validation)  # type: ignore[arg-type]
        app.add_exception_handler(StarletteHTTPException, self.http)  # type: ignore[arg-type]
        # Connection failures reach us unwrapped from the driver when a connection cannot even
        # be opened (asyncpg raises OSError / ConnectionRefusedError, or times out).
        for unavailable in (OSError, TimeoutError, PoolTimeoutError, OperationalError):
            app.add_exception_handler(unavailable, self.database_unavailable)
        app.add_exception_handler(DBAPIError, self.database_error)  # type: ignore[arg-type]
        app.add_exception_handler(Exception, self.unexpected)

    def problem(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        request: Request,
        *,
        errors: Sequence[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """The error as its path's representation has it, problem+json by default."""
        path = request.url.path
        for prefix, represent in self.representations:
            if path.startswith(prefix):
                return represent(status, detail, errors, extra, headers)
        return plain_problem(
            status, slug, title, detail, request, errors=errors, headers=headers, extra=extra
        )

    def malformed_json(self, request: Request) -> Response:
        """400: the body is not JSON at all (as opposed to JSON that fails validation: 422)."""
        return self.problem(
            MalformedJson.status,
            MalformedJson.slug,
            MalformedJson.title,
            "The request body could not be parsed as JSON.",
            request,
        )

    async def app_error(self, request: Request, error: AppError) -> Response:
        await self.on_failure(request, error.status)
        return self.problem(
            error.status,
            error.slug,
            error.title,
            error.detail,
            request,
            errors=error.errors,
            headers=error.headers,
            extra=error.extra,
        )

    async def validation(self, request: Request, error: RequestValidationError) -> Response:
        response = self._validation_problem(request, error)
        await self.on_failure(request, response.status_code)
        return response

    def _validation_problem(self, request: Request, error: RequestValidationError) -> Response:
        errors = error.errors()
        # FastAPI reports a body it could not decode as one error of type "json_invalid" at
        # ("body", <position>); it never reaches Pydantic, so nothing else is reported.
        if any(e.get("type") == "json_invalid" for e in errors):
            return self.malformed_json(request)
        if _body_not_sent_as_json(request, errors):
            return self.problem(
                415,
                UnsupportedMediaType.slug,
                UnsupportedMediaType.title,
                "Send the request body as application/json.",
                request,
            )
        problems = field_problems(errors)
        summary = "; ".join(f"{p.pointer[2:] or '(body)'}: {p.detail}" for p in problems[:5])
        return self.problem(
            422, "validation-error", "The request is invalid", summary, request, errors=problems
        )

    def too_large(self, path: str, limit: int) -> Response:
        """413: the body is over the ``limit`` that applies to ``path``. The connection is
        closed after the answer, since the rest of the body is never read."""
        detail = f"The request body exceeds the limit of {limit} bytes."
        return self.edge_problem(path, PayloadTooLarge(detail, headers={"Connection": "close"}))

    def edge_problem(self, path: str, error: AppError) -> Response:
        """``error``, raised outside the application's handlers (the body limit, the request's
        deadline), as ``path``'s representation has it."""
        for prefix, represent in self.representations:
            if path.startswith(prefix):
                return represent(error.status, error.detail, None, None, error.headers)
        body = {
            "type": PROBLEM_BASE + error.slug,
            "title": error.title,
            "status": error.status,
            "detail": error.detail,
        }
        return JSONResponse(body, error.status, error.headers, media_type=PROBLEM_JSON)

    async def http(self, request: Request, error: StarletteHTTPException) -> Response:
        await self.on_failure(request, error.status_code)
        limit: int | None = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
        if error.status_code == 413 and limit is not None:  # FastAPI's body limit
            return self.too_large(request.url.path, limit)
        if error.status_code == 400 and isinstance(error.__cause__, ValueError):
            # FastAPI's "error parsing the body" for bytes json.loads cannot even decode
            # (invalid UTF-8, for instance): still malformed JSON.
            return self.malformed_json(request)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        detail = error.detail if isinstance(error.detail, str) else "HTTP error"
        try:
            title = HTTPStatus(error.status_code).phrase
        except ValueError:
            title = detail
        return self.problem(
            error.status_code, "about:blank", title, detail, request, headers=headers
        )

    async def database_unavailable(self, request: Request, error: Exception) -> Response:
        logger.warning("database unavailable: %s", type(error).__name__)
        return self.problem(
            503,
            "temporarily-unavailable",
            "Temporarily unavailable",
            "The database is unavailable; retry shortly.",
            request,
            headers={"Retry-After": "5"},
        )

    async def database_error(self, request: Request, error: DBAPIError) -> Response:
        if error.connection_invalidated or _database_is_unavailable(error):
            return await self.database_unavailable(request, error)
        logger.error("database error: %s", type(error.orig).__name__)
        return await self._internal_error(request)

    async def unexpected(self, request: Request, error: Exception) -> Response:
        logger.error("unexpected error: %s", type(error).__name__)
        return await self._internal_error(request)

    async def _internal_error(self, request: Request) -> Response:
        await self.on_failure(request, 500)
        return self.problem(
            500, "internal-error", "Internal error", "An unexpected error occurred.", request
        )

    def framework_refusals(self, app: ASGIApp) -> ASGIApp:
        """``app`` (the middleware stack), with Starlette's own answer to a body declared over
        the limit (a text/plain 413, sent in place of the application's) replaced by
        ``too_large``'s."""

        async def refusals_represented(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            replaced = False

            async def send_represented(message: Message) -> None:
                nonlocal replaced
                if replaced:  # the body of Starlette's answer, already sent as ours
                    return
                limit: int | None = scope.get(MAX_BODY_SIZE_SCOPE_KEY)
                if limit is not None and _starlettes_refusal(message):
                    replaced = True
                    await self.too_large(scope["path"], limit)(scope, receive, send)
                    return
                await send(message)

            await app(scope, receive, send_represented)

        return refusals_represented


def _starlettes_refusal(message: Message) -> bool:
    """Whether ``message`` starts Starlette's own 413 (text/plain, "Content Too Large")."""
    return (
        message["type"] == "http.response.start"
        and message["status"] == 413
        and (b"content-type", b"text/plain; charset=utf-8") in message.get("headers", ())
    )

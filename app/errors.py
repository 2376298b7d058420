"""Errors as RFC 9457 problem details (application/problem+json).

    AppError                      status, stable type, title; detail per occurrence
    ├── BadRequest (400)          ├── Unauthorized (401)        ├── Forbidden (403)
    ├── NotFound (404)            ├── Conflict (409)            ├── PreconditionFailed (412)
    ├── PayloadTooLarge (413)     ├── UnsupportedMediaType (415)├── Unprocessable (422)
    ├── PreconditionRequired (428)├── TooManyRequests (429)     └── ServiceUnavailable (503)

Validation errors list field paths and messages, never the submitted values: answers are
health information. A body that is not JSON is 400 ``malformed-json``; a body sent with another
(or no) content type is 415; JSON that fails validation is 422 ``validation-error`` with
``errors[].pointer`` relative to the body (``#/answers/...``) or naming the parameter
(``#/query/limit``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
PROBLEM_BASE = "https://carelevel.dev/problems/"
logger = logging.getLogger("carelevel.errors")


class FieldProblem(BaseModel):
    pointer: str = Field(
        description="JSON Pointer to the offending field.",
        examples=["#/answers/respondent/age_group"],
    )
    detail: str = Field(description="What is wrong with it (never the submitted value).")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    type: str = Field(examples=[PROBLEM_BASE + "validation-error"])
    title: str = Field(examples=["The request is invalid"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["instruments.phq9.items: PHQ-9 item 9 must be one of 0, 1, 2, 3"])
    instance: str | None = Field(
        default=None, examples=["urn:uuid:6f1c0c8e-4c38-4a4c-9a07-1c1b3a2b4f10"]
    )
    errors: list[FieldProblem] | None = None


EXAMPLE_INSTANCE = "urn:uuid:6f1c0c8e-4c38-4a4c-9a07-1c1b3a2b4f10"


def problem_example(
    error: type[AppError],
    detail: str,
    *,
    summary: str | None = None,
    errors: Sequence[FieldProblem] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An OpenAPI Example object: the problem ``error`` answers with ``detail``."""
    value: dict[str, Any] = {
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": detail,
        "instance": EXAMPLE_INSTANCE,
    }
    if errors:
        value["errors"] = [e.model_dump() for e in errors]
    return {"summary": summary or error.title, "value": value | extra}


def named_examples(examples: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Example objects keyed by their problem type's slug (``-2``, ``-3`` … when repeated)."""
    named: dict[str, dict[str, Any]] = {}
    for example in examples:
        slug = str(example["value"].get("type", "example")).rsplit("/", 1)[-1]
        name, number = slug, 1
        while name in named:
            number += 1
            name = f"{slug}-{number}"
        named[name] = example
    return named


def problem(description: str, *examples: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI ``responses`` entry documenting a problem+json error response, with
    ``examples`` (``problem_example``); the OpenAPI document fills in a generic one without."""
    media: dict[str, Any] = {"examples": named_examples(examples)} if examples else {}
    return {
        "description": description,
        "model": Problem,
        "content": {"application/problem+json": media},
    }


def secured() -> dict[int | str, dict[str, Any]]:
    """The error responses every protected operation may give, for its OpenAPI ``responses``."""
    return {
        401: problem("Missing, invalid, expired or revoked credentials (with WWW-Authenticate)."),
        403: problem("The client lacks a scope this operation needs."),
        429: problem("The client's rate limit is spent; retry after `Retry-After` seconds."),
        503: problem("The database or the identity provider is unavailable; retry shortly."),
    }


class AppError(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "The request is malformed"


class MalformedJson(BadRequest):
    """A body FastAPI reads that is not JSON at all (JSON that fails validation is 422)."""

    slug, title = "malformed-json", "The body is not valid JSON"


class Unauthorized(AppError):
    """Missing or unacceptable credentials; carries the RFC 6750 challenge."""

    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str, *, error: str | None = "invalid_token") -> None:
        challenge = 'Bearer realm="carelevel"'
        if error is not None:
            challenge += f', error="{error}", error_description="{detail}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "The resource has changed"


class PrefetchMissing(AppError):
    """CDS Hooks: the data a service needs was not prefetched (and it does not fetch it)."""

    status, slug, title = 412, "prefetch-missing", "Required prefetch data is missing"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "request-too-large", "The request body is too large"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(AppError):
    status, slug, title = 422, "validation-error", "The request is invalid"


class IdempotencyKeyReused(Unprocessable):
    slug, title = "idempotency-key-reused", "Idempotency-Key reused with a different request"


class RequestInFlight(Conflict):
    slug, title = "idempotency-request-in-flight", "A request with this Idempotency-Key is running"


class PreconditionRequired(AppError):
    status, slug, title = 428, "precondition-required", "If-Match is required"


class TooManyRequests(AppError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(AppError):
    status, slug, title = 503, "temporarily-unavailable", "Temporarily unavailable"


def pointer(location: Iterable[str | int]) -> str:
    """A JSON Pointer (URI fragment form) for a Pydantic error location; ``#`` is the root."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location]
    return "#" + "".join("/" + part for part in parts)


def field_problems(errors: Iterable[Any]) -> list[FieldProblem]:
    """Field problems from Pydantic or FastAPI errors, without the submitted values. Body fields
    are pointed to from the body's root (``#/answers/...``, like every other problem about the
    body); query, header and path parameters keep their prefix (``#/query/limit``)."""
    problems = []
    for error in errors:
        location = tuple(error["loc"])
        if location[:1] == ("body",):
            location = location[1:]
        problems.append(FieldProblem(pointer=pointer(location), detail=error["msg"]))
    return problems


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


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str,
    request: Request | None = None,
    *,
    errors: Sequence[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    if request is not None and request.url.path.startswith("/fhir/"):
        return _operation_outcome(status, detail, errors, extra, headers)
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug != "about:blank" else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["instance"] = instance_uri(request_id)
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _operation_outcome(
    status: int,
    detail: str,
    errors: Sequence[FieldProblem] | None,
    extra: dict[str, Any] | None,
    headers: dict[str, str] | None,
) -> JSONResponse:
    """Under /fhir, FHIR clients get errors as an OperationOutcome."""
    from app.fhir.outcome import Issue, issue_json, operation_outcome

    issues = (extra or {}).get("issue")
    if issues is None and errors:
        issues = [
            issue_json(
                Issue(diagnostics=f"{e.pointer.lstrip('#/') or '(body)'}: {e.detail}"), status
            )
            for e in errors
        ]
    return JSONResponse(
        operation_outcome(status, detail, issues),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def instance_uri(request_id: str) -> str:
    """The problem's ``instance``: the request id, which the access log and the audit trail
    carry too (``urn:uuid:`` for our ids, a request id the caller chose otherwise)."""
    try:
        return uuid.UUID(request_id).urn
    except ValueError:
        return f"urn:carelevel:request:{request_id}"


async def audit_failure(request: Request, status: int) -> None:
    """Record the failure of an authenticated request in the audit trail."""
    from app.audit.trail import record_failure  # the trail's tables import this module's users

    caller = getattr(request.state, "caller", None)
    if caller is not None and status != 503:  # with the database away, the write would wait
        await record_failure(request.app.state.sessions, caller, status)


def malformed_json(request: Request) -> JSONResponse:
    """400: the body is not JSON at all (as opposed to JSON that fails validation: 422)."""
    return problem_response(
        MalformedJson.status,
        MalformedJson.slug,
        MalformedJson.title,
        "The request body could not be parsed as JSON.",
        request,
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


def install_error_handlers(app: FastAPI) -> None:
    """Every error leaves as problem+json; nothing leaks a stack trace or a submitted value."""

    @app.exception_handler(AppError)
    async def _app_error(request: Request, error: AppError) -> JSONResponse:
        await audit_failure(request, error.status)
        return problem_response(
            error.status,
            error.slug,
            error.title,
            error.detail,
            request,
            errors=error.errors,
            headers=error.headers,
            extra=error.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, error: RequestValidationError) -> JSONResponse:
        response = _validation_problem(request, error)
        await audit_failure(request, response.status_code)
        return response

    def _validation_problem(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = error.errors()
        # FastAPI reports a body it could not decode as one error of type "json_invalid" at
        # ("body", <position>); it never reaches Pydantic, so nothing else is reported.
        if any(e.get("type") == "json_invalid" for e in errors):
            return malformed_json(request)
        if _body_not_sent_as_json(request, errors):
            return problem_response(
                415,
                UnsupportedMediaType.slug,
                UnsupportedMediaType.title,
                "Send the request body as application/json.",
                request,
            )
        problems = field_problems(errors)
        summary = "; ".join(f"{p.pointer[2:] or '(body)'}: {p.detail}" for p in problems[:5])
        return problem_response(
            422, "validation-error", "The request is invalid", summary, request, errors=problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        await audit_failure(request, error.status_code)
        if error.status_code == 400 and isinstance(error.__cause__, ValueError):
            # FastAPI's "error parsing the body" for bytes json.loads cannot even decode
            # (invalid UTF-8, for instance): still malformed JSON.
            return malformed_json(request)
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        detail = error.detail if isinstance(error.detail, str) else "HTTP error"
        try:
            title = HTTPStatus(error.status_code).phrase
        except ValueError:
            title = detail
        return problem_response(
            error.status_code,
            "about:blank",
            title,
            detail,
            request,
            headers=headers,
        )

    # Connection failures reach us unwrapped from the driver when a connection cannot even be
    # opened (asyncpg raises OSError / ConnectionRefusedError, or times out).
    @app.exception_handler(OSError)
    @app.exception_handler(TimeoutError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(OperationalError)
    async def _database_unavailable(request: Request, error: Exception) -> JSONResponse:
        logger.warning("database unavailable: %s", type(error).__name__)
        return problem_response(
            503,
            "temporarily-unavailable",
            "Temporarily unavailable",
            "The database is unavailable; retry shortly.",
            request,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, error: DBAPIError) -> JSONResponse:
        if error.connection_invalidated or _database_is_unavailable(error):
            return await _database_unavailable(request, error)
        logger.error("database error: %s", type(error.orig).__name__)
        await audit_failure(request, 500)
        return problem_response(
            500, "internal-error", "Internal error", "An unexpected error occurred.", request
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.error("unexpected error: %s", type(error).__name__)
        await audit_failure(request, 500)
        return problem_response(
            500, "internal-error", "Internal error", "An unexpected error occurred.", request
        )

"""Errors as RFC 9457 problem details (application/problem+json).

    AppError                      status, stable type, title; detail per occurrence
    ├── BadRequest (400)          ├── Unauthorized (401)        ├── Forbidden (403)
    ├── NotFound (404)            ├── NotAcceptable (406)       ├── Conflict (409)
    ├── Gone (410)                ├── PreconditionFailed (412)  ├── PayloadTooLarge (413)
    ├── RequestTimeout (408)      ├── UnsupportedMediaType (415)├── Unprocessable (422)
    ├── PreconditionRequired (428)├── TooManyRequests (429)     └── ServiceUnavailable (503)
                                                                    └── DeadlineExceeded

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
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

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
        503: problem(
            "The database or the identity provider is unavailable, or the request reached its "
            "deadline; retry after `Retry-After` seconds."
        ),
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


class NotAcceptable(AppError):
    """None of the media types an operation offers is acceptable (``Accept``); the problem
    lists them in ``available``."""

    status, slug, title = 406, "not-acceptable", "No acceptable representation"


class RequestTimeout(AppError):
    """The body did not arrive in time (a slow or stalled client); the connection is closed."""

    status, slug, title = 408, "request-timeout", "The request body arrived too slowly"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "The request conflicts with the current state"


class Gone(AppError):
    status, slug, title = 410, "gone", "No longer available"


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


class DeadlineExceeded(ServiceUnavailable):
    """The request was not answered within its deadline, and what it was doing was stopped."""

    slug, title = "deadline-exceeded", "The request took too long"


def pointer(location: Iterable[str | int]) -> str:
    """A JSON Pointer (URI fragment form) for a Pydantic error location; ``#`` is the root."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in location]
    return "#" + "".join("/" + part for part in parts)


def field_problems(errors: Iterable[Any]) -> list[FieldProblem]:
    """Field problems from Pydantic or FastAPI errors, without the submitted values. Body fields
    are pointed to from the body's root (``#/answers/...``, like every other problem about the
    body); query, header and path parameters keep their prefix (``#/query/limit``)."""
    problems = []
    unknown: dict[tuple[str | int, ...], int] = {}  # unknown members seen, per object
    for error in errors:
        location = tuple(error["loc"])
        if location[:1] == ("body",):
            location = location[1:]
        detail = error["msg"]
        if error.get("type") == "extra_forbidden":
            # The member's name is the caller's text: point at its object and say which one
            # it is by position among the object's unknown members, never by the name.
            location = location[:-1]
            unknown[location] = unknown.get(location, 0) + 1
            detail = f"unknown member {unknown[location]} of this object is not allowed"
        problems.append(FieldProblem(pointer=pointer(location), detail=detail))
    return problems


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


def instance_uri(request_id: str) -> str:
    """The problem's ``instance``: the request id, which the access log and the audit trail
    carry too (``urn:uuid:`` for our ids, a request id the caller chose otherwise)."""
    try:
        return uuid.UUID(request_id).urn
    except ValueError:
        return f"urn:carelevel:request:{request_id}"

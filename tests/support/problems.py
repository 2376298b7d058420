"""The one assertion for RFC 9457 problem details."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://carelevel.dev/problems/"


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status`` (and type ``.../<slug>``) whose
    field errors name a pointer and a detail, never the submitted input; returns its body."""
    assert response.status_code == status, response.text[:1000]
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str), member
        assert body[member], member
    if slug is not None:
        assert body["type"] == PROBLEM_TYPE_BASE + slug, body["type"]
    for problem in body.get("errors") or []:
        assert set(problem) == {"pointer", "detail"}, problem  # never "input" or "ctx"
    return body


def pointers(problem: dict[str, Any]) -> list[str]:
    """The JSON pointers a problem's field errors name, in order."""
    return [error["pointer"] for error in problem.get("errors") or []]

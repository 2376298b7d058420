"""Errors under ``/fhir``: OperationOutcome resources (application/fhir+json), never a submitted
value in them, just what is wrong and where (a FHIRPath ``expression``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from app.kernel.errors import FHIR_JSON, AppError, FieldProblem

# HTTP status → OperationOutcome.issue.code (http://hl7.org/fhir/issue-type)
ISSUE_CODES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
    428: "required",
    429: "throttled",
    500: "exception",
    503: "transient",
}


@dataclass(frozen=True, slots=True)
class Issue:
    diagnostics: str
    expression: str | None = None
    code: str | None = None  # by the status when None
    severity: str = "error"


def item_expression(link_id: str) -> str:
    """The FHIRPath of an item of a QuestionnaireResponse by its linkId, at any depth."""
    return f"QuestionnaireResponse.repeat(item).where(linkId='{link_id}')"


class FhirError(AppError):
    """A problem with a FHIR request, with the issues to report."""

    slug, title = "fhir-invalid", "The FHIR request cannot be used"

    def __init__(self, status: int, detail: str, issues: list[Issue]) -> None:
        # The issues travel as a problem extension too (CDS Hooks answers problem+json).
        super().__init__(detail, extra={"issue": [issue_json(i, status) for i in issues]})
        self.status = status
        self.issues = issues


def issue_json(issue: Issue, status: int) -> dict[str, Any]:
    return {
        "severity": issue.severity,
        "code": issue.code or ISSUE_CODES.get(status, "processing"),
        "diagnostics": issue.diagnostics,
    } | ({"expression": [issue.expression]} if issue.expression else {})


def operation_outcome(
    status: int, detail: str, issues: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An OperationOutcome: the issues, or one issue carrying ``detail``."""
    return {
        "resourceType": "OperationOutcome",
        "issue": issues or [issue_json(Issue(diagnostics=detail), status)],
    }


def outcome_response(
    status: int,
    detail: str,
    errors: Sequence[FieldProblem] | None,
    extra: dict[str, Any] | None,
    headers: dict[str, str] | None,
) -> JSONResponse:
    """An error under /fhir/ as FHIR clients expect it: an OperationOutcome (its issues from
    ``extra["issue"]``, else one per field problem)."""
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

"""Helpers for the access-control specifications: every operation of the OpenAPI schema, so a
new endpoint is covered the moment it exists (no tests here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from app.security.principal import Scope
from tests.support.problems import assert_problem

PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/fhir/r4/metadata")}
UNKNOWN_ID = "0b3f2f7e-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    scopes: frozenset[Scope]

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    def path(self, **values: Any) -> str:
        """The template with its parameters filled (plausible values unless given)."""
        defaults = {
            "screening_id": UNKNOWN_ID,
            "client_id": UNKNOWN_ID,
            "program_id": UNKNOWN_ID,
            "referral_id": UNKNOWN_ID,
            "person_id": "p-unknown-person",
            "owner": "shared",
            "key": "iop-level-of-care",
            "version": 1,
            "questionnaire_id": "iop-level-of-care",
            "version_id": "shared.1",
            "observation_id": UNKNOWN_ID,
            "service_request_id": f"{UNKNOWN_ID}-referral",
            "code_system_id": "level-of-care",
            "value_set_id": "level-of-care",
            "naming_system_id": "screening-id",
            "structure_definition_id": "answer-source",
            "operation_id": "QuestionnaireResponse-evaluate",
            "service_id": "carelevel-iop-screening",
        }
        return self.template.format(**(defaults | values))


def operations(app: FastAPI) -> list[Operation]:
    """Every documented operation taking API credentials, with the scopes its security
    requirement names (the CDS Hooks endpoints take a CDS client's JWT instead: see
    test_cds_hooks.py)."""
    found = []
    for template, methods in app.openapi()["paths"].items():
        for method, operation in methods.items():
            requirement = (operation.get("security") or [{}])[0]
            if "cdsClient" in requirement:
                continue
            scopes = frozenset(Scope(s) for s in requirement.get("bearer", []))
            found.append(Operation(method.upper(), template, scopes))
    return found


def protected(app: FastAPI) -> list[Operation]:
    return [op for op in operations(app) if (op.method, op.template) not in PUBLIC]


def assert_refused(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """A refusal with ``status``: problem+json, or under /fhir an OperationOutcome. Returns
    the problem (for an OperationOutcome: its diagnostics as ``detail``)."""
    if response.request.url.path.startswith("/fhir/"):
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/fhir+json"
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        return {"detail": " ".join(i["diagnostics"] for i in outcome["issue"])}
    return assert_problem(response, status, slug)

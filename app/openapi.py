"""The OpenAPI document, completed where FastAPI's generator falls short of what the API does.

- Errors are problem+json only (FastAPI documents validation errors in its own JSON shape,
  and files a response model under application/json).
- Every operation that takes a body documents 400 (not JSON), 413 (too large) and 415 (not
  sent as JSON or YAML): the middleware and error handlers answer those before any route.
- Each protected operation says which scopes it needs in its description (Swagger UI shows
  scopes only for OAuth2 schemes).
- Rule-set documents, which routes read themselves (JSON or YAML), get their real schema
  (``DOCUMENT_REF``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from app.cds_hooks.schemas import FeedbackRequest, HookRequest
from app.engine.ruleset import RuleSetDocument
from app.errors import Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
OUTCOME_REF = {"$ref": "#/components/schemas/OperationOutcome"}
OPERATION_OUTCOME = {
    "type": "object",
    "title": "OperationOutcome",
    "description": "A FHIR R4 OperationOutcome: what is wrong and where (never the value sent).",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                    "expression": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
DOCUMENT_REF = {"$ref": "#/components/schemas/RuleSetDocument"}
_BODY_PROBLEMS = {
    "400": "The body is not valid JSON (or YAML where accepted).",
    "413": "The body is larger than the configured limit.",
    "415": "The body is not sent as application/json (or YAML where accepted).",
}


def _problem_response(description: str, fhir: bool = False) -> dict[str, Any]:
    """An error response: problem+json, or an OperationOutcome under /fhir."""
    media, schema = (
        ("application/fhir+json", OUTCOME_REF)
        if fhir
        else ("application/problem+json", PROBLEM_REF)
    )
    return {"description": description, "content": {media: {"schema": schema}}}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """A model read by a route itself (not a FastAPI body), with the models it uses."""
    document = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in document.pop("$defs", {}).items():
        if name in schemas and schemas[name] != definition:
            raise RuntimeError(f"two different schemas are called {name}")
        schemas[name] = definition
    schemas[model.__name__] = document


def complete_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema of ``app``, built once and kept."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        license_info=app.license_info,
        contact=app.contact,
    )
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for model in (RuleSetDocument, HookRequest, FeedbackRequest):
        _add_model(schemas, model)
    schemas["OperationOutcome"] = OPERATION_OUTCOME
    for path, operations in schema["paths"].items():
        fhir = path.startswith("/fhir/")
        for operation in operations.values():
            scopes = (operation.get("security") or [{}])[0].get("bearer")
            if scopes is not None:
                needed = ", ".join(f"`{scope}`" for scope in scopes) or "any valid credential"
                description = operation.get("description", "")
                operation["description"] = f"{description}\n\n**Needs:** {needed}.".strip()
            responses = operation.setdefault("responses", {})
            for response in responses.values():
                # ``problem()`` entries: FastAPI files the model's schema under its default
                # media type; these responses are problem+json only.
                content = response.get("content", {})
                if "application/problem+json" in content and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")
            if "422" in responses:
                content = responses["422"].get("content", {})
                if "application/json" in content:  # FastAPI's own validation error shape
                    responses["422"] = _problem_response("The request is invalid.", fhir)
            body = operation.get("requestBody")
            if body is None:
                continue
            for status, description in _BODY_PROBLEMS.items():
                responses.setdefault(status, _problem_response(description, fhir))
            responses.setdefault("422", _problem_response("The request is invalid.", fhir))
    app.openapi_schema = schema
    return schema

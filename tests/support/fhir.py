"""What the FHIR API tests share: the headers and address of ``$evaluate``, and checking that
a resource (or an error's OperationOutcome) is valid FHIR R4."""

from __future__ import annotations

import json
from typing import Any

import httpx
from fhir.resources.R4B import get_fhir_model_class

Json = dict[str, Any]
EVALUATE = "/fhir/r4/QuestionnaireResponse/$evaluate"
FHIR = {"content-type": "application/fhir+json"}


def valid(resource: Json) -> Json:
    """``resource``, after checking it is valid FHIR R4 (the R4B models: R4B = R4 here)."""
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


async def evaluate(client: httpx.AsyncClient, response: Json, **headers: str) -> httpx.Response:
    """``$evaluate`` of a QuestionnaireResponse, as FHIR JSON."""
    return await client.post(EVALUATE, content=json.dumps(response), headers=FHIR | headers)


def outcome(response: httpx.Response, status: int) -> list[Json]:
    """The issues of an OperationOutcome answered with ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body = valid(response.json())
    assert body["resourceType"] == "OperationOutcome"
    issues: list[Json] = body["issue"]
    return issues

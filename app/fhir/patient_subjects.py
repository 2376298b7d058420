"""The subjects a FHIR request names, for the routes a token bound to a patient may use
(app/security/patients.py): each must be that patient. Read before the handler runs, from the
query string or the body as sent; a body that is not what the operation takes names no one
(the request is refused before the handler would say why)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from fastapi import Request

from app.security.patients import PatientRule

_BARE_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def _reference(value: Any) -> str | None:
    """``reference`` of a Reference."""
    found = value.get("reference") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _parameters(body: Any, name: str) -> list[dict[str, Any]]:
    """The ``name`` parameters of a Parameters resource."""
    if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
        return []
    parameters = body.get("parameter")
    if not isinstance(parameters, list):
        return []
    return [p for p in parameters if isinstance(p, dict) and p.get("name") == name]


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None


def searched_subjects(parameters: list[tuple[str, str]]) -> list[str]:
    """The references of a search's ``subject`` and ``patient`` values (a bare id is a
    Patient's, as the search reads it)."""
    values = (
        part
        for name, value in parameters
        if name in ("subject", "patient") and value  # empty ones are ignored, as searched
        for part in value.split(",")
    )
    return [f"Patient/{value}" if _BARE_ID.fullmatch(value) else value for value in values]


def evaluated_subjects(body: Any) -> list[str | None]:
    """The subject of the QuestionnaireResponse ``$evaluate`` is sent, bare or as the
    ``questionnaire-response`` parameter (None for one that names none)."""
    responses = [p.get("resource") for p in _parameters(body, "questionnaire-response")]
    if isinstance(body, dict) and body.get("resourceType") == "QuestionnaireResponse":
        responses = [body]
    return [_reference(r.get("subject")) if isinstance(r, dict) else None for r in responses]


def populated_subjects(body: Any) -> list[str | None]:
    """The ``subject`` parameters of a ``$populate`` request."""
    return [_reference(p.get("valueReference")) for p in _parameters(body, "subject")]


def _named(subjects: list[str | None]) -> list[str] | None:
    """The subjects, None when one of them is not a reference (it names no one)."""
    named = [subject for subject in subjects if subject is not None]
    return named if len(named) == len(subjects) else None


async def _searched(request: Request) -> list[str]:
    return searched_subjects(request.query_params.multi_items())


async def _evaluated(request: Request) -> list[str] | None:
    return _named(evaluated_subjects(await _body(request)))


async def _populated(request: Request) -> list[str] | None:
    return _named(populated_subjects(await _body(request)))


SEARCHED = PatientRule(subjects=_searched)
EVALUATED = PatientRule(subjects=_evaluated)
POPULATED = PatientRule(subjects=_populated)
STORED = PatientRule(stored=True)

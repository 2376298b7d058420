"""``ValueSet/$expand``: the codes of one of carelevel's value sets, optionally filtered and
paged. Pure: the value sets are carelevel's own (app/fhir/terminology.py), each every code of
the code system of the same name, so an expansion is that code system's concepts.

``filter`` keeps the codes whose code or display contains the text (case-insensitive): FHIR
leaves the matching to the server. ``offset`` and ``count`` page the expansion
(``expansion.total`` is the number of codes that match, ``expansion.offset`` where the page
starts)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from app.fhir.terminology import CodeSystemSpec, Vocabulary, value_set_resource

MAX_COUNT = 1000
FILTER_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ExpansionRequest:
    filter: str | None = None
    offset: int = 0
    count: int | None = None  # None: every code from the offset


def expand(
    vocabulary: Vocabulary, spec: CodeSystemSpec, request: ExpansionRequest, timestamp: str
) -> dict[str, Any]:
    """The ValueSet of ``spec`` with its expansion (made at ``timestamp``)."""
    system = vocabulary.code_system(spec.id)
    wanted = (request.filter or "").casefold()
    codes = [
        (code, display)
        for code, display, _ in spec.concepts
        if not wanted or wanted in code.casefold() or wanted in display.casefold()
    ]
    end = None if request.count is None else request.offset + request.count
    parameters: list[dict[str, Any]] = [{"name": "offset", "valueInteger": request.offset}]
    if request.count is not None:
        parameters.append({"name": "count", "valueInteger": request.count})
    if request.filter:
        parameters.append({"name": "filter", "valueString": request.filter})
    value_set = value_set_resource(vocabulary, spec)
    value_set["expansion"] = {
        # Expansions are made afresh each time; the identifier names this one.
        "identifier": f"urn:uuid:{uuid.uuid4()}",
        "timestamp": timestamp,
        "total": len(codes),
        "offset": request.offset,
        "parameter": parameters,
        "contains": [
            {"system": system, "code": code, "display": display}
            for code, display in codes[request.offset : end]
        ],
    }
    return value_set

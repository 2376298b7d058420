"""``ValueSet/$expand``: the codes of one of carelevel's value sets, optionally filtered and
paged. Pure: the value sets are carelevel's own (app/fhir/terminology.py), each every code of
the code system of the same name, so an expansion is that code system's concepts.

``filter`` keeps the codes whose code or display contains the text (case-insensitive): FHIR
leaves the matching to the server. ``offset`` and ``count`` page the expansion
(``expansion.total`` is the number of codes that match, ``expansion.offset`` where the page
starts). Their errors are 400 OperationOutcomes naming the parameter, as for searches."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from app.fhir.outcome import FhirError, Issue
from app.fhir.terminology import CodeSystemSpec, Vocabulary, value_set_resource
from app.kernel.text import NO_CONTROL_CHARACTERS

MAX_COUNT = 1000
MAX_OFFSET = 10_000
FILTER_LENGTH = 200
_PLAIN = re.compile(NO_CONTROL_CHARACTERS)


@dataclass(frozen=True, slots=True)
class ExpansionRequest:
    filter: str | None = None
    offset: int = 0
    count: int | None = None  # None: every code from the offset


def expansion_request(
    filter_: str | None, offset: str | None, count: str | None
) -> ExpansionRequest:
    """The parameters of ``$expand`` as sent (query strings); 400 naming the one that cannot
    be used, never its value."""
    if filter_ is not None and (len(filter_) > FILTER_LENGTH or not _PLAIN.match(filter_)):
        raise _error("filter", f"at most {FILTER_LENGTH} characters, no control characters")
    return ExpansionRequest(
        filter=filter_ or None,
        offset=_whole("offset", offset, MAX_OFFSET) or 0,
        count=_whole("count", count, MAX_COUNT),
    )


def value_set_url(url: str | None) -> str:
    """``url`` of ``ValueSet/$expand``: required, a canonical without ``|version``."""
    if not url:
        raise _error("url", "is required: the value set's canonical URL")
    if len(url) > 500 or not _PLAIN.match(url) or "|" in url:
        raise _error("url", "must be a canonical URL without a version")
    return url


def _whole(name: str, value: str | None, most: int) -> int | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > most:
        raise _error(name, f"must be a whole number from 0 to {most}")
    return int(value)


def _error(parameter: str, problem: str) -> FhirError:
    return FhirError(
        400,
        f"The $expand parameter '{parameter}' cannot be used.",
        [Issue(diagnostics=f"{parameter}: {problem}", code="invalid")],
    )


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

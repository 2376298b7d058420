"""FHIR R4 (4.0.1) endpoints under /fhir/r4: the Questionnaire, QuestionnaireResponse
evaluation, stored results, and carelevel's code systems and value sets. Bodies and answers
are ``application/fhir+json``; errors are OperationOutcome resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from app import __version__
from app.fhir.examples import example_response
from app.fhir.expansion import FILTER_LENGTH, MAX_OFFSET, expand, expansion_request, value_set_url
from app.fhir.expansion import MAX_COUNT as EXPANSION_MAX_COUNT
from app.fhir.outcome import FhirError, Issue, issue_json, operation_outcome
from app.fhir.patient_subjects import EVALUATED, POPULATED, SEARCHED, STORED
from app.fhir.populate import answer_source_definition, populate
from app.fhir.populate_operation import (
    POPULATE_OPERATION,
    example_result,
    populate_operation_definition,
    populate_result,
    read_parameters,
    requested_questionnaire,
)
from app.fhir.questionnaire import parse_business_version
from app.fhir.response import ANSWERED
from app.fhir.search import (
    MAX_COUNT,
    ignored_entry,
    parse_search,
    parse_service_search,
    search_bundle,
    strict_handling,
    unknown_parameters,
)
from app.fhir.service import FhirService
from app.fhir.terminology import (
    FHIR_JSON,
    FHIR_VERSION,
    Vocabulary,
    code_system_resource,
    code_systems,
    value_set_resource,
)
from app.kernel.errors import NotAcceptable, NotFound, UnsupportedMediaType
from app.kernel.negotiation import accept_header, wants_other_than_json
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE
from app.security.access import GuardedRoute, access
from app.security.actions import Action
from app.security.caller import Caller

OUTCOME_REF = {"$ref": "#/components/schemas/OperationOutcome"}
RESOURCE = {"content": {FHIR_JSON: {"schema": {"type": "object"}}}}


def outcome(description: str, *examples: dict[str, Any]) -> dict[str, Any]:
    """An error response: an OperationOutcome, with ``examples`` (``outcome_example``, named by
    their issue code); the OpenAPI document fills in a generic one without."""
    media: dict[str, Any] = {"schema": OUTCOME_REF}
    if examples:
        named: dict[str, dict[str, Any]] = {}
        for example in examples:
            code = example["value"]["issue"][0]["code"]
            name, number = code, 1
            while name in named:
                number += 1
                name = f"{code}-{number}"
            named[name] = example
        media["examples"] = named
    return {"description": description, "content": {FHIR_JSON: media}}


def outcome_example(
    status: int,
    diagnostics: str,
    *,
    summary: str,
    expression: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """An OpenAPI Example object: the OperationOutcome carelevel answers ``status`` with."""
    issue = Issue(diagnostics=diagnostics, expression=expression, code=code)
    return {
        "summary": summary,
        "value": operation_outcome(status, diagnostics, [issue_json(issue, status)]),
    }


FHIR_ERRORS: dict[int | str, dict[str, Any]] = {
    401: outcome("Missing, invalid, expired or revoked credentials (with WWW-Authenticate)."),
    403: outcome("The client lacks a scope this operation needs."),
    429: outcome("The client's rate limit is spent; retry after `Retry-After` seconds."),
    503: outcome("The database is unavailable; retry shortly."),
}


def json_only(request: Request) -> None:
    """406 for a request that asks only for a format carelevel does not write (XML): better
    than JSON it cannot read. ``_format=json`` and the JSON types (or any type) are served."""
    if wants_other_than_json(
        accept_header(request.scope["headers"]), request.query_params.get("_format")
    ):
        raise NotAcceptable("carelevel writes FHIR as JSON only: accept application/fhir+json.")


FHIR_ERRORS[406] = outcome(
    "Only XML (or another format than JSON) was acceptable.",
    outcome_example(
        406,
        "carelevel writes FHIR as JSON only: accept application/fhir+json.",
        summary="XML asked for",
    ),
)

router = APIRouter(
    prefix="/fhir/r4",
    tags=["FHIR R4"],
    responses=FHIR_ERRORS,
    route_class=GuardedRoute,
    dependencies=[Depends(json_only)],
)
# The operations that carry the patient's chart ($populate): app/main.py gives them their own
# body limit (CARELEVEL_MAX_CHART_BODY_BYTES).
chart_router = APIRouter(
    prefix="/fhir/r4",
    tags=["FHIR R4"],
    responses=FHIR_ERRORS,
    route_class=GuardedRoute,
    dependencies=[Depends(json_only)],
)

FhirId = Annotated[str, Path(pattern=r"^[A-Za-z0-9\-.]{1,64}$", description="A FHIR id.")]

Canonical = Annotated[str | None, Query(max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")]
UsCore = Annotated[
    bool,
    Query(
        alias="us-core",
        description="`true`: the results must be US Core ones (Observation Screening "
        "Assessment, ServiceRequest, Provenance), so a response without `subject` is refused "
        "(422 naming `subject`) and nothing is stored. Also a `us-core` valueBoolean parameter "
        "in a Parameters body.",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="As on `POST /v1/screenings`: the same key and response store one screening.",
    ),
]


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def service(request: Request) -> FhirService:
    fhir: FhirService = request.app.state.fhir
    return fhir


def base_url(request: Request) -> str:
    configured: str | None = request.app.state.settings.public_url
    return configured or str(request.base_url).rstrip("/")


def searchset(
    base: str, found: list[dict[str, Any]], ignored: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A searchset Bundle of ``found``, each entry at its address under ``base``, and a
    warning of the ``ignored`` parameters."""
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(found),
        "entry": [
            {
                "fullUrl": f"{base}/fhir/r4/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in found
        ],
    }
    if ignored:
        bundle["entry"].append(ignored_entry(ignored))
    return bundle


def ignored_parameters(request: Request, *supported: str) -> tuple[str, ...]:
    """The query's parameters a search other than the results' does not support: ignored and
    reported, or refused (400) with ``Prefer: handling=strict``, as the results' search does."""
    return unknown_parameters(
        request.query_params.multi_items(),
        frozenset(supported),
        strict=strict_handling(request.headers.get("prefer")),
    )


def capability_statement(vocabulary: Vocabulary, base: str, today: str) -> dict[str, Any]:
    """The CapabilityStatement of this endpoint at ``base`` (``today``: its date)."""
    read = [{"code": "read"}]
    by_url = [{"name": "url", "type": "uri"}, {"name": "version", "type": "token"}]
    by_subject = [
        {"name": "subject", "type": "reference"},
        {"name": "patient", "type": "reference"},
        {"name": "identifier", "type": "token"},
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": today,
        "publisher": "carelevel",
        "kind": "instance",
        "software": {"name": "carelevel", "version": __version__},
        "implementation": {
            "description": "carelevel level-of-care screening (decision support, not a diagnosis)",
            "url": f"{base}/fhir/r4",
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "Authorization: Bearer <API key or access token>; "
                    "see docs/ehr-integration.md."
                },
                "resource": [
                    {
                        "type": "Questionnaire",
                        "interaction": [
                            {"code": "read"},
                            {"code": "vread"},
                            {"code": "search-type"},
                        ],
                        "searchParam": [
                            {"name": "url", "type": "uri"},
                            {"name": "version", "type": "token"},
                        ],
                        "operation": [
                            {
                                "name": "populate",
                                "definition": f"{vocabulary.base}/OperationDefinition/"
                                f"{POPULATE_OPERATION}",
                            }
                        ],
                    },
                    {
                        "type": "QuestionnaireResponse",
                        "operation": [
                            {
                                "name": "evaluate",
                                "definition": f"{vocabulary.base}/OperationDefinition/"
                                "QuestionnaireResponse-evaluate",
                            }
                        ],
                    },
                    {
                        "type": "Observation",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [
                            *by_subject,
                            {"name": "code", "type": "token"},
                            {"name": "date", "type": "date"},
                        ],
                    },
                    {
                        "type": "ServiceRequest",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [*by_subject, {"name": "code", "type": "token"}],
                    },
                    {
                        "type": "HealthcareService",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "_id", "type": "token"},
                            {"name": "active", "type": "token"},
                            {"name": "name", "type": "string"},
                            {"name": "service-category", "type": "token"},
                        ],
                    },
                    {
                        "type": "CodeSystem",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": by_url,
                    },
                    {
                        "type": "ValueSet",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": by_url,
                        "operation": [
                            {
                                "name": "expand",
                                "definition": "http://hl7.org/fhir/OperationDefinition/"
                                "ValueSet-expand",
                            }
                        ],
                    },
                    {
                        "type": "NamingSystem",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [{"name": "value", "type": "string"}],
                    },
                    {
                        "type": "StructureDefinition",
                        "interaction": [*read, {"code": "search-type"}],
                        "searchParam": [{"name": "url", "type": "uri"}],
                    },
                    {"type": "OperationDefinition", "interaction": read},
                ],
            }
        ],
    }


@router.get(
    "/metadata",
    operation_id="readCapabilityStatement",
    response_class=FhirResponse,
    summary="CapabilityStatement",
    description="What this FHIR R4 endpoint supports: the Questionnaire (read, vread, search), "
    "`QuestionnaireResponse/$evaluate`, the result Observations and ServiceRequests, and "
    "carelevel's code systems and value sets. Public, like the API docs: FHIR clients read it "
    "before they authenticate, and it holds no data.",
    responses={200: RESOURCE},
)
async def metadata(request: Request) -> FhirResponse:
    return FhirResponse(
        capability_statement(
            service(request).vocabulary, base_url(request), datetime.now(UTC).date().isoformat()
        )
    )


# --- Questionnaire --------------------------------------------------------------------------


def versioned(url: str | None, version: str | None) -> tuple[str | None, str | None] | None:
    """A canonical search's URL and version: ``url=<canonical>|<version>`` (FHIR's form) or
    ``url`` with ``version``. None: two versions that differ, which nothing matches."""
    if url is None or "|" not in url:
        return url, version
    url, _, pinned = url.partition("|")
    if pinned and version is not None and version != pinned:
        return None
    return url, pinned or version


def canonical_id(vocabulary: Vocabulary, url: str, kind: str) -> str | None:
    """The id a canonical URL of carelevel's names (under the canonical base or its former
    one, LEGACY_FHIR_CANONICAL_BASE), or None when it is not one of carelevel's."""
    for base in (vocabulary.base, LEGACY_FHIR_CANONICAL_BASE):
        prefix = f"{base}/{kind}/"
        if url.startswith(prefix) and "/" not in url[len(prefix) :]:
            return url[len(prefix) :] or None
    return None


async def _questionnaire_or_404(
    request: Request, caller: Caller, key: str, version: str | None
) -> dict[str, Any]:
    pin = parse_business_version(version) if version else None
    found = (
        await service(request).questionnaire(caller, key, pin)
        if (version is None or pin is not None)
        else None
    )
    if found is None:
        raise NotFound(f"No Questionnaire '{key}'" + (f" version '{version}'." if version else "."))
    return found


@router.get(
    "/Questionnaire/{questionnaire_id}",
    response_class=FhirResponse,
    summary="Read the Questionnaire",
    description="The Questionnaire of a rule set (`iop-level-of-care`) for the version that "
    "decides your tenant's screenings: your own active version of the key if you have one, "
    "else the shared one. `version` (and `meta.versionId`) name it, e.g. `shared.1`; cite "
    "`url|version` in a QuestionnaireResponse to have that version decide. Render it in the "
    "EHR or intake app; the answers go to `POST /fhir/r4/QuestionnaireResponse/$evaluate`. "
    "Any authenticated client may read it.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such Questionnaire.",
            outcome_example(404, "No Questionnaire 'iop-screening'.", summary="Unknown key"),
        ),
    },
)
async def read_questionnaire(
    request: Request,
    caller: Annotated[Caller, access(Action.QUESTIONNAIRE_READ)],
    questionnaire_id: FhirId,
) -> FhirResponse:
    return FhirResponse(await _questionnaire_or_404(request, caller, questionnaire_id, None))


@router.get(
    "/Questionnaire/{questionnaire_id}/_history/{version_id}",
    response_class=FhirResponse,
    summary="Read a version of the Questionnaire",
    description="The Questionnaire for a given rule-set version (`shared.1`, `clinic-a.3`): "
    "any published, active or retired version you can see. Use it to render exactly the "
    "questions of the version a stored QuestionnaireResponse cites.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such version.",
            outcome_example(
                404,
                "No Questionnaire 'iop-level-of-care' version 'shared.9'.",
                summary="Unknown version",
            ),
        ),
    },
)
async def vread_questionnaire(
    request: Request,
    caller: Annotated[Caller, access(Action.QUESTIONNAIRE_READ)],
    questionnaire_id: FhirId,
    version_id: FhirId,
) -> FhirResponse:
    return FhirResponse(await _questionnaire_or_404(request, caller, questionnaire_id, version_id))


@router.get(
    "/Questionnaire",
    response_class=FhirResponse,
    summary="Search Questionnaires",
    description="By canonical `url` (and `version`): a searchset Bundle, empty when nothing "
    "matches. Without `url`, the current Questionnaire of every rule set you screen with. "
    "Any authenticated client may search.",
    responses={200: RESOURCE},
)
async def search_questionnaires(
    request: Request,
    caller: Annotated[Caller, access(Action.QUESTIONNAIRE_READ)],
    url: Canonical = None,
    version: Canonical = None,
) -> FhirResponse:
    fhir = service(request)
    ignored = ignored_parameters(request, "url", "version")
    canonical = versioned(url, version)
    if canonical is None:
        return FhirResponse(searchset(base_url(request), [], ignored))
    url, version = canonical
    if url is not None:
        key = canonical_id(fhir.vocabulary, url, "Questionnaire")
        keys = [key] if key else []
    else:
        keys = fhir.rule_sets.active_keys(caller.tenant)
    found = []
    for key in keys:
        try:
            found.append(await _questionnaire_or_404(request, caller, key, version))
        except NotFound:
            continue
    return FhirResponse(searchset(base_url(request), found, ignored))


# --- QuestionnaireResponse/$evaluate ----------------------------------------------------------

EXAMPLE_RESPONSE = example_response(Vocabulary("https://carelevel.dev/fhir"))
# What the schema can say of a usable QuestionnaireResponse; the Questionnaire decides the rest
# (its linkIds and answer types: 422 naming the linkId), and FHIR R4 the datatypes (400).
QUESTIONNAIRE_RESPONSE_SCHEMA = {
    "type": "object",
    "description": "A FHIR R4 QuestionnaireResponse, completed or amended, answering the "
    "Questionnaire it cites (`GET /fhir/r4/Questionnaire`): its linkIds, answer types and rules.",
    "required": ["resourceType", "status"],
    "additionalProperties": True,  # the resource's other elements
    "properties": {
        "resourceType": {"const": "QuestionnaireResponse"},
        "status": {"enum": list(ANSWERED)},
        "questionnaire": {"type": "string", "description": "The Questionnaire's canonical URL."},
        "item": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["linkId"],
                "additionalProperties": True,
                "properties": {"linkId": {"type": "string", "minLength": 1}},
            },
        },
    },
}
EVALUATE_SCHEMA = {
    "oneOf": [
        QUESTIONNAIRE_RESPONSE_SCHEMA,
        {
            "type": "object",
            "description": "A Parameters resource whose first `questionnaire-response` "
            "parameter is the QuestionnaireResponse.",
            "required": ["resourceType", "parameter"],
            "additionalProperties": True,
            "properties": {
                "resourceType": {"const": "Parameters"},
                "parameter": {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "required": ["name", "resource"],
                        "additionalProperties": True,
                        "properties": {
                            "name": {"const": "questionnaire-response"},
                            "resource": QUESTIONNAIRE_RESPONSE_SCHEMA,
                        },
                    },
                },
            },
        },
    ]
}
EVALUATE_BODY = {
    "required": True,
    "description": "A QuestionnaireResponse (or a Parameters resource with it as the "
    "`questionnaire-response` parameter) answering the Questionnaire.",
    "content": {
        media: {
            "schema": EVALUATE_SCHEMA,
            "examples": {
                "questionnaire-response": {
                    "summary": "A completed intake: an adult suited to IOP",
                    "value": EXAMPLE_RESPONSE,
                },
                "parameters": {
                    "summary": "The same response as the operation's parameter",
                    "value": {
                        "resourceType": "Parameters",
                        "parameter": [
                            {"name": "questionnaire-response", "resource": EXAMPLE_RESPONSE}
                        ],
                    },
                },
            },
        }
        for media in (FHIR_JSON, "application/json")
    },
}


@router.post(
    "/QuestionnaireResponse/$evaluate",
    operation_id="evaluateQuestionnaireResponse",
    response_class=FhirResponse,
    summary="Evaluate a QuestionnaireResponse",
    description="Reads the answers, evaluates them under the cited Questionnaire version (or "
    "the one that decides your tenant's screenings), stores the screening exactly like "
    "`POST /v1/screenings` (same `Idempotency-Key`, tenant and audit) and returns the result "
    "as a `transaction` Bundle the EHR can POST to its own FHIR base as it is: the "
    "level-of-care Observation (with `hasMember` the instrument score Observations, "
    "`derivedFrom` the response), when a level is recommended and the response names its "
    "subject a ServiceRequest (`intent=proposal`), and a Provenance of them all. Each entry "
    "is a conditional create (`ifNoneExist`) on carelevel's identifier, so filing it twice "
    "creates nothing new; the results are readable here by their `id`. `us-core=true` "
    "refuses a response without `subject`. A response that cannot be used is an OperationOutcome "
    "naming the linkId at fault, and nothing is stored. Send an `Idempotency-Key` to make "
    "retries safe: the same key and response return the original Bundle "
    "(`Idempotent-Replayed: true`) and store one screening.",
    openapi_extra={"requestBody": EVALUATE_BODY},
    responses={
        200: RESOURCE,
        400: outcome(
            "Not JSON, or not a valid FHIR R4 QuestionnaireResponse.",
            outcome_example(400, "the body is not JSON", summary="Not JSON"),
            outcome_example(
                400,
                "QuestionnaireResponse.authored: Value error, DateTime value string does not "
                "match spec regex.",
                expression="QuestionnaireResponse.authored",
                summary="Not valid FHIR R4",
            ),
        ),
        409: outcome("A request with the same Idempotency-Key is still in progress."),
        415: outcome(
            "Not application/fhir+json or application/json.",
            outcome_example(415, "Send the resource as application/fhir+json.", summary="Not JSON"),
        ),
        422: outcome(
            "An unknown Questionnaire, version or linkId, a wrong answer type, a status other "
            "than completed or amended, or answers the questionnaire's rules refuse.",
            outcome_example(
                422,
                "linkId 'respondent.age': is not in the Questionnaire",
                expression="QuestionnaireResponse.repeat(item).where(linkId='respondent.age')",
                code="not-found",
                summary="An unknown linkId",
            ),
            outcome_example(
                422,
                "linkId 'respondent.age_group': the answer must be a valueCoding",
                expression="QuestionnaireResponse.repeat(item).where(linkId='respondent.age_group')",
                summary="A wrong answer type",
            ),
            outcome_example(
                422,
                "status must be completed or amended",
                expression="QuestionnaireResponse.status",
                code="business-rule",
                summary="Not completed",
            ),
        ),
    },
)
async def evaluate_response(
    request: Request,
    caller: Annotated[Caller, access(Action.SCREENING_CREATE, EVALUATED)],
    idempotency_key: IdempotencyKey = None,
    us_core: UsCore = False,
) -> FhirResponse:
    resource = await _fhir_body(request)
    if isinstance(resource, dict) and resource.get("resourceType") == "Parameters":
        parts = [p for p in resource.get("parameter") or [] if isinstance(p, dict)]
        us_core = us_core or _us_core_part(parts)
        resource = next(
            (p.get("resource") for p in parts if p.get("name") == "questionnaire-response"),
            None,
        )
    bundle, stored = await service(request).evaluate(
        caller, resource, idempotency_key, us_core=us_core
    )
    headers = {"Location": f"{base_url(request)}/fhir/r4/Observation/{stored.body['id']}"}
    if stored.replayed:
        headers["Idempotent-Replayed"] = "true"
    return FhirResponse(bundle, headers=headers)


def _us_core_part(parts: list[dict[str, Any]]) -> bool:
    """The ``us-core`` parameter of a Parameters body (false without one)."""
    for part in parts:
        if part.get("name") == "us-core":
            if not isinstance(part.get("valueBoolean"), bool):
                raise FhirError(
                    400,
                    "The us-core parameter must be a valueBoolean.",
                    [Issue(diagnostics="us-core must be a valueBoolean", expression="Parameters")],
                )
            return bool(part["valueBoolean"])
    return False


async def _fhir_body(request: Request) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in (FHIR_JSON, "application/json"):
        raise UnsupportedMediaType("Send the resource as application/fhir+json.")
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise FhirError(
            400, "The body is not valid JSON.", [Issue(diagnostics="the body is not JSON")]
        ) from None


# --- Questionnaire/$populate (SDC) ------------------------------------------------------------

POPULATE_DESCRIPTION = (
    "SDC pre-population from the chart the caller sends: a Parameters resource with `subject` "
    "(a Patient reference), `context` parts named `patient` (the Patient) and `chart` (a "
    "searchset or collection Bundle of Observations, Conditions, MedicationRequests and "
    "MedicationStatements), and optionally `response` (a partly answered "
    "QuestionnaireResponse, whose answers are kept). Returns Parameters with `response`, an "
    "`in-progress` QuestionnaireResponse whose pre-filled items carry the "
    "`{canonical base}/StructureDefinition/answer-source` extension naming their "
    "source resource, and `issues`. Chart resources not about the subject are ignored. "
    "Nothing is stored; a clinician reviews every pre-filled answer before the response goes "
    "to `$evaluate`."
)
POPULATE_EXAMPLE = {
    "resourceType": "Parameters",
    "parameter": [
        {"name": "subject", "valueReference": {"reference": "Patient/example"}},
        {
            "name": "context",
            "part": [
                {"name": "name", "valueString": "patient"},
                {
                    "name": "content",
                    "resource": {
                        "resourceType": "Patient",
                        "id": "example",
                        "gender": "female",
                        "birthDate": "1990-05-14",
                    },
                },
            ],
        },
    ],
}
POPULATE_BODY = {
    "required": True,
    "description": "A Parameters resource: `subject` (the patient), `context` parts `patient` "
    "(the Patient) and `chart` (a Bundle of the chart's resources), and optionally `response` "
    "(answers already given, kept) and `questionnaire` (a canonical).",
    "content": {
        media: {
            "schema": {
                "type": "object",
                "required": ["resourceType", "parameter"],
                "properties": {
                    "resourceType": {"const": "Parameters"},
                    "parameter": {"type": "array", "items": {"type": "object"}},
                },
            },
            "examples": {
                "patient": {
                    "summary": "The patient alone: age group and sex are pre-filled",
                    "value": POPULATE_EXAMPLE,
                }
            },
        }
        for media in (FHIR_JSON, "application/json")
    },
}

POPULATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Parameters: `response` (the pre-filled QuestionnaireResponse) and "
        "`issues`.",
        "content": {
            FHIR_JSON: {
                "schema": {"type": "object"},
                "examples": {
                    "populated": {
                        "summary": "Age, sex, heart rate and a diagnosis from the chart",
                        "value": example_result(Vocabulary("https://carelevel.dev/fhir")),
                    }
                },
            }
        },
    },
    400: outcome(
        "Not JSON, not a Parameters resource, or no subject.",
        outcome_example(400, "resourceType must be Parameters", summary="Not Parameters"),
    ),
    404: outcome(
        "No such Questionnaire.",
        outcome_example(404, "No Questionnaire 'iop-screening'.", summary="Unknown key"),
    ),
    413: outcome("The body is larger than `CARELEVEL_MAX_CHART_BODY_BYTES` (2 MiB by default)."),
    415: outcome(
        "Not application/fhir+json or application/json.",
        outcome_example(415, "Send the resource as application/fhir+json.", summary="Not JSON"),
    ),
    422: outcome(
        "A parameter this operation does not take, a context that is not a Patient or a "
        "searchset/collection Bundle, or a response to another Questionnaire.",
        outcome_example(
            422,
            "context chart: Bundle.type must be searchset or collection",
            expression="Parameters.parameter.where(name='context')",
            summary="A chart that is not a search result",
        ),
    ),
}


@chart_router.post(
    "/Questionnaire/$populate",
    operation_id="createPrefilledResponse",
    response_class=FhirResponse,
    summary="Pre-populate the Questionnaire from the chart",
    description=POPULATE_DESCRIPTION + " The Questionnaire is the `questionnaire` parameter's, "
    "the response's, or `iop-level-of-care`.",
    responses=POPULATE_RESPONSES,
    openapi_extra={"requestBody": POPULATE_BODY},
)
async def populate_questionnaire(
    request: Request, caller: Annotated[Caller, access(Action.SCREENING_CREATE, POPULATED)]
) -> FhirResponse:
    return await _populate(request, caller, None)


@chart_router.post(
    "/Questionnaire/{questionnaire_id}/$populate",
    operation_id="createPrefilledResponseForQuestionnaire",
    response_class=FhirResponse,
    summary="Pre-populate a Questionnaire from the chart",
    description=POPULATE_DESCRIPTION,
    responses=POPULATE_RESPONSES,
    openapi_extra={"requestBody": POPULATE_BODY},
)
async def populate_questionnaire_instance(
    request: Request,
    caller: Annotated[Caller, access(Action.SCREENING_CREATE, POPULATED)],
    questionnaire_id: FhirId,
) -> FhirResponse:
    return await _populate(request, caller, questionnaire_id)


async def _populate(request: Request, caller: Caller, instance: str | None) -> FhirResponse:
    fhir = service(request)
    asked = read_parameters(await _fhir_body(request), fhir.vocabulary)
    key, pin = requested_questionnaire(asked, instance, fhir.vocabulary)
    version = await fhir.questionnaire_version(caller, key, pin)
    if version is None:
        raise NotFound(f"No Questionnaire '{key}'.")
    response = populate(
        fhir.vocabulary,
        asked.chart,
        as_of=datetime.now(UTC),
        answered=asked.answered,
        questionnaire=f"{fhir.vocabulary.questionnaire(key)}|{version.business_version}",
    )
    response["subject"] = asked.subject
    return FhirResponse(populate_result(response, asked.ignored, fhir.vocabulary))


# --- stored results ---------------------------------------------------------------------------


@router.get(
    "/Observation/{observation_id}",
    response_class=FhirResponse,
    summary="Read a result Observation",
    description="The level-of-care Observation of a stored screening (its id is the "
    "screening's) or one of its score Observations (`<id>-phq9`, …), exactly as the "
    "`$evaluate` Bundle held it. Another tenant's ids answer 404, like ids that do not exist.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such Observation (in your tenant).",
            outcome_example(
                404,
                "No Observation with id '7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61'.",
                summary="Unknown id",
            ),
        ),
    },
)
async def read_observation(
    caller: Annotated[Caller, access(Action.SCREENING_READ, STORED)],
    observation_id: FhirId,
    request: Request,
) -> FhirResponse:
    return FhirResponse(await service(request).resource(caller, "Observation", observation_id))


@router.get(
    "/ServiceRequest/{service_request_id}",
    response_class=FhirResponse,
    summary="Read a proposed referral",
    description="The ServiceRequest (`intent=proposal`) of a stored screening: `<id>-referral`, "
    "a proposed referral to the recommended level that the EHR may turn into an order. Exists "
    "only when a level was recommended and the QuestionnaireResponse named its subject. A "
    "referral recorded from a screening (`POST /v1/screenings/{id}/referrals`) reads by its "
    "own id as an `intent=order` ServiceRequest whose `performer` is the program's "
    "HealthcareService. Another tenant's ids answer 404.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such ServiceRequest (in your tenant).",
            outcome_example(
                404,
                "No ServiceRequest with id '7d7c1b0e-52a8-4f0e-8f5f-3f1f8c9b2a61-referral'.",
                summary="Unknown id",
            ),
        ),
    },
)
async def read_service_request(
    caller: Annotated[Caller, access(Action.SCREENING_READ, STORED)],
    service_request_id: FhirId,
    request: Request,
) -> FhirResponse:
    return FhirResponse(
        await service(request).resource(caller, "ServiceRequest", service_request_id)
    )


async def _search_results(request: Request, caller: Caller, resource_type: str) -> FhirResponse:
    search = parse_search(
        resource_type,
        request.query_params.multi_items(),
        strict=strict_handling(request.headers.get("prefer")),
    )
    found, next_cursor = await service(request).search(caller, search)
    return FhirResponse(search_bundle(base_url(request), search, found, next_cursor))


SEARCH_ERRORS: dict[int | str, dict[str, Any]] = {
    200: RESOURCE,
    400: outcome(
        "A parameter that cannot be used: no subject, patient or identifier, a malformed value, a "
        "modifier, or (with `Prefer: handling=strict`) a parameter not supported.",
        outcome_example(
            400,
            "subject: search by subject or patient (Patient/123), or identifier",
            code="required",
            summary="No subject",
        ),
    ),
}
SEARCH_HOW = (
    " `subject` (or `patient`) is required unless `identifier` is given: `Patient/123`, an "
    "absolute reference exactly as the QuestionnaireResponse named it, or a bare id (a "
    "Patient's); comma-separated values match any. Newest first (`_sort=-date` may be "
    f"given); `_count` per page (default 20, at most {MAX_COUNT}), the `next` link for the "
    "page after. Unknown parameters are ignored and reported in an OperationOutcome entry "
    "(`search.mode = outcome`), or refused with `Prefer: handling=strict`. Only your "
    "tenant's results are found."
)


@router.get(
    "/Observation",
    operation_id="searchObservations",
    response_class=FhirResponse,
    summary="Search result Observations",
    description="The level-of-care and score Observations of the screenings evaluated from "
    "QuestionnaireResponses naming the subject, as a searchset Bundle. Also by `identifier` "
    "(`system|value`: carelevel's result-id, alone too, without a subject), `code` "
    "(`system|code`, `code`, `system|`) and `date` (`effectiveDateTime`, with prefixes eq, ne, "
    "gt, lt, ge, le: `date=ge2026-01-01&date=lt2026-02-01`)." + SEARCH_HOW,
    responses=SEARCH_ERRORS,
)
async def search_observations(
    request: Request, caller: Annotated[Caller, access(Action.SCREENING_READ, SEARCHED)]
) -> FhirResponse:
    return await _search_results(request, caller, "Observation")


@router.get(
    "/ServiceRequest",
    operation_id="searchServiceRequests",
    response_class=FhirResponse,
    summary="Search proposed referrals",
    description="The proposed referrals (`intent=proposal`) of the subject's screenings and "
    "the referrals recorded from them (`intent=order`), as a searchset Bundle; also by `code` "
    "and `identifier` (alone too)." + SEARCH_HOW,
    responses=SEARCH_ERRORS,
)
async def search_service_requests(
    request: Request, caller: Annotated[Caller, access(Action.SCREENING_READ, SEARCHED)]
) -> FhirResponse:
    return await _search_results(request, caller, "ServiceRequest")


# --- the program directory --------------------------------------------------------------------


@router.get(
    "/HealthcareService/{program_id}",
    response_class=FhirResponse,
    summary="Read a program of the directory",
    description="A program of your tenant's directory (`/v1/programs/{id}`, the same id) as a "
    "HealthcareService: its level of care as `category` (carelevel's `level-of-care` code), "
    "specialties, the populations it admits (`eligibility`), co-occurring capability and "
    "services (`program`), modality (`characteristic`), weekly hours (`availableTime`), "
    "languages (`communication`), its place (a contained Location) and whether it takes "
    "referrals, with the wait (`availabilityExceptions`). `meta.versionId` is the program's "
    "version; a retired program reads `active: false`. Another tenant's ids answer 404.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such program (in your tenant).",
            outcome_example(
                404,
                "No HealthcareService with id '0193a4f2-7c1e-7d3a-9b2e-5f6a7b8c9d0e'.",
                summary="Unknown id",
            ),
        ),
    },
)
async def read_healthcare_service(
    request: Request,
    caller: Annotated[Caller, access(Action.PROGRAM_READ)],
    program_id: FhirId,
) -> FhirResponse:
    return FhirResponse(await service(request).healthcare_service(caller, program_id))


@router.get(
    "/HealthcareService",
    operation_id="searchHealthcareServices",
    response_class=FhirResponse,
    summary="Search the program directory",
    description="Your tenant's programs as HealthcareServices in a searchset Bundle, oldest "
    "first: by `_id`, `active` (`true`: in use; `false`: retired), `name` (the name starts "
    "with the text) and `service-category` (the level of care: "
    "`intensive_outpatient`, or `system|code`); comma-separated values match any. The name "
    "search ignores the case of A to Z only: accented letters match as written (`Év`, not "
    "`ev`, finds `Évening IOP`). Pages of `_count` programs (default 20, at most 100); the "
    "`next` link gives the page after. Unknown parameters are ignored and reported in an "
    "OperationOutcome entry, or refused with `Prefer: handling=strict`.",
    responses={
        200: RESOURCE,
        400: outcome(
            "A parameter that cannot be used: a malformed value or a modifier (`name:exact`), "
            "a cursor this API did not give, or (with `Prefer: handling=strict`) a parameter "
            "not supported.",
            outcome_example(400, "active: must be true or false, given once", summary="Bad active"),
        ),
    },
)
async def search_healthcare_services(
    request: Request, caller: Annotated[Caller, access(Action.PROGRAM_LIST)]
) -> FhirResponse:
    search = parse_service_search(
        request.query_params.multi_items(),
        strict=strict_handling(request.headers.get("prefer")),
    )
    found, next_cursor = await service(request).healthcare_services(caller, search)
    return FhirResponse(search_bundle(base_url(request), search, found, next_cursor))


# --- terminology ------------------------------------------------------------------------------


def _terminology(request: Request, kind: str, identifier: str) -> dict[str, Any]:
    spec = code_systems().get(identifier)
    if spec is None or (kind == "ValueSet" and not spec.value_set):
        raise NotFound(f"No {kind} '{identifier}'.")
    vocabulary = service(request).vocabulary
    builder = code_system_resource if kind == "CodeSystem" else value_set_resource
    return builder(vocabulary, spec)


def _search_terminology(
    request: Request, kind: str, url: str | None, version: str | None
) -> dict[str, Any]:
    ignored = ignored_parameters(request, "url", "version")
    canonical = versioned(url, version)
    if canonical is None:
        return searchset(base_url(request), [], ignored)
    url, version = canonical
    wanted = None if url is None else canonical_id(service(request).vocabulary, url, kind)
    found = []
    for identifier, spec in code_systems().items():
        if kind == "ValueSet" and not spec.value_set:
            continue
        if url is not None and identifier != wanted:
            continue
        resource = _terminology(request, kind, identifier)
        if version is None or resource["version"] == version:
            found.append(resource)
    return searchset(base_url(request), found, ignored)


@router.get(
    "/CodeSystem/{code_system_id}",
    response_class=FhirResponse,
    summary="Read a code system",
    description="carelevel's code systems: `level-of-care`, `iop-verdict`, `urgency`, the "
    "answers of each choice question, …; each at `{canonical}/CodeSystem/{id}`. Load them "
    "into the EHR's terminology service to display the codes carelevel's resources carry.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such code system.",
            outcome_example(404, "No CodeSystem 'level-of-cares'.", summary="Unknown id"),
        ),
    },
)
async def read_code_system(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    code_system_id: FhirId,
) -> FhirResponse:
    return FhirResponse(_terminology(request, "CodeSystem", code_system_id))


@router.get(
    "/CodeSystem",
    response_class=FhirResponse,
    summary="Search code systems",
    description="Every carelevel code system as a searchset Bundle, or the one whose canonical "
    "`url` is given, `url=<canonical>|<version>` or with `version` (an empty Bundle when none "
    "is). The former canonical base (https://carelevel.dev/fhir) is accepted too.",
    responses={200: RESOURCE},
)
async def search_code_systems(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    url: Canonical = None,
    version: Canonical = None,
) -> FhirResponse:
    return FhirResponse(_search_terminology(request, "CodeSystem", url, version))


# Read as sent and checked by expansion_request: a bad value is a 400 naming the parameter,
# like the search parameters' errors, not the 422 of FastAPI's validation.
# The document states each rule (json_schema_extra is described, not enforced), so that a
# request the schema admits is one the operation accepts.
ExpandFilter = Annotated[
    str | None,
    Query(
        description=f"At most {FILTER_LENGTH} characters.",
        json_schema_extra={"maxLength": FILTER_LENGTH, "pattern": r"^[^\x00-\x1f\x7f]*$"},
    ),
]
ExpandOffset = Annotated[
    str | None,
    Query(
        description=f"0 to {MAX_OFFSET} (default 0).",
        json_schema_extra={"pattern": r"^(?:[0-9]{0,4}|10000)$"},
    ),
]
ExpandCount = Annotated[
    str | None,
    Query(
        description=f"0 to {EXPANSION_MAX_COUNT} (default: every code).",
        json_schema_extra={"pattern": r"^(?:[0-9]{0,3}|1000)$"},
    ),
]
EXPAND_DESCRIPTION = (
    "The codes of the value set, as the ValueSet with its `expansion`: `filter` keeps the "
    "codes whose code or display contains the text (case-insensitive), `offset` and `count` "
    "page them (`expansion.total` counts every code that matches)."
)

EXPAND_ERROR = outcome(
    "A parameter that cannot be used (a `count` or `offset` that is no whole number in range, "
    "a `filter` too long), named, never its value.",
    outcome_example(
        400, "count: must be a whole number from 0 to 1000", code="invalid", summary="Bad count"
    ),
)


def _expansion(
    request: Request,
    identifier: str | None,
    filter_: str | None,
    offset: str | None,
    count: str | None,
) -> FhirResponse:
    parameters = expansion_request(filter_, offset, count)
    spec = code_systems().get(identifier or "")
    if spec is None or not spec.value_set:
        raise NotFound("No such ValueSet.")
    return FhirResponse(
        expand(
            service(request).vocabulary,
            spec,
            parameters,
            datetime.now(UTC).isoformat(timespec="seconds"),
        )
    )


@router.get(
    "/ValueSet/$expand",
    operation_id="readValueSetExpansionByUrl",
    response_class=FhirResponse,
    summary="Expand a value set by its canonical URL",
    description=EXPAND_DESCRIPTION + " `url` (required) names the value set: its canonical "
    "URL, under the current canonical base or the former one.",
    responses={200: RESOURCE, 400: EXPAND_ERROR, 404: outcome("No value set with that URL.")},
)
async def expand_value_set_by_url(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    url: Annotated[
        str,
        Query(
            description="The value set's canonical URL (no `|version`).",
            json_schema_extra={
                "minLength": 1,
                "maxLength": 500,
                "pattern": r"^[^\x00-\x1f\x7f|]+$",
            },
        ),
    ],
    filter: ExpandFilter = None,
    offset: ExpandOffset = None,
    count: ExpandCount = None,
) -> FhirResponse:
    identifier = canonical_id(service(request).vocabulary, value_set_url(url), "ValueSet")
    return _expansion(request, identifier, filter, offset, count)


@router.get(
    "/ValueSet/{value_set_id}/$expand",
    operation_id="readValueSetExpansion",
    response_class=FhirResponse,
    summary="Expand a value set",
    description=EXPAND_DESCRIPTION,
    responses={200: RESOURCE, 400: EXPAND_ERROR, 404: outcome("No such value set.")},
)
async def expand_value_set(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    value_set_id: FhirId,
    filter: ExpandFilter = None,
    offset: ExpandOffset = None,
    count: ExpandCount = None,
) -> FhirResponse:
    return _expansion(request, value_set_id, filter, offset, count)


@router.get(
    "/ValueSet/{value_set_id}",
    response_class=FhirResponse,
    summary="Read a value set",
    description="`level-of-care` and `iop-verdict`: every code of the code system of the same "
    "name, for binding the level-of-care and IOP-verdict codes in an EHR.",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such value set.",
            outcome_example(404, "No ValueSet 'urgency'.", summary="Unknown id"),
        ),
    },
)
async def read_value_set(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    value_set_id: FhirId,
) -> FhirResponse:
    return FhirResponse(_terminology(request, "ValueSet", value_set_id))


@router.get(
    "/ValueSet",
    response_class=FhirResponse,
    summary="Search value sets",
    description="Every carelevel value set as a searchset Bundle, or the one whose canonical "
    "`url` is given, `url=<canonical>|<version>` or with `version` (an empty Bundle when none "
    "is). The former canonical base (https://carelevel.dev/fhir) is accepted too.",
    responses={200: RESOURCE},
)
async def search_value_sets(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    url: Canonical = None,
    version: Canonical = None,
) -> FhirResponse:
    return FhirResponse(_search_terminology(request, "ValueSet", url, version))


EVALUATE_OPERATION = "QuestionnaireResponse-evaluate"


def operation_definition(vocabulary: Vocabulary) -> dict[str, Any]:
    """The OperationDefinition of ``QuestionnaireResponse/$evaluate``."""
    operation_id = EVALUATE_OPERATION
    return {
        "resourceType": "OperationDefinition",
        "id": operation_id,
        "url": f"{vocabulary.base}/OperationDefinition/{operation_id}",
        "name": "EvaluateQuestionnaireResponse",
        "title": "Evaluate a QuestionnaireResponse",
        "status": "active",
        "kind": "operation",
        "description": "Evaluates the answers under carelevel's rule set, stores the "
        "screening and returns the result (level-of-care Observation, score Observations, "
        "proposed ServiceRequest). Decision support, not a diagnosis.",
        "code": "evaluate",
        "resource": ["QuestionnaireResponse"],
        "system": False,
        "type": True,
        "instance": False,
        "parameter": [
            {
                "name": "questionnaire-response",
                "use": "in",
                "min": 1,
                "max": "1",
                "type": "QuestionnaireResponse",
            },
            {
                "name": "us-core",
                "use": "in",
                "min": 0,
                "max": "1",
                "type": "boolean",
                "documentation": "true: results conforming to US Core; a response without "
                "subject is refused.",
            },
            {
                "name": "return",
                "use": "out",
                "min": 1,
                "max": "1",
                "type": "Bundle",
                "documentation": "A transaction Bundle to POST to the EHR's FHIR base.",
            },
        ],
    }


@router.get(
    "/OperationDefinition/{operation_id}",
    response_class=FhirResponse,
    summary="Read the $evaluate operation's definition",
    description="The OperationDefinition `QuestionnaireResponse-evaluate` that the "
    "CapabilityStatement points to: its input (`questionnaire-response`) and output (a "
    "Bundle).",
    responses={
        200: RESOURCE,
        404: outcome(
            "No such operation.",
            outcome_example(404, "No OperationDefinition 'evaluate'.", summary="Unknown id"),
        ),
    },
)
async def read_operation_definition(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    operation_id: FhirId,
) -> FhirResponse:
    if operation_id == POPULATE_OPERATION:
        return FhirResponse(populate_operation_definition(service(request).vocabulary))
    if operation_id != EVALUATE_OPERATION:
        raise NotFound(f"No OperationDefinition '{operation_id}'.")
    return FhirResponse(operation_definition(service(request).vocabulary))


# --- naming systems ---------------------------------------------------------------------------

# The identifier systems carelevel's resources cite, by id: what each identifies.
NAMING_SYSTEMS = {
    "screening-id": "A carelevel screening, by its id (a UUID): the identifier of the level-of-"
    "care Observation and of the screening under /v1/screenings/{id}.",
    "result-id": "A result resource of a carelevel screening (Observation, ServiceRequest), by "
    "its carelevel id: what an EHR files it under and finds it by again.",
}


def naming_system(vocabulary: Vocabulary, identifier: str, today: str) -> dict[str, Any]:
    """The NamingSystem of one of carelevel's identifier systems (its URI ``uniqueId``)."""
    return {
        "resourceType": "NamingSystem",
        "id": identifier,
        "name": "".join(part.capitalize() for part in identifier.split("-")),
        "status": "active",
        "kind": "identifier",
        "date": today,
        "publisher": "carelevel",
        "description": NAMING_SYSTEMS[identifier],
        "uniqueId": [
            {
                "type": "uri",
                "value": f"{vocabulary.base}/NamingSystem/{identifier}",
                "preferred": True,
            }
        ],
    }


@router.get(
    "/NamingSystem/{naming_system_id}",
    response_class=FhirResponse,
    summary="Read an identifier system",
    description="The identifier systems carelevel's resources cite: `screening-id` and "
    "`result-id`, each at `{canonical base}/NamingSystem/{id}`.",
    responses={200: RESOURCE, 404: outcome("No such naming system.")},
)
async def read_naming_system(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    naming_system_id: FhirId,
) -> FhirResponse:
    if naming_system_id not in NAMING_SYSTEMS:
        raise NotFound(f"No NamingSystem '{naming_system_id}'.")
    today = datetime.now(UTC).date().isoformat()
    return FhirResponse(naming_system(service(request).vocabulary, naming_system_id, today))


@router.get(
    "/NamingSystem",
    response_class=FhirResponse,
    summary="Search identifier systems",
    description="Every identifier system carelevel cites, or the one whose `value` (its URI, "
    "under the current canonical base or the former one) is given.",
    responses={200: RESOURCE},
)
async def search_naming_systems(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    value: Canonical = None,
) -> FhirResponse:
    ignored = ignored_parameters(request, "value")
    vocabulary = service(request).vocabulary
    wanted = None if value is None else canonical_id(vocabulary, value, "NamingSystem")
    today = datetime.now(UTC).date().isoformat()
    found = [
        naming_system(vocabulary, identifier, today)
        for identifier in NAMING_SYSTEMS
        if value is None or identifier == wanted
    ]
    return FhirResponse(searchset(base_url(request), found, ignored))


# --- structure definitions --------------------------------------------------------------------

# The one StructureDefinition carelevel defines: the extension marking pre-filled answers.
ANSWER_SOURCE = "answer-source"


@router.get(
    "/StructureDefinition/{structure_definition_id}",
    response_class=FhirResponse,
    summary="Read an extension definition",
    description="The extension `$populate` marks the answers it took from the chart with: "
    "`answer-source`, at `{canonical base}/StructureDefinition/answer-source`.",
    responses={200: RESOURCE, 404: outcome("No such StructureDefinition.")},
)
async def read_structure_definition(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    structure_definition_id: FhirId,
) -> FhirResponse:
    if structure_definition_id != ANSWER_SOURCE:
        raise NotFound(f"No StructureDefinition '{structure_definition_id}'.")
    return FhirResponse(answer_source_definition(service(request).vocabulary))


@router.get(
    "/StructureDefinition",
    response_class=FhirResponse,
    summary="Search extension definitions",
    description="The extensions carelevel defines, or the one whose canonical `url` is given "
    "(under the current canonical base or the former one).",
    responses={200: RESOURCE},
)
async def search_structure_definitions(
    request: Request,
    caller: Annotated[Caller, access(Action.TERMINOLOGY_READ)],
    url: Canonical = None,
) -> FhirResponse:
    ignored = ignored_parameters(request, "url")
    vocabulary = service(request).vocabulary
    wanted = None if url is None else canonical_id(vocabulary, url, "StructureDefinition")
    found = [answer_source_definition(vocabulary)] if url is None or wanted == ANSWER_SOURCE else []
    return FhirResponse(searchset(base_url(request), found, ignored))

"""The OpenAPI document, completed where FastAPI's generator falls short of what the API does.

- Errors are problem+json only (FastAPI documents validation errors in its own JSON shape,
  and files a response model under application/json); under /fhir they are OperationOutcomes.
- Every operation that takes a body documents 400 (not JSON), 413 (too large) and 415 (not
  sent as JSON or YAML): the middleware and error handlers answer those before any route.
- Each protected operation says which scopes it needs in its description (Swagger UI shows
  scopes only for OAuth2 schemes). Public operations document no 401, 403 or 429, and
  operations any credential may call no 403: they never answer them.
- Rule-set documents, which routes read themselves (JSON or YAML), get their real schema
  (``app.rulesets.schemas.DOCUMENT_REF``).
- Every operation carries request and response examples (``app.runtime.openapi_examples``),
  and every error response at least one example: the router's own, or a generic one of the
  real problem type (``_error_examples``), with the headers that come with it (``WWW-Authenticate``,
  ``Retry-After``, ``RateLimit``).
- The document has tag descriptions and a quick start written for curl.
- Examples and response headers that operations repeat are said once, in ``components``
  (``app.runtime.openapi_sharing``).
- Every operation has a readable operationId (``operation_id``): what generated clients name
  their functions and Swagger UI and ReDoc their anchors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.cds_hooks.schemas import FeedbackRequest, HookRequest
from app.engine.ruleset import RuleSetDocument
from app.kernel.errors import (
    PROBLEM_JSON,
    AppError,
    BadRequest,
    Conflict,
    FieldProblem,
    Forbidden,
    MalformedJson,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    PreconditionRequired,
    Problem,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
    named_examples,
    problem_example,
)
from app.runtime.openapi_answers import state_answer_rules
from app.runtime.openapi_sharing import share_repeated

FHIR_JSON = "application/fhir+json"
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
_BODY_PROBLEMS = {
    "400": "The body is not valid JSON (or YAML where accepted).",
    "413": "The body is larger than the configured limit.",
    "415": "The body is not sent as application/json (or YAML where accepted).",
}
_PUBLIC_NEVER = ("401", "403", "429")  # a public operation checks no credential
# Headers a route reads as optional, so that their absence is answered by the service (428
# Precondition Required), yet that no request succeeds without: required in the document.
_REQUIRED_HEADERS = ("If-Match",)

TAGS = [
    {
        "name": "questionnaire",
        "description": "The questions an intake app asks, with their types, allowed values and "
        "follow-up logic: derived from the model the API validates answers with, so a form "
        "built from it sends answers the API accepts.",
    },
    {
        "name": "screenings",
        "description": "Screen a person's answers: preview a determination (`evaluate`, stores "
        "nothing) or store a screening with the exact rule-set version that decided it; list "
        "and read your tenant's screenings, replay them (reproducibility and what-ifs) and "
        "record the clinician's decision.",
    },
    {
        "name": "people",
        "description": "A person's screenings over time, linked by your pseudonymous "
        "`person_id` (never a name or MRN): scores with their meaningful changes, responses "
        "and remissions, how the recommended level moved, a step-up or step-down suggestion "
        "and when to screen again (measurement-based care).",
    },
    {
        "name": "rule sets",
        "description": "The clinical rules that decide: shared rule sets (maintained by the "
        "operator tenant) and your tenant's own forks. A version is a draft until it compiles, "
        "passes its test cases and fires every rule; then it is published (immutable), "
        "activated to decide new screenings, and retired when replaced. Compare, validate, "
        "simulate and export versions.",
    },
    {
        "name": "FHIR R4",
        "description": "For EHRs: the Questionnaire, `QuestionnaireResponse/$evaluate` (stores "
        "the screening like `POST /v1/screenings`), the result Observations and proposed "
        "ServiceRequests, and carelevel's code systems and value sets. "
        "`application/fhir+json`; errors are OperationOutcomes.",
    },
    {
        "name": "CDS Hooks",
        "description": "CDS Hooks 2.0 services for the EHR's patient-view and order-select "
        "hooks: cards with the recommended level, reasons and barriers, and feedback recorded "
        "as the clinician's decision. Every call carries a JWT the EHR signs for that call.",
    },
    {
        "name": "programs",
        "description": "Your tenant's directory of treatment programs (its own and those it "
        "refers to): what each offers, to whom, when, where and how soon. Add, list, read, edit "
        "(with `If-Match`) and retire them; screenings are matched to the programs that are "
        "not retired.",
    },
    {
        "name": "clients",
        "description": "Your tenant's API clients and their keys (scope `admin`): create one per "
        "integration with the fewest scopes it needs, list them, revoke a key.",
    },
    {
        "name": "audit",
        "description": "Your tenant's audit trail: who created, read, replayed or decided what, "
        "and every rule-set and client change, successful or not. Ids and statuses only, "
        "never answers.",
    },
    {
        "name": "operations",
        "description": "For operators: liveness and readiness probes (public) and Prometheus "
        "metrics.",
    },
]

QUICK_START = """

## Quick start with curl

```bash
BASE=http://localhost:8000
# An API key: the one printed at the first start, or a new one from
#   carelevel clients create --tenant default --name intake \
--scopes screenings:write screenings:read
KEY=clk_…
# The questions to ask.
curl -s "$BASE/v1/questionnaire" -H "Authorization: Bearer $KEY"
# A determination, stored nowhere.
curl -s -X POST "$BASE/v1/screenings/evaluate" -H "Authorization: Bearer $KEY" \\
  -H "Content-Type: application/json" \\
  -d '{"answers": {"respondent": {"age_group": "adult", "answered_by": "self_report"}, \
"presenting_concerns": ["substance_use"], "instruments": {"audit_c": {"items": [4, 3, 2]}}}}'
# Stored, and safe to retry with the same Idempotency-Key.
curl -s -X POST "$BASE/v1/screenings" -H "Authorization: Bearer $KEY" \\
  -H "Content-Type: application/json" -H "Idempotency-Key: $(uuidgen)" \\
  -d "{\\"answers\\": $(cat examples/adult-iop-suitable.json)}"
```

Each operation below shows a complete request body and the answer it gets; errors are
`application/problem+json` (`type`, `title`, `status`, `detail`, `errors[].pointer`), or
OperationOutcome resources under `/fhir`.
"""

_HEADERS = {
    "WWW-Authenticate": "The RFC 6750 challenge: `error` and `error_description` say why.",
    "Retry-After": "Seconds to wait before retrying.",
    "RateLimit": "For the `client` and its `tenant`: the remaining requests (`r`) and seconds "
    "until the window resets (`t`), draft-ietf-httpapi-ratelimit-headers.",
    "RateLimit-Policy": "The quotas of the `client` and of its `tenant` (`q` requests per window).",
}


def operation_id(route: APIRoute) -> str:
    """A route's operationId: its endpoint function's name in camelCase (``create_screening``
    becomes ``createScreening``). FastAPI's default appends the path and method
    (``create_screening_v1_screenings_post``); a route whose function name says too little
    outside its module names its own with ``operation_id=`` (``getRuleSetVersion``)."""
    first, *rest = route.name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _problem_response(description: str, fhir: bool = False) -> dict[str, Any]:
    """An error response: problem+json, or an OperationOutcome under /fhir."""
    media, schema = (FHIR_JSON, OUTCOME_REF) if fhir else (PROBLEM_JSON, PROBLEM_REF)
    return {"description": description, "content": {media: {"schema": schema}}}


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """A model read by a route itself (not a FastAPI body), with the models it uses."""
    document = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in document.pop("$defs", {}).items():
        if name in schemas and schemas[name] != definition:
            raise RuntimeError(f"two different schemas are called {name}")
        schemas[name] = definition
    schemas[model.__name__] = document


# --- generic error examples -----------------------------------------------------------------


def _resolve(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``$ref`` and without a ``null`` alternative."""
    while True:
        if "$ref" in schema:
            schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
            continue
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if len(options) == 1:
            schema = options[0]
            continue
        return schema


def _parameter_problem(schema: dict[str, Any]) -> str:
    """What Pydantic says of a value this parameter's schema refuses."""
    if "pattern" in schema:
        return f"String should match pattern '{schema['pattern']}'"
    if "maximum" in schema:
        return f"Input should be less than or equal to {schema['maximum']}"
    if "minimum" in schema:
        return f"Input should be greater than or equal to {schema['minimum']}"
    if "maxLength" in schema:
        return f"String should have at most {schema['maxLength']} characters"
    if "enum" in schema:
        *first, last = (f"'{value}'" for value in schema["enum"])
        return "Input should be " + (f"{', '.join(first)} or {last}" if first else last)
    return f"Input should be a valid {schema.get('type', 'value')}"


def _invalid_field(operation: dict[str, Any], schemas: dict[str, Any]) -> FieldProblem:
    """A field problem this operation really answers 422 with: a required body field left out,
    or a path or query parameter out of its bounds."""
    body = operation.get("requestBody")
    if body is not None:
        for media in body.get("content", {}).values():
            required = _resolve(media.get("schema", {}), schemas).get("required", [])
            if required:
                return FieldProblem(pointer=f"#/{required[0]}", detail="Field required")
    parameters = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    for parameter in sorted(parameters, key=lambda p: p["in"] != "path"):
        schema = _resolve(parameter.get("schema", {}), schemas)
        return FieldProblem(
            pointer=f"#/{parameter['in']}/{parameter['name']}", detail=_parameter_problem(schema)
        )
    return FieldProblem(pointer="#", detail="Input should be a valid dictionary or object")


GenericProblem = tuple[type[AppError], str, str | None, FieldProblem | None]


def _generic_problem(
    status: str,
    response: dict[str, Any],
    operation: dict[str, Any],
    context: dict[str, Any],
) -> list[GenericProblem]:
    """The (problem type, detail, summary, field problem) of a generic example of ``status``."""
    examples = _GENERIC_PROBLEMS.get(status)
    return [] if examples is None else examples(response, operation, context)


def _bad_request(
    response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> list[GenericProblem]:
    if "requestBody" in operation and not context["reads_body_itself"]:
        return [(MalformedJson, "The request body could not be parsed as JSON.", None, None)]
    return [(BadRequest, "The cursor is not one this API returned.", None, None)]


def _unauthorized(*_: dict[str, Any]) -> list[GenericProblem]:
    return [
        (
            Unauthorized,
            "Send credentials: Authorization: Bearer <API key or access token>.",
            "No credentials",
            None,
        ),
        (Unauthorized, "The API key is not valid.", "An invalid key", None),
        (Unauthorized, "The API key has been revoked.", "A revoked key", None),
    ]


def _forbidden(
    response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> list[GenericProblem]:
    scopes = context["scopes"] or []
    detail = f"This client lacks the scope this operation needs: {' '.join(scopes)}."
    return [(Forbidden, detail, None, None)]


def _invalid(
    response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> list[GenericProblem]:
    field = _invalid_field(operation, context["schemas"])
    detail = f"{field.pointer[2:] or '(body)'}: {field.detail}"
    return [(Unprocessable, detail, None, field)]


def _rate_limited(
    response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> list[GenericProblem]:
    detail = (
        f"This client made more than {context['rate_limit']} requests in the current "
        "window; retry in 17 s."
    )
    return [(TooManyRequests, detail, None, None)]


def _too_large(
    response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> list[GenericProblem]:
    detail = f"The request body exceeds the limit of {context['body_limit']} bytes."
    return [(PayloadTooLarge, detail, None, None)]


def _fixed(error: type[AppError], detail: str) -> Callable[..., list[GenericProblem]]:
    return lambda *_: [(error, detail, None, None)]


def _described(error: type[AppError], default: str) -> Callable[..., list[GenericProblem]]:
    """An example whose detail is the response's own description."""
    return lambda response, *_: [(error, response.get("description", default), None, None)]


_GENERIC_PROBLEMS: dict[str, Callable[..., list[GenericProblem]]] = {
    "400": _bad_request,
    "401": _unauthorized,
    "403": _forbidden,
    "404": _described(NotFound, "Not found."),
    "409": _described(Conflict, "Conflict."),
    "412": _fixed(
        PreconditionFailed,
        "The draft changed since you read it; fetch it again and reapply your edit.",
    ),
    "413": _too_large,
    "415": _fixed(UnsupportedMediaType, "Send the request body as application/json."),
    "422": _invalid,
    "428": _fixed(PreconditionRequired, "Send If-Match with the ETag of the draft you edited."),
    "429": _rate_limited,
    "503": _fixed(ServiceUnavailable, "The database is unavailable; retry shortly."),
}


def _error_examples(
    status: str, response: dict[str, Any], operation: dict[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    """Generic examples for an error response that has none, by media type."""
    found = _generic_problem(status, response, operation, context)
    if context["fhir"]:  # the error handlers' OperationOutcome of the same problem
        from app.fhir.router import outcome, outcome_example

        outcomes = [
            outcome_example(
                error.status,
                f"{field.pointer.lstrip('#/') or '(body)'}: {field.detail}" if field else detail,
                summary=summary or error.title,
            )
            for error, detail, summary, field in found
        ]
        if not outcomes:
            return {}
        return {FHIR_JSON: outcome("", *outcomes)["content"][FHIR_JSON]["examples"]}
    problems = []
    for error, detail, summary, field in found:
        problem = problem_example(error, detail, summary=summary, errors=[field] if field else None)
        if error is PayloadTooLarge:  # refused before the request id is given to the request
            problem["value"].pop("instance")
        problems.append(problem)
    return {PROBLEM_JSON: named_examples(problems)}


def _header(name: str, example: str) -> dict[str, Any]:
    return {"description": _HEADERS[name], "schema": {"type": "string"}, "example": example}


def _error_headers(status: str, context: dict[str, Any]) -> dict[str, Any]:
    """The headers an error response of ``status`` carries."""
    cds = context["cds"]
    match status:
        case "401":
            challenge = 'Bearer realm="carelevel", error="invalid_token", '
            challenge += 'error_description="The API key is not valid."'
            return {"WWW-Authenticate": _header("WWW-Authenticate", challenge)}
        case "403" if not cds:
            scopes = " ".join(context["scopes"] or [])
            challenge = f'Bearer realm="carelevel", error="insufficient_scope", scope="{scopes}"'
            return {"WWW-Authenticate": _header("WWW-Authenticate", challenge)}
        case "429":
            return {
                "Retry-After": _header("Retry-After", "17"),
                "RateLimit": _header("RateLimit", '"client";r=0;t=17'),
                "RateLimit-Policy": _header(
                    "RateLimit-Policy", f'"client";q={context["rate_limit"]}'
                ),
            }
        case "503":
            return {"Retry-After": _header("Retry-After", "5")}
    return {}


# --- the document ---------------------------------------------------------------------------


def _apply_examples(operation: dict[str, Any], examples: dict[str, Any]) -> None:
    """The documented request and response examples, where the router set none."""
    for media, named in examples.get("request", {}).items():
        content = operation["requestBody"]["content"][media]
        if "example" not in content and "examples" not in content:
            content["examples"] = named
    for status, by_media in examples.get("responses", {}).items():
        response = operation["responses"][status]
        for media, named in by_media.items():
            content = response.setdefault("content", {}).setdefault(media, {})
            if "example" not in content and "examples" not in content:
                content["examples"] = named


def _complete_errors(operation: dict[str, Any], context: dict[str, Any]) -> None:
    for status, response in operation["responses"].items():
        if not status.startswith(("4", "5")):
            continue
        for media, examples in _error_examples(status, response, operation, context).items():
            content = response.setdefault("content", {}).setdefault(media, {})
            content.setdefault("schema", OUTCOME_REF if media == FHIR_JSON else PROBLEM_REF)
            if "example" not in content and "examples" not in content and examples:
                content["examples"] = examples
        for name, header in _error_headers(status, context).items():
            response.setdefault("headers", {}).setdefault(name, header)


def complete_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema of ``app``, built once and kept."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    # The examples evaluate the default rule set: built only when the document is asked for.
    from app.runtime.openapi_examples import operation_examples

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        license_info=app.license_info,
        contact=app.contact,
        tags=TAGS,
    )
    if "curl " not in schema["info"].get("description", ""):
        schema["info"]["description"] = schema["info"].get("description", "") + QUICK_START
    schemas = _complete_schemas(schema)
    settings = getattr(app.state, "settings", None)
    examples = operation_examples()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            _complete_operation(path, operation, schemas, settings)
            found = examples.pop((method.upper(), path), None)
            if found is not None:
                _apply_examples(operation, found)
            _complete_errors(operation, _error_context(path, operation, schemas, settings))
    if examples:
        raise RuntimeError(f"examples for operations that do not exist: {sorted(examples)}")
    share_repeated(schema)
    app.openapi_schema = schema
    return schema


def _complete_schemas(schema: dict[str, Any]) -> dict[str, Any]:
    """The components' schemas: problem+json and the bodies routes read themselves, without
    FastAPI's own validation error shapes (never answered)."""
    schemas: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Problem", Problem.model_json_schema())
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    for model in (RuleSetDocument, HookRequest, FeedbackRequest):
        _add_model(schemas, model)
    schemas["OperationOutcome"] = OPERATION_OUTCOME
    state_answer_rules(schemas)
    return schemas


def _scopes(operation: dict[str, Any]) -> list[str] | None:
    """The scopes an operation needs (None: it is public)."""
    requirement = (operation.get("security") or [{}])[0]
    scopes: list[str] | None = requirement.get("bearer", requirement.get("cdsClient"))
    return scopes


def _complete_operation(
    path: str, operation: dict[str, Any], schemas: dict[str, Any], settings: object
) -> None:
    """Scopes named in the description; the error responses the operation can really give,
    as problem+json (an OperationOutcome under /fhir/)."""
    fhir = path.startswith("/fhir/")
    scopes = _scopes(operation)
    responses = operation.setdefault("responses", {})
    if scopes is not None and "bearer" in (operation.get("security") or [{}])[0]:
        needed = ", ".join(f"`{scope}`" for scope in scopes) or "any valid credential"
        description = operation.get("description", "")
        operation["description"] = f"{description}\n\n**Needs:** {needed}.".strip()
    if scopes is None:
        for status in _PUBLIC_NEVER:
            responses.pop(status, None)
    elif not scopes:
        responses.pop("403", None)  # no scope to lack
    for response in responses.values():
        _problem_media_type(response)
    if "422" in responses:
        content = responses["422"].get("content", {})
        if "application/json" in content:  # FastAPI's own validation error shape
            responses["422"] = _problem_response("The request is invalid.", fhir)
    _require_headers(operation)
    if operation.get("requestBody") is not None:
        for status, description in _BODY_PROBLEMS.items():
            responses.setdefault(status, _problem_response(description, fhir))
        responses.setdefault("422", _problem_response("The request is invalid.", fhir))


def _require_headers(operation: dict[str, Any]) -> None:
    """The ``_REQUIRED_HEADERS`` an operation reads required, their schemas without the
    ``null`` FastAPI gives an optional parameter."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] != "header" or parameter["name"] not in _REQUIRED_HEADERS:
            continue
        schema = parameter["schema"]
        kept = {key: value for key, value in schema.items() if key != "anyOf"}
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        parameter["required"] = True
        parameter["schema"] = (options[0] if len(options) == 1 else schema) | kept


def _problem_media_type(response: dict[str, Any]) -> None:
    """``problem()`` entries: FastAPI files the model's schema under its default media type;
    these responses are problem+json only."""
    content = response.get("content", {})
    if PROBLEM_JSON in content and "application/json" in content:
        content[PROBLEM_JSON] = content.pop("application/json") | {
            key: value for key, value in content[PROBLEM_JSON].items() if key != "schema"
        }


def _error_context(
    path: str, operation: dict[str, Any], schemas: dict[str, Any], settings: object
) -> dict[str, Any]:
    """What the generic error examples of an operation say (its limits, its scopes)."""
    rule_sets = path.startswith("/v1/rule-sets")
    return {
        "fhir": path.startswith("/fhir/"),
        "cds": path.startswith("/cds-services"),
        "scopes": _scopes(operation),
        "schemas": schemas,
        # Rule-set and CDS routes parse their bodies themselves (400 bad-request).
        "reads_body_itself": rule_sets or path.startswith("/cds-services"),
        "body_limit": getattr(settings, _body_limit_setting(path), 65536),
        "rate_limit": getattr(settings, "rate_limit_requests", 6000),
    }


def _body_limit_setting(path: str) -> str:
    """The setting bounding an operation's body, as app/main.py applies them (the CDS service
    calls and $populate carry the chart)."""
    if path.startswith("/v1/rule-sets"):
        return "max_rule_set_body_bytes"
    if path == "/cds-services/{service_id}" or path.endswith("/$populate"):
        return "max_chart_body_bytes"
    return "max_body_bytes"

"""The OpenAPI document is complete for integrators.

Every operation has a summary, a description written for an integrator, a declared tag and
examples: of every request body (each valid against its schema and accepted by the API as it
is) and of its success response. Every error response shows at least one example of its media
type (problem+json, or an OperationOutcome under /fhir) naming a real problem type. The
document has a quick start with curl, contact and licence, and security schemes every
protected operation uses. The answers model documents every field.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import shlex
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import yaml
from openapi_spec_validator import validate
from pydantic import BaseModel

from app.cds_hooks.schemas import FeedbackRequest, HookRequest
from app.kernel.errors import PROBLEM_BASE, AppError
from app.questionnaire import Questionnaire
from app.screenings.schemas import EXAMPLE_ANSWERS, ScreeningRequest
from tests.support.examples import EXAMPLES

Json = dict[str, Any]
Operation = tuple[str, str, Json]  # METHOD, path template, operation object

HTTP_METHODS = ("get", "put", "post", "delete", "patch")
PROBLEM_JSON = "application/problem+json"
FHIR_JSON = "application/fhir+json"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/fhir/r4/metadata")}
MIN_DESCRIPTION = 80  # characters: more than a restated summary
# Problem types answered by something else than an AppError: readiness names failing checks.
OTHER_PROBLEM_SLUGS = {"not-ready": (503, "Not ready to serve")}
ANSWERS_MODELS = ("ScreeningRequest", "Questionnaire")
# What generated clients call their functions: a verb, then capitalised words, no path or method.
OPERATION_ID = re.compile(
    r"(?:activate|call|check|create|delete|diff|discover|evaluate|export|get|import|list|"
    r"publish|read|record|replay|retire|revoke|search|send|simulate|update|validate|vread)"
    r"(?:[A-Z][a-z0-9]*)*"
)
NAMED_OPERATIONS = {
    ("POST", "/v1/screenings/evaluate"): "evaluateScreening",
    ("POST", "/v1/screenings"): "createScreening",
    ("GET", "/v1/screenings/{screening_id}"): "getScreening",
    ("GET", "/v1/screenings"): "listScreenings",
    ("POST", "/v1/screenings/{screening_id}/replay"): "replayScreening",
    ("POST", "/v1/screenings/{screening_id}/decision"): "recordDecision",
    ("GET", "/v1/rule-sets/{owner}/{key}/versions/{version}"): "getRuleSetVersion",
    ("POST", "/v1/clients"): "createClient",
    ("GET", "/v1/audit-events"): "listAuditEvents",
    ("POST", "/fhir/r4/QuestionnaireResponse/$evaluate"): "evaluateQuestionnaireResponse",
    ("GET", "/fhir/r4/Questionnaire/{questionnaire_id}"): "readQuestionnaire",
    ("POST", "/cds-services/{service_id}"): "callCdsService",
    ("GET", "/readyz"): "checkReadiness",
}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> Json:
    """The OpenAPI document, its shared examples and headers in place (as viewers show them)."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: Json = response.json()
    return inlined(body)


def inlined(document: Json) -> Json:
    """``document`` with every reference to a shared example or header replaced by its target."""
    shared = copy.deepcopy(document)
    components = shared.get("components", {})

    def target(entry: Json) -> Json:
        if "$ref" not in entry:
            return entry
        _, _, kind, name = entry["$ref"].split("/")
        found: Json = components[kind][name]
        return found

    for item in shared["paths"].values():
        for operation in item.values():
            bodies = [operation.get("requestBody", {}), *operation.get("responses", {}).values()]
            for body in bodies:
                for media in body.get("content", {}).values():
                    for name, entry in media.get("examples", {}).items():
                        media["examples"][name] = target(entry)
                for name, header in body.get("headers", {}).items():
                    body["headers"][name] = target(header)
    return shared


def operations(document: Json) -> Iterator[Operation]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def example_values(media: Json) -> list[Any]:
    """The examples of a media type object: ``example`` and every ``examples`` entry."""
    values = [media["example"]] if "example" in media else []
    for name, entry in media.get("examples", {}).items():
        assert "value" in entry, f"example {name} has no inline value"
        assert entry.get("summary"), f"example {name} has no summary"
        values.append(entry["value"])
    return values


def validator(document: Json, schema: Json) -> Any:
    """A JSON Schema 2020-12 validator of ``schema``, its refs resolved in the document."""
    return jsonschema_rs.Draft202012Validator(schema | {"components": document["components"]})


def assert_valid(document: Json, schema: Json, value: Any, where: str) -> None:
    errors = [str(e).splitlines()[0] for e in validator(document, schema).iter_errors(value)]
    assert not errors, f"{where}: the example does not fit its schema: {errors[:3]}"


def problem_types() -> dict[str, tuple[int, str]]:
    """Every problem type slug the error classes answer with: (status, title)."""
    found = dict(OTHER_PROBLEM_SLUGS)
    pending: list[type[AppError]] = [AppError]
    while pending:
        error = pending.pop()
        found[error.slug] = (error.status, error.title)
        pending.extend(error.__subclasses__())
    return found


def decoded(media_type: str, value: Any) -> Any:
    """A documented value as data (YAML bodies are documented as text)."""
    if media_type == "application/yaml":
        assert isinstance(value, str)
        return yaml.safe_load(value)
    return value


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


# --- the document as a whole ------------------------------------------------------------------


async def test_info_has_a_quick_start_with_curl_contact_and_licence(document: Json) -> None:
    info = document["info"]
    assert document["openapi"].startswith("3.1")
    assert info["title"] == "carelevel"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", info["version"])
    assert info["summary"]
    assert "Quick start" in info["description"]
    assert re.search(r"^curl .*/v1/screenings/evaluate", info["description"], re.MULTILINE)
    assert info["contact"]["name"]
    assert info["contact"]["url"].startswith("https://")
    assert info["license"]["name"]
    assert info["license"].get("identifier") or info["license"].get("url")


async def test_the_quick_start_request_is_accepted(
    document: Json, client: httpx.AsyncClient
) -> None:
    description = document["info"]["description"]
    block = description[description.index("```bash") + 7 : description.rindex("```")]
    command = next(c for c in block.replace("\\\n", " ").splitlines() if "/evaluate" in c)
    words = shlex.split(command)
    body = json.loads(words[words.index("-d") + 1])
    response = await client.post("/v1/screenings/evaluate", json=body)
    assert response.status_code == 200, response.text


async def test_every_tag_is_declared_and_described(document: Json) -> None:
    declared = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    used = set()
    for method, path, operation in operations(document):
        assert operation.get("tags"), f"{method} {path} has no tag"
        for tag in operation["tags"]:
            assert tag in declared, f"{method} {path}: tag {tag!r} is not declared"
            used.add(tag)
    for name, description in declared.items():
        assert len(description) >= 40, f"tag {name!r} has no real description"
    assert used == set(declared), f"declared but unused: {set(declared) - used}"


async def test_security_schemes_and_which_operations_use_them(document: Json) -> None:
    schemes = document["components"]["securitySchemes"]
    for name in ("bearer", "cdsClient"):
        assert (schemes[name]["type"], schemes[name]["scheme"]) == ("http", "bearer")
    for name, scheme in schemes.items():
        assert scheme.get("description"), f"security scheme {name} is not described"
    public = set()
    for method, path, operation in operations(document):
        requirements = operation.get("security")
        responses = operation["responses"]
        if not requirements:
            public.add((method, path))
            for status in ("401", "403", "429"):
                assert status not in responses, f"public {method} {path} documents {status}"
            continue
        for requirement in requirements:
            assert set(requirement) <= set(schemes), f"{method} {path}: {requirement}"
        assert "401" in responses, f"{method} {path} needs credentials but documents no 401"
        scopes = [
            scope for requirement in requirements for s in requirement.values() for scope in s
        ]
        assert ("403" in responses) == bool(scopes), f"{method} {path}: 403 iff it needs a scope"
    assert public == PUBLIC


# --- every operation --------------------------------------------------------------------------


async def test_every_operation_has_a_summary_description_and_tag(document: Json) -> None:
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        summary, description = operation.get("summary", ""), operation.get("description", "")
        assert summary.strip(), f"{where}: no summary"
        assert len(summary) <= 80, f"{where}: summary {summary!r}"
        assert len(description) >= MIN_DESCRIPTION, f"{where}: description {description!r}"
        assert description.strip() != summary.strip(), where
        assert operation.get("tags"), where


async def test_every_operation_id_is_a_unique_camel_case_verb_phrase(document: Json) -> None:
    ids = {
        (method, path): operation.get("operationId")
        for method, path, operation in operations(document)
    }
    for (method, path), operation_id in ids.items():
        assert OPERATION_ID.fullmatch(operation_id or ""), (method, path, operation_id)
    assert len(set(ids.values())) == len(ids), "two operations share an operationId"
    for (method, path), expected in NAMED_OPERATIONS.items():
        assert ids[(method, path)] == expected, (method, path)


async def test_every_request_body_has_examples_that_fit_its_schema(document: Json) -> None:
    with_bodies = 0
    for method, path, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        with_bodies += 1
        assert body.get("content"), f"{method} {path}"
        for media_type, media in body["content"].items():
            values = example_values(media)
            assert values, f"{method} {path}: no {media_type} request example"
            for value in values:
                assert_valid(
                    document, media["schema"], decoded(media_type, value), f"{method} {path}"
                )
    assert with_bodies >= 11


async def test_every_success_response_has_an_example(document: Json) -> None:
    for method, path, operation in operations(document):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, f"{method} {path} documents no success"
        for status, response in successes.items():
            where = f"{method} {path} {status}"
            assert response.get("description"), where
            if status == "204":
                assert not response.get("content"), where
                continue
            assert response.get("content"), f"{where}: no content documented"
            for media_type, media in response["content"].items():
                values = example_values(media)
                assert values, f"{where}: no {media_type} example"
                for value in values:
                    if not is_json(media_type):  # text (YAML, Prometheus exposition)
                        assert isinstance(value, str), where
                        assert value.strip(), where
                    schema = media.get("schema", {})
                    if is_json(media_type) or media_type == "application/yaml":
                        assert_valid(document, schema, decoded(media_type, value), where)


async def test_every_error_response_has_an_example_of_its_media_type(document: Json) -> None:
    types = problem_types()
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            where = f"{method} {path} {status}"
            expected = FHIR_JSON if path.startswith("/fhir/") else PROBLEM_JSON
            assert response.get("description"), where
            assert list(response.get("content", {})) == [expected], where
            media = response["content"][expected]
            values = example_values(media)
            assert values, f"{where}: no example"
            for value in values:
                assert_valid(document, media["schema"], value, where)
                if expected == FHIR_JSON:
                    assert value["resourceType"] == "OperationOutcome", where
                    assert all(issue.get("diagnostics") for issue in value["issue"]), where
                    continue
                assert value["type"].startswith(PROBLEM_BASE), where
                slug = value["type"].removeprefix(PROBLEM_BASE)
                assert slug in types, f"{where}: {slug} is no problem type of app.kernel.errors"
                assert (value["status"], value["title"]) == types[slug], where
                assert str(value["status"]) == status, where
                if slug == "validation-error" and "report" not in value:  # publish: a report
                    assert value["errors"], f"{where}: no field named"
                    assert value["errors"][0]["pointer"].startswith("#"), where
            headers = response.get("headers", {})
            if status == "401":
                assert "WWW-Authenticate" in headers, where
            if status in ("429", "503"):
                assert "Retry-After" in headers, where


# --- the answers model -----------------------------------------------------------------------


def _target(schema: Json, schemas: Json) -> Json | None:
    """The component a property refers to (directly, or as ``X | None``)."""
    refs = [schema] + [s for s in schema.get("anyOf", []) if "$ref" in s]
    for candidate in refs:
        if "$ref" in candidate:
            found: Json = schemas[candidate["$ref"].rsplit("/", 1)[-1]]
            return found
    return None


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"].rsplit("/", 1)[-1]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_every_answers_field_has_a_description_and_examples(document: Json) -> None:
    schemas = document["components"]["schemas"]
    seen: set[str] = set()
    pending = list(ANSWERS_MODELS)
    properties = 0
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        schema = schemas[name]
        for field, prop in schema.get("properties", {}).items():
            properties += 1
            # Pydantic leaves out a $ref's siblings that repeat the referenced schema's own.
            target = _target(prop, schemas) or {}
            assert prop.get("description") or target.get("description"), f"{name}.{field}"
            assert prop.get("examples") or target.get("examples"), f"{name}.{field}"
        pending.extend(_refs(schema))
    assert {"ScreeningAnswers", "Instruments", "Phq9", "CssrsScreener", "Logistics"} <= seen
    assert properties >= 120


def _models(root: type[BaseModel]) -> Iterator[type[BaseModel]]:
    """``root`` and every model its fields use, once each."""
    seen: set[type[BaseModel]] = set()
    pending = [root]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        yield model
        for field in model.model_fields.values():
            pending.extend(_model_types(field.annotation))


def _model_types(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()):
        yield from _model_types(argument)


@pytest.mark.parametrize("root", [ScreeningRequest, Questionnaire])
def test_every_field_of_the_questionnaire_models_is_documented(root: type[BaseModel]) -> None:
    for model in _models(root):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert field.examples, f"{model.__name__}.{name} has no examples"


# --- the documented requests work --------------------------------------------------------------


def request_examples(document: Json, method: str, path: str) -> list[tuple[str, Any]]:
    """(media type, body) of every request example of an operation."""
    content = document["paths"][path][method.lower()]["requestBody"]["content"]
    return [(media, value) for media, m in content.items() for value in example_values(m)]


async def send_naming(
    document: Json, client: httpx.AsyncClient, real: Json
) -> set[tuple[str, str]]:
    """Send the documented match and referral bodies with the ids they name replaced by
    ``real`` ones (a made-up id is not found); each is accepted."""
    referrals = "/v1/screenings/{screening_id}/referrals"
    sent_to = {
        ("POST", "/v1/program-matches"): ("/v1/program-matches", 200),
        ("POST", referrals): (f"/v1/screenings/{real['screening_id']}/referrals", 201),
    }
    for (method, path), (url, status) in sent_to.items():
        for _, body in request_examples(document, method, path):
            sent = body | {name: real[name] for name in body if name in real}
            response = await client.request(method, url, json=sent)
            assert response.status_code == status, (path, response.text)
    return set(sent_to)


def send(media_type: str, body: Any) -> Json:
    """httpx arguments sending ``body`` as documented."""
    if isinstance(body, str):
        return {"content": body.encode(), "headers": {"Content-Type": media_type}}
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": media_type}}


def success(document: Json, method: str, path: str, status: str, name: str) -> Any:
    """The value of a documented success example (JSON's, when others are documented too)."""
    content = document["paths"][path][method.lower()]["responses"][status]["content"]
    media = content["application/json"] if len(content) > 1 else next(iter(content.values()))
    return media["examples"][name]["value"]


def without(value: Json, *keys: str) -> Json:
    return {k: v for k, v in value.items() if k not in keys}


async def test_documented_requests_are_accepted_as_they_are(
    document: Json, client: httpx.AsyncClient
) -> None:
    exercised: set[tuple[str, str]] = set()

    async def call(method: str, path: str, url: str, expected: int, **headers: str) -> list[Json]:
        exercised.add((method, path))
        answers = []
        for media_type, body in request_examples(document, method, path):
            arguments = send(media_type, body)
            arguments["headers"] |= headers
            response = await client.request(method, url, **arguments)
            assert response.status_code == expected, (method, url, body, response.text)
            answers.append(response.json())
            if "etag" in response.headers:
                headers["If-Match"] = response.headers["etag"]
        return answers

    # Screenings: the documented determination is the service's, byte for byte.
    evaluated = await call("POST", "/v1/screenings/evaluate", "/v1/screenings/evaluate", 200)
    documented = success(document, "POST", "/v1/screenings/evaluate", "200", "adult-iop-suitable")
    assert evaluated[0] == documented
    stored = await call("POST", "/v1/screenings", "/v1/screenings", 201)
    expected = success(document, "POST", "/v1/screenings", "201", "stored")
    assert without(stored[0], "id", "created_at") == without(expected, "id", "created_at")
    screening = f"/v1/screenings/{stored[0]['id']}"
    # A what-if needs another published version of the rule set.
    draft = await client.post("/v1/rule-sets/shared/iop-level-of-care/versions?copy_from=1")
    assert draft.status_code == 201, draft.text
    published = await client.post("/v1/rule-sets/shared/iop-level-of-care/versions/2/publish")
    assert published.status_code == 200, published.text
    replays = await call("POST", "/v1/screenings/{screening_id}/replay", f"{screening}/replay", 200)
    assert [r["what_if"] for r in replays] == [False, True]
    assert replays[0] == success(
        document, "POST", "/v1/screenings/{screening_id}/replay", "200", "identical"
    ) | {"screening_id": stored[0]["id"]}
    decisions = await call(
        "POST", "/v1/screenings/{screening_id}/decision", f"{screening}/decision", 201
    )
    documented_decisions = [
        success(document, "POST", "/v1/screenings/{screening_id}/decision", "201", name)
        for name in ("accepted", "overridden")
    ]
    for decision, documented_decision in zip(decisions, documented_decisions, strict=True):
        assert without(decision, "id", "screening_id", "created_at") == without(
            documented_decision, "id", "screening_id", "created_at"
        )

    # Rule sets: the documented document imports, drafts, updates and validates as shown.
    pilot = "/v1/rule-sets/shared/iop-depression-pilot/versions"
    imported = await call(
        "POST", "/v1/rule-sets/{owner}/import", "/v1/rule-sets/shared/import", 201
    )
    validated = await client.post(f"{pilot}/{imported[0]['version']}/validate")
    documented_report = success(
        document,
        "POST",
        "/v1/rule-sets/{owner}/{key}/versions/{version}/validate",
        "200",
        "publishable",
    )
    assert validated.json() == documented_report
    drafts = await call("POST", "/v1/rule-sets/{owner}/{key}/versions", pilot, 201)
    version = drafts[-1]["version"]
    etag = (await client.get(f"{pilot}/{version}")).headers["etag"]
    await call(
        "PUT",
        "/v1/rule-sets/{owner}/{key}/versions/{version}",
        f"{pilot}/{version}",
        200,
        **{"If-Match": etag},
    )

    # Programs: the documented program is added and edited as shown.
    added = await call("POST", "/v1/programs", "/v1/programs", 201)
    made_up = ("id", "created_at", "created_by", "updated_at", "updated_by")
    documented_program = success(document, "POST", "/v1/programs", "201", "added")
    assert without(added[0], *made_up) == without(documented_program, *made_up)
    one = "/v1/programs/{program_id}"
    program = f"/v1/programs/{added[0]['id']}"
    edited = await call("PUT", one, program, 200, **{"If-Match": '"1"'})
    documented_edit = success(document, "PUT", one, "200", "edited")
    assert without(edited[0], *made_up) == without(documented_edit, *made_up)

    # Matches and referrals: the documented bodies, naming a real screening and program.
    real = {"screening_id": stored[0]["id"], "program_id": added[0]["id"], "program_version": 2}
    exercised |= await send_naming(document, client, real)

    # Clients and FHIR.
    await call("POST", "/v1/clients", "/v1/clients", 201)
    bundles = await call(
        "POST",
        "/fhir/r4/QuestionnaireResponse/$evaluate",
        "/fhir/r4/QuestionnaireResponse/$evaluate",
        200,
    )
    assert {bundle["resourceType"] for bundle in bundles} == {"Bundle"}
    for path, url in (
        ("/fhir/r4/Questionnaire/$populate", "/fhir/r4/Questionnaire/$populate"),
        (
            "/fhir/r4/Questionnaire/{questionnaire_id}/$populate",
            "/fhir/r4/Questionnaire/iop-level-of-care/$populate",
        ),
    ):
        for populated in await call("POST", path, url, 200):
            (response,) = [p["resource"] for p in populated["parameter"] if p["name"] == "response"]
            assert response["subject"] == {"reference": "Patient/example"}

    # CDS Hooks calls need a JWT the EHR signs per call: their examples must fit the models.
    for _, body in request_examples(document, "POST", "/cds-services/{service_id}"):
        HookRequest.model_validate(body)
    for _, body in request_examples(document, "POST", "/cds-services/{service_id}/feedback"):
        FeedbackRequest.model_validate(body)
    exercised |= {
        ("POST", "/cds-services/{service_id}"),
        ("POST", "/cds-services/{service_id}/feedback"),
    }

    with_bodies = {(m, p) for m, p, op in operations(document) if "requestBody" in op}
    assert exercised == with_bodies


def without_absent(value: Any) -> Any:
    """``value`` without the answers that state a condition is absent."""
    if isinstance(value, dict):
        return {k: without_absent(v) for k, v in value.items() if v != "absent"}
    return value


async def test_the_documented_answers_are_the_services(
    document: Json, client: httpx.AsyncClient
) -> None:
    questionnaire = await client.get("/v1/questionnaire")
    assert questionnaire.json() == success(
        document, "GET", "/v1/questionnaire", "200", "questionnaire"
    )
    # The documented screening is examples/adult-iop-suitable.json (absent conditions left out).
    adult = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    for path in ("/v1/screenings", "/v1/screenings/evaluate"):
        (_, first), *_ = request_examples(document, "POST", path)
        assert first["answers"] == without_absent(adult)
        # The body Swagger UI fills in is the model's own example too (tests/browser).
        assert first == document["components"]["schemas"]["ScreeningRequest"]["examples"][0]


async def test_the_document_is_valid_openapi_3_1(document: Json) -> None:
    validate(document)


def shareable(document: Json) -> Iterator[tuple[str, Json]]:
    """(where, object) of every example and response header the operations document inline."""
    for method, path, operation in operations(document):
        bodies = {"request": operation.get("requestBody", {}), **operation["responses"]}
        for part, body in bodies.items():
            for media_type, media in body.get("content", {}).items():
                for name, entry in media.get("examples", {}).items():
                    yield f"{method} {path} {part} {media_type} example {name}", entry
            for name, header in body.get("headers", {}).items():
                yield f"{method} {path} {part} header {name}", header


async def test_each_example_and_header_is_said_once(client: httpx.AsyncClient) -> None:
    raw: Json = (await client.get("/openapi.json")).json()
    seen: dict[str, str] = {}
    for where, entry in shareable(raw):
        if "$ref" in entry:
            continue
        identity = json.dumps(entry, sort_keys=True)
        assert identity not in seen, f"{where} repeats {seen.get(identity)}: share it"
        seen[identity] = where
    shared = raw["components"]
    assert len(shared["examples"]) >= 20
    assert {"RateLimit", "Retry-After", "WWW-Authenticate"} <= set(shared["headers"])
    # Each shared one is used more than once, and every reference has its target.
    uses = [entry["$ref"] for _, entry in shareable(raw) if "$ref" in entry]
    for kind in ("examples", "headers"):
        for name in shared[kind]:
            assert uses.count(f"#/components/{kind}/{name}") >= 2, name
    assert inlined(raw)["paths"] != raw["paths"]


@pytest.mark.parametrize("path", ["/openapi.json", "/docs/assets/swagger-ui/swagger-ui-bundle.js"])
async def test_the_documents_go_out_gzipped_when_the_client_accepts_it(
    client: httpx.AsyncClient, path: str
) -> None:
    plain = await client.get(path, headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert "content-encoding" not in plain.headers
    async with client.stream("GET", path, headers={"Accept-Encoding": "gzip"}) as compressed:
        sent = b"".join([chunk async for chunk in compressed.aiter_raw()])
    assert compressed.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in compressed.headers["vary"].lower()
    assert gzip.decompress(sent) == plain.content
    assert len(sent) < len(plain.content) / 3


async def test_large_api_responses_are_compressed_on_either_way_through(
    client: httpx.AsyncClient,
) -> None:
    """A determination with its trace is large: gzipped whether the fast lane answers it or
    FastAPI's stack does (a request with an Origin goes through the stack), the same bytes
    once inflated; the questionnaire too. A default determination is small and goes out as it
    is, and so does everything for a client that does not accept gzip."""
    body = {"answers": EXAMPLE_ANSWERS}
    gzip_please = {"Accept-Encoding": "gzip"}
    inflated = []
    for headers in (gzip_please, gzip_please | {"Origin": "https://x.test"}):
        async with client.stream(
            "POST",
            "/v1/screenings/evaluate",
            params={"include": "trace"},
            content=json.dumps(body).encode(),
            headers=headers | {"Content-Type": "application/json"},
        ) as response:
            sent = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.status_code == 200
        assert response.headers["content-encoding"] == "gzip"
        inflated.append(gzip.decompress(sent))
    assert inflated[0] == inflated[1]
    questionnaire = await client.get("/v1/questionnaire", headers=gzip_please)
    assert questionnaire.headers["content-encoding"] == "gzip"
    small = await client.post("/v1/screenings/evaluate", json=body, headers=gzip_please)
    assert small.status_code == 200
    assert "content-encoding" not in small.headers
    plain = await client.get("/v1/questionnaire", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers


async def test_gzip_refused_with_a_zero_weight_is_not_used(client: httpx.AsyncClient) -> None:
    refused = await client.get("/v1/questionnaire", headers={"Accept-Encoding": "br, gzip;q=0"})
    assert refused.status_code == 200
    assert "content-encoding" not in refused.headers

"""SDC ``Questionnaire/$populate`` through the public API: the chart's answers pre-fill the
Questionnaire, marked with their source, without replacing an answer given; populate, review,
``$evaluate`` gives the determination the REST API gives the same answers; every unusable
request is an OperationOutcome naming the parameter, never echoing what was sent."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.examples import response_for
from app.fhir.populate import LEGACY_POPULATED_FROM, populated_link_ids
from app.fhir.response import MAX_ITEM_DEPTH
from app.fhir.terminology import LOINC, Vocabulary
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE, Settings
from tests.support.apps import http_client, new_key, started_app
from tests.support.examples import example

Json = dict[str, Any]
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
POPULATE = "/fhir/r4/Questionnaire/$populate"
EVALUATE = "/fhir/r4/QuestionnaireResponse/$evaluate"
FHIR = {"content-type": "application/fhir+json"}
SECRET = "Zq7-secret-value"  # sent where a value is wrong: must never come back
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"


def now_ish() -> str:
    """A time a few minutes ago (the server dates the look-back windows by its clock)."""
    return (datetime.now(UTC) - timedelta(minutes=10)).isoformat()


PATIENT = {"resourceType": "Patient", "id": "pat-7", "birthDate": "1980-02-29", "gender": "male"}


def chart() -> Json:
    at = now_ish()
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "hr-1",
                    "status": "final",
                    "subject": {"reference": "Patient/pat-7"},
                    "code": {"coding": [{"system": LOINC, "code": "8867-4"}]},
                    "effectiveDateTime": at,
                    "valueQuantity": {"value": 84, "unit": "/min", "code": "/min"},
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "dx-1",
                    "subject": {"reference": "Patient/pat-7"},
                    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
                    "code": {"coding": [{"system": ICD10, "code": "F10.20"}]},
                }
            },
        ],
    }


def context(name: str, resource: Json) -> Json:
    return {
        "name": "context",
        "part": [{"name": "name", "valueString": name}, {"name": "content", "resource": resource}],
    }


def parameters(*extra: Json, subject: str = "Patient/pat-7") -> Json:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "subject", "valueReference": {"reference": subject}},
            context("patient", PATIENT),
            context("chart", chart()),
            *extra,
        ],
    }


async def post(client: httpx.AsyncClient, body: Any, url: str = POPULATE) -> httpx.Response:
    return await client.post(url, content=json.dumps(body), headers=FHIR)


def output(response: httpx.Response) -> tuple[Json, Json]:
    """(QuestionnaireResponse, OperationOutcome) of a $populate answer, validated as FHIR."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    body = response.json()
    get_fhir_model_class("Parameters").model_validate(body)
    parts = {p["name"]: p["resource"] for p in body["parameter"]}
    return parts["response"], parts["issues"]


def issues_of(response: httpx.Response, status: int) -> list[Json]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert SECRET not in response.text
    issues: list[Json] = body["issue"]
    return issues


def without(answers: Json, *paths: str) -> Json:
    """``answers`` without the questions at ``paths`` (dotted)."""
    trimmed = copy.deepcopy(answers)
    for path in paths:
        *sections, name = path.split(".")
        target = trimmed
        for section in sections:
            target = target[section]
        del target[name]
    return trimmed


async def test_populate_then_evaluate_gives_the_rest_determination(
    client: httpx.AsyncClient,
) -> None:
    answers = example("adult-iop-suitable")
    # What the chart answers is left out of what the clinician gave.
    partial = without(
        answers,
        "respondent.age_group",
        "respondent.sex_for_scoring",
        "co_occurring.substance_use.alcohol",
    )
    answered = response_for(VOCABULARY, partial, subject="Patient/pat-7", status="in-progress")

    populated, issues = output(
        await post(client, parameters({"name": "response", "resource": answered}))
    )

    assert populated["status"] == "in-progress"
    assert populated["subject"] == {"reference": "Patient/pat-7"}
    assert populated["questionnaire"].startswith(VOCABULARY.questionnaire("iop-level-of-care|"))
    assert sorted(populated_link_ids(populated, VOCABULARY)) == [
        "co_occurring.substance_use.alcohol",
        "medical.heart_rate_bpm",
        "respondent.age_group",
        "respondent.age_years",
        "respondent.sex_for_scoring",
    ]
    assert "5 answers were pre-filled" in issues["issue"][0]["diagnostics"]
    # Reviewed and completed, it is evaluated with the marks on.
    populated["status"] = "completed"
    evaluated = await client.post(EVALUATE, content=json.dumps(populated), headers=FHIR)
    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.headers["location"].rsplit("/", 1)[1]
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    expected = copy.deepcopy(answers)
    expected["respondent"]["age_years"] = 46  # born 1980-02-29: 46 in 2026 and 2027 alike
    expected["medical"]["heart_rate_bpm"] = 84
    rest = await client.post("/v1/screenings/evaluate", json={"answers": expected})
    assert rest.status_code == 200, rest.text
    assert stored["determination"] == rest.json()["determination"]


async def test_an_answer_given_is_kept_and_unmarked(client: httpx.AsyncClient) -> None:
    answered = response_for(
        VOCABULARY, {"respondent": {"sex_for_scoring": "unknown"}}, status="in-progress"
    )

    populated, _ = output(
        await post(client, parameters({"name": "response", "resource": answered}))
    )

    marked = populated_link_ids(populated, VOCABULARY)
    assert "respondent.sex_for_scoring" not in marked
    (respondent,) = (i for i in populated["item"] if i["linkId"] == "respondent")
    (sex,) = (i for i in respondent["item"] if i["linkId"] == "respondent.sex_for_scoring")
    assert sex["answer"][0]["valueCoding"]["code"] == "unknown"
    assert "extension" not in sex


async def test_each_pre_filled_answer_names_its_source(client: httpx.AsyncClient) -> None:
    populated, _ = output(
        await post(client, parameters(), url="/fhir/r4/Questionnaire/iop-level-of-care/$populate")
    )

    (medical,) = (i for i in populated["item"] if i["linkId"] == "medical")
    (rate,) = medical["item"]
    (marker,) = rate["extension"]
    assert marker["url"] == VOCABULARY.answer_source
    assert marker["valueReference"]["reference"] == "Observation/hr-1"
    assert "8867-4" in marker["valueReference"]["display"]


async def test_chart_resources_about_another_patient_are_ignored(
    client: httpx.AsyncClient,
) -> None:
    body = parameters()
    other = chart()
    for entry in other["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/someone-else"}
    body["parameter"][2] = context("chart", other)

    populated, issues = output(await post(client, body))

    assert not any(
        link.startswith(("medical.", "co_occurring."))
        for link in populated_link_ids(populated, VOCABULARY)
    )
    assert (
        "2 chart resources not about the subject were ignored"
        in (issues["issue"][1]["diagnostics"])
    )


async def test_chart_resources_naming_no_patient_are_ignored(client: httpx.AsyncClient) -> None:
    body = parameters()
    anonymous = chart()
    for entry in anonymous["entry"]:
        del entry["resource"]["subject"]
    body["parameter"][2] = context("chart", anonymous)

    populated, issues = output(await post(client, body))

    assert not any(
        link.startswith(("medical.", "co_occurring."))
        for link in populated_link_ids(populated, VOCABULARY)
    )
    assert "2 chart resources not about the subject" in issues["issue"][1]["diagnostics"]


def deeply_nested(depth: int) -> Json:
    """A QuestionnaireResponse whose one question sits inside ``depth - 1`` groups."""
    item: Json = {"linkId": "medical.heart_rate_bpm", "answer": [{"valueInteger": 70}]}
    for _ in range(depth - 1):
        item = {"linkId": "medical", "item": [item]}
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": VOCABULARY.questionnaire("iop-level-of-care"),
        "status": "completed",
        "item": [item],
    }


@pytest.mark.parametrize("depth", [MAX_ITEM_DEPTH + 1, 300])
async def test_items_nested_too_deep_are_refused_by_populate_and_evaluate(
    client: httpx.AsyncClient, depth: int
) -> None:
    too_deep = deeply_nested(depth)
    path = ".item[0]" * (MAX_ITEM_DEPTH + 1)

    populating = await post(client, parameters({"name": "response", "resource": too_deep}))
    evaluating = await post(client, too_deep, url=EVALUATE)

    (issue,) = issues_of(populating, 422)
    assert issue["expression"] == [f"Parameters.parameter.where(name='response').resource{path}"]
    (issue,) = issues_of(evaluating, 422)
    assert issue["expression"] == [f"QuestionnaireResponse{path}"]


async def test_a_response_citing_the_former_canonical_base_is_populated(
    schema: AsyncEngine, settings: Settings
) -> None:
    public = "https://carelevel.example"
    configured = settings.model_copy(update={"public_url": public})
    former = Vocabulary(LEGACY_FHIR_CANONICAL_BASE)
    answered = response_for(
        former, {"respondent": {"sex_for_scoring": "unknown"}}, status="in-progress"
    )
    async with (
        started_app(schema, configured) as app,
        http_client(app, await new_key(app)) as client,
    ):
        populated, _ = output(
            await post(client, parameters({"name": "response", "resource": answered}))
        )

    assert populated["questionnaire"].startswith(f"{public}/fhir/r4/Questionnaire/")
    (respondent,) = (i for i in populated["item"] if i["linkId"] == "respondent")
    (sex,) = (i for i in respondent["item"] if i["linkId"] == "respondent.sex_for_scoring")
    assert sex["answer"][0]["valueCoding"]["system"].startswith(f"{public}/fhir/r4/")


def replaced(index: int, parameter: Json) -> Json:
    body = parameters()
    body["parameter"][index] = parameter
    return body


@pytest.mark.parametrize(
    ("body", "status", "expression"),
    [
        ({"resourceType": "Patient", "id": SECRET}, 400, "Parameters"),
        ({"resourceType": "Parameters", "parameter": SECRET}, 400, "Parameters.parameter"),
        (
            {"resourceType": "Parameters", "parameter": [context("patient", PATIENT)]},
            400,
            "Parameters.parameter.where(name='subject')",
        ),
        (
            replaced(0, {"name": "subject", "valueReference": {"reference": f"Group/{SECRET}"}}),
            422,
            "Parameters.parameter.where(name='subject')",
        ),
        (replaced(1, {"name": "data", "valueString": SECRET}), 422, "Parameters.parameter.name"),
        (
            replaced(1, context("patient", PATIENT | {"id": "someone-else"})),
            422,
            "Parameters.parameter.where(name='context')",
        ),
        (
            replaced(1, context("patient", {"resourceType": "Patient", "gender": "male"})),
            422,
            "Parameters.parameter.where(name='context')",
        ),
        (
            replaced(2, context("chart", {"resourceType": "Bundle", "type": "transaction"})),
            422,
            "Parameters.parameter.where(name='context')",
        ),
        (
            replaced(2, context(SECRET, {"resourceType": "Bundle", "type": "searchset"})),
            422,
            "Parameters.parameter.where(name='context')",
        ),
        (
            parameters({"name": "response", "resource": {"resourceType": "Observation"}}),
            422,
            "Parameters.parameter.where(name='response')",
        ),
        (
            parameters(
                {
                    "name": "response",
                    "resource": {
                        "resourceType": "QuestionnaireResponse",
                        "status": "in-progress",
                        "authored": SECRET,
                    },
                }
            ),
            400,
            "Parameters.parameter.where(name='response')",
        ),
        (
            parameters({"name": "questionnaire", "valueCanonical": f"http://x.org/{SECRET}"}),
            422,
            "Parameters.parameter.where(name='questionnaire')",
        ),
    ],
)
async def test_an_unusable_request_names_the_parameter_without_echoing_it(
    client: httpx.AsyncClient, body: Json, status: int, expression: str
) -> None:
    issues = issues_of(await post(client, body), status)

    assert issues[0]["expression"] == [expression]


async def test_an_unknown_questionnaire_is_not_found(client: httpx.AsyncClient) -> None:
    response = await post(client, parameters(), url="/fhir/r4/Questionnaire/no-such-key/$populate")

    assert issues_of(response, 404)[0]["code"] == "not-found"


async def test_not_json_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(POPULATE, content=b"{" + SECRET.encode(), headers=FHIR)

    issues_of(response, 400)


async def test_the_operation_is_declared(client: httpx.AsyncClient) -> None:
    capabilities = (await client.get("/fhir/r4/metadata")).json()
    (questionnaire,) = (
        r for r in capabilities["rest"][0]["resource"] if r["type"] == "Questionnaire"
    )
    (operation,) = questionnaire["operation"]
    definition = await client.get(
        "/fhir/r4/OperationDefinition/" + operation["definition"].rsplit("/", 1)[1]
    )

    assert operation["name"] == "populate"
    assert definition.status_code == 200
    resource = definition.json()
    get_fhir_model_class("OperationDefinition").model_validate(resource)
    assert resource["code"] == "populate"
    assert resource["instance"] is True
    assert {p["name"] for p in resource["parameter"] if p["use"] == "in"} == {
        "questionnaire",
        "subject",
        "context",
        "response",
    }


def marked_former_way(response: Json, link_id: str) -> Json:
    """``response`` with the answer to ``link_id`` marked as from the chart under the former
    canonical base, as responses pre-filled before the marker moved are."""
    marked = copy.deepcopy(response)

    def visit(items: list[Json]) -> None:
        for item in items:
            if item["linkId"] == link_id:
                reference = {"reference": "Observation/hr-1", "display": "From the chart"}
                item["extension"] = [{"url": LEGACY_POPULATED_FROM, "valueReference": reference}]
            visit(item.get("item", []))

    visit(marked["item"])
    return marked


async def test_the_marker_lives_under_the_canonical_base_where_its_definition_is_served(
    schema: AsyncEngine, settings: Settings
) -> None:
    public = "https://carelevel.example"
    current = Vocabulary(f"{public}/fhir/r4")
    async with (
        started_app(schema, settings.model_copy(update={"public_url": public})) as app,
        http_client(app, await new_key(app)) as client,
    ):
        populated, _ = output(await post(client, parameters()))
        marker_url = populated["item"][0]["item"][0]["extension"][0]["url"]
        read = await client.get(marker_url.removeprefix(public))
        by_url = await client.get("/fhir/r4/StructureDefinition", params={"url": marker_url})
        by_former_url = await client.get(
            "/fhir/r4/StructureDefinition", params={"url": LEGACY_POPULATED_FROM}
        )
        by_other_url = await client.get(
            "/fhir/r4/StructureDefinition", params={"url": f"{public}/fhir/r4/ValueSet/x"}
        )
        unknown = await client.get("/fhir/r4/StructureDefinition/answer-sources")
        capabilities = (await client.get("/fhir/r4/metadata")).json()

    assert marker_url == f"{public}/fhir/r4/StructureDefinition/answer-source"
    assert "medical.heart_rate_bpm" in populated_link_ids(populated, current)
    assert read.status_code == 200, read.text
    definition = read.json()
    get_fhir_model_class("StructureDefinition").model_validate(definition)
    assert definition["url"] == marker_url
    assert definition["type"] == "Extension"
    for found in (by_url.json(), by_former_url.json()):
        assert [e["resource"]["url"] for e in found["entry"]] == [marker_url]
    assert by_other_url.json()["entry"] == []
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"
    declared = {r["type"]: r for r in capabilities["rest"][0]["resource"]}
    assert {i["code"] for i in declared["StructureDefinition"]["interaction"]} == {
        "read",
        "search-type",
    }


async def test_answers_marked_under_the_former_canonical_base_are_still_read(
    schema: AsyncEngine, settings: Settings
) -> None:
    public = "https://carelevel.example"
    current = Vocabulary(f"{public}/fhir/r4")
    answers = example("adult-iop-suitable")  # no heart rate: the chart gives it
    given = response_for(current, answers, subject="Patient/pat-7", status="in-progress")
    given = marked_former_way(given, "respondent.sex_for_scoring")
    completed = marked_former_way(
        response_for(current, answers, subject="Patient/pat-7"), "respondent.sex_for_scoring"
    )
    async with (
        started_app(schema, settings.model_copy(update={"public_url": public})) as app,
        http_client(app, await new_key(app)) as client,
    ):
        populated, issues = output(
            await post(client, parameters({"name": "response", "resource": given}))
        )
        evaluated = await post(client, completed, url=EVALUATE)

    # The answer kept as given, its marker read as the current one: still shown as pre-filled.
    marked = populated_link_ids(populated, current)
    assert {"respondent.sex_for_scoring", "medical.heart_rate_bpm"} <= set(marked)
    assert LEGACY_POPULATED_FROM not in json.dumps(populated)
    assert f"{len(marked)} answers were pre-filled" in issues["issue"][0]["diagnostics"]
    assert evaluated.status_code == 200, evaluated.text

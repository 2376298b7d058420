"""FHIR R4 through the public API: our Questionnaire → a filled QuestionnaireResponse → the
result Bundle, every resource validated with fhir.resources (R4B); the same answers through
REST and FHIR give the same determination; responses that cannot be used store nothing.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire

from app.engine.determination import ENGINE_VERSION, LevelOfCare
from app.engine.instruments import DECLINED
from app.fhir.examples import example_response, response_for
from app.fhir.response import given_switches, link_ids, read_response
from app.fhir.results import SCREENING_ASSESSMENT, US_CORE_PROVENANCE, US_CORE_SERVICE_REQUEST
from app.fhir.terminology import LOINC, ORDINAL_VALUE, SNOMED, Vocabulary, code_systems
from app.questionnaire import form_items
from tests.api.screenings_support import assert_nothing_stored, published_version
from tests.support.apps import http_client, new_key
from tests.support.examples import EXAMPLES, level_of
from tests.support.examples import example as answers
from tests.support.fhir import EVALUATE, FHIR, evaluate, outcome, valid

Json = dict[str, Any]
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
CANONICAL = VOCABULARY.questionnaire("iop-level-of-care")
EXAMPLE_NAMES = sorted(path.stem for path in EXAMPLES.glob("*.json"))


def walk(items: list[Json]) -> list[Json]:
    found = []
    for item in items:
        found.append(item)
        found.extend(walk(item.get("item", [])))
    return found


# --- the Questionnaire -----------------------------------------------------------------------


async def test_the_questionnaire_is_valid_and_derived_from_the_answers_model(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/fhir/r4/Questionnaire/iop-level-of-care")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json"
    questionnaire = response.json()
    Questionnaire.model_validate(questionnaire)
    assert (questionnaire["url"], questionnaire["version"]) == (CANONICAL, "shared.1")
    assert questionnaire["meta"]["versionId"] == "shared.1"
    assert questionnaire["status"] == "active"
    items = {item["linkId"]: item for item in walk(questionnaire["item"])}
    assert len(items) == len(walk(questionnaire["item"]))  # linkIds are unique
    questions, groups = link_ids()
    assert set(items) == set(questions) | (groups - {p for p in groups if p.endswith(".items")}) | {
        "instruments.pc_ptsd5.items"
    } | set(given_switches())
    # Types, requirement and allowed values follow the model the REST API validates with.
    assert items["safety.recent_violence"]["type"] == "boolean"
    assert items["medical.heart_rate_bpm"]["type"] == "integer"
    assert items["medical.temperature_c"]["type"] == "decimal"
    assert "required" not in items["respondent"]  # required through its questions
    assert items["respondent.age_group"]["required"] is True
    assert "required" not in items["respondent.sex_for_scoring"]
    ages = [o["valueCoding"]["code"] for o in items["respondent.age_group"]["answerOption"]]
    assert ages == [m.value for m in form_items()["respondent.age_group"].choices or []]
    assert items["presenting_concerns"]["repeats"] is True
    # LOINC on the instrument panels and items; scores as ordinalValue.
    assert items["instruments.phq9"]["code"] == [{"system": LOINC, "code": "44249-1"}]
    assert items["instruments.phq9.items.9"]["code"] == [
        {"system": LOINC, "code": "44260-8", "display": "Thoughts of death or self-harm"}
    ]
    phq_options = items["instruments.phq9.items.1"]["answerOption"]
    assert [o["valueCoding"]["code"] for o in phq_options] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
        "declined",
    ]
    assert [o.get("extension", [{}])[0].get("valueDecimal") for o in phq_options] == [
        0,
        1,
        2,
        3,
        None,
    ]
    assert phq_options[0]["extension"][0]["url"] == ORDINAL_VALUE
    dast3 = items["instruments.dast10.items.3"]["answerOption"]
    assert [o.get("extension", [{}])[0].get("valueDecimal") for o in dast3[:2]] == [0, 1]
    # Follow-up questions carry enableWhen.
    assert items["instruments.cssrs.method"]["enableWhen"] == [
        {
            "question": "instruments.cssrs.non_specific_active_thoughts",
            "operator": "=",
            "answerCoding": {"system": LOINC, "code": "LA33-6"},
        }
    ]
    assert items["medical.receiving_prenatal_care"]["enableWhen"][0]["answerBoolean"] is True
    assert items["instruments.pc_ptsd5.items"]["enableWhen"][0]["question"] == (
        "instruments.pc_ptsd5.trauma_exposure"
    )
    assert items["medical.heart_rate_bpm"]["extension"] == [
        {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 20},
        {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 250},
    ]
    assert questionnaire["text"]["status"] == "generated"
    assert questionnaire["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')


async def test_instruments_are_optional_labelled_and_coded(client: httpx.AsyncClient) -> None:
    """Each instrument is asked only when it was given, so a partial intake completes; its items
    read as published where the licence allows (with a Spanish translation where the publisher
    has one), and carry LOINC item and answer codes."""
    questionnaire = (await client.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
    items = {item["linkId"]: item for item in walk(questionnaire["item"])}
    for switch, instrument in given_switches().items():
        assert items[switch]["type"] == "boolean"
        assert "required" not in items[switch], switch
        assert "required" not in items[instrument], instrument
        assert items[instrument]["enableWhen"] == [
            {"question": switch, "operator": "=", "answerBoolean": True}
        ]
    phq9 = items["instruments.phq9.items.1"]
    assert phq9["text"] == "Little interest or pleasure in doing things"
    (translation,) = phq9["_text"]["extension"]
    assert translation["extension"] == [
        {"url": "lang", "valueCode": "es"},
        {"url": "content", "valueString": "Poco interés o placer en hacer cosas"},
    ]
    assert phq9["answerOption"][2]["valueCoding"]["display"] == "More than half the days"
    audit2 = items["instruments.audit_c.items.2"]
    assert audit2["code"][0]["code"] == "68519-8"
    assert [o["valueCoding"].get("display") for o in audit2["answerOption"]] == [
        "1 or 2",
        "3 or 4",
        "5 or 6",
        "7 to 9",
        "10 or more",
        "Declined to answer",
    ]
    assert audit2["answerOption"][4]["valueCoding"]["code"] == "LA18932-6"
    # Items whose wording needs the holder's permission show a topic, marked as such.
    assert "topic only" in items["instruments.cssrs.wish_to_be_dead"]["text"]
    assert items["instruments.cssrs.wish_to_be_dead"]["code"][0]["code"] == "93246-7"
    assert "topic only" in items["instruments.dast10.items.1"]["text"]
    # "None of these" goes alone, and only where no answer is an answer.
    concerns = items["presenting_concerns"]["answerOption"]
    assert "none" not in [o["valueCoding"]["code"] for o in concerns]
    none_of_these = items["withdrawal.heavy_daily_use"]["answerOption"][-1]
    assert none_of_these["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/questionnaire-optionExclusive",
            "valueBoolean": True,
        }
    ]
    assert "Pfizer" in questionnaire["copyright"]
    assert "loinc.org/license" in questionnaire["copyright"]


async def test_questionnaires_are_found_by_canonical_and_version(
    client: httpx.AsyncClient,
) -> None:
    found = (await client.get("/fhir/r4/Questionnaire", params={"url": CANONICAL})).json()
    assert (valid(found)["type"], found["total"]) == ("searchset", 1)
    assert found["entry"][0]["resource"]["version"] == "shared.1"
    exact = await client.get(
        "/fhir/r4/Questionnaire", params={"url": CANONICAL, "version": "shared.1"}
    )
    assert exact.json()["total"] == 1
    for params in (
        {"url": CANONICAL, "version": "shared.99"},
        {"url": "https://elsewhere.example/Questionnaire/iop-level-of-care"},
        {"url": CANONICAL, "version": "1"},
    ):
        assert (await client.get("/fhir/r4/Questionnaire", params=params)).json()["total"] == 0
    history = await client.get("/fhir/r4/Questionnaire/iop-level-of-care/_history/shared.1")
    assert history.json() == (await client.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
    outcome(await client.get("/fhir/r4/Questionnaire/iop-level-of-care/_history/shared.99"), 404)
    outcome(await client.get("/fhir/r4/Questionnaire/no-such-form"), 404)
    outcome(await client.get("/fhir/r4/Questionnaire/Not-A-Key"), 404)
    every = (await client.get("/fhir/r4/Questionnaire")).json()
    assert [e["resource"]["id"] for e in every["entry"]] == ["iop-level-of-care"]


async def test_a_tenants_active_fork_is_its_questionnaire_version(app: FastAPI) -> None:
    async with http_client(app, await new_key(app, tenant="clinic-a")) as clinic:
        fork = await clinic.post(
            "/v1/rule-sets/clinic-a/iop-level-of-care/versions",
            params={"copy_from": 1, "copy_from_owner": "shared"},
        )
        path = "/v1/rule-sets/clinic-a/iop-level-of-care/versions/1"
        assert (await clinic.post(f"{path}/publish")).status_code == 200
        assert fork.status_code == 201
        assert (await clinic.post(f"{path}/activate")).status_code == 200
        mine = (await clinic.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
        assert mine["version"] == "clinic-a.1"
        evaluated = await evaluate(clinic, response_for(VOCABULARY, answers("adult-iop-suitable")))
        assert (
            "clinic-a/iop-level-of-care version 1"
            in evaluated.json()["entry"][0]["resource"]["method"]["text"]
        )
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        theirs = (await other.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
        assert theirs["version"] == "shared.1"
        outcome(
            await other.get("/fhir/r4/Questionnaire/iop-level-of-care/_history/clinic-a.1"), 404
        )


# --- QuestionnaireResponse/$evaluate -----------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
async def test_round_trip_gives_a_valid_bundle_and_the_rest_determination(
    client: httpx.AsyncClient, name: str
) -> None:
    response = response_for(VOCABULARY, answers(name), subject="Patient/1288992")
    response |= {"id": "qr-1", "encounter": {"reference": "Encounter/89284"}}

    evaluated = await evaluate(client, response)

    assert evaluated.status_code == 200, evaluated.text
    assert evaluated.headers["content-type"] == "application/fhir+json"
    bundle = evaluated.json()
    Bundle.model_validate(bundle)
    ehr_own = {"Patient/1288992", "Encounter/89284", "QuestionnaireResponse/qr-1"}
    assert_a_transaction_to_file(bundle, ehr_own)
    assert_provenance(bundle, source={"reference": "QuestionnaireResponse/qr-1"})
    # The results are readable here by their ids: the same resources, referring to one another
    # by those ids instead of the transaction's urn:uuids.
    here = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
        if "id" in e["resource"]
    }
    resources = []
    for entry in bundle["entry"][:-1]:
        again = await client.get(f"/fhir/r4/{here[entry['fullUrl']]}")
        assert again.status_code == 200, entry["fullUrl"]
        assert again.json() == relinked(entry["resource"], here)
        resources.append(valid(again.json()))
    level, *rest = resources
    screening_id = level["id"]
    assert evaluated.headers["location"].endswith(f"/fhir/r4/Observation/{screening_id}")
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    rest_made = await client.post("/v1/screenings/evaluate", json={"answers": answers(name)})
    # The same answers through REST and FHIR: the same determination, byte for byte.
    assert stored["determination"] == rest_made.json()["determination"]
    determination = stored["determination"]
    assert_level_observation(level, determination)
    assert_notes_explain(level, determination)
    assert_score_observations(level, rest, determination)
    assert_service_request(rest, determination, screening_id)
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    assert all(r["meta"]["profile"] == [SCREENING_ASSESSMENT] for r in observations)


def relinked(resource: Json, addresses: dict[str, str]) -> Json:
    """``resource`` with every reference to one of ``addresses`` (a fullUrl) replaced by its
    local reference."""
    text = json.dumps(resource)
    for full_url, local in addresses.items():
        text = text.replace(f'"{full_url}"', f'"{local}"')
    relinked_resource: Json = json.loads(text)
    return relinked_resource


def references(value: Any) -> list[str]:
    """Every literal reference anywhere in ``value``."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def assert_a_transaction_to_file(bundle: Json, ehr_own: set[str]) -> None:
    """A transaction an EHR can POST as it is: urn:uuid fullUrls, a conditional create per
    result on its carelevel identifier, and every reference either to an entry or to one of
    the EHR's own resources (``ehr_own``) as the response gave it."""
    assert bundle["type"] == "transaction"
    entries = bundle["entry"]
    full_urls = [e["fullUrl"] for e in entries]
    assert all(url.startswith("urn:uuid:") for url in full_urls)
    assert len(set(full_urls)) == len(full_urls)
    for entry in entries:
        resource = valid(entry["resource"])
        request = entry["request"]
        assert (request["method"], request["url"]) == ("POST", resource["resourceType"])
        if resource["resourceType"] == "Provenance":
            recommendation = entries[0]["resource"]["id"]
            assert request["ifNoneExist"] == (
                f"target:Observation.identifier={VOCABULARY.result_identifier}|{recommendation}"
            )
            continue
        mine = {"system": VOCABULARY.result_identifier, "value": resource["id"]}
        assert mine in resource["identifier"]
        assert request["ifNoneExist"] == f"identifier={mine['system']}|{mine['value']}"
    for entry in entries:
        contained = {f"#{inner['id']}" for inner in entry["resource"].get("contained", [])}
        for reference in references(entry["resource"]):
            assert reference in full_urls or reference in ehr_own or reference in contained, (
                reference
            )


def assert_provenance(bundle: Json, source: Json | None) -> None:
    """The last entry: a Provenance of every result, by carelevel, from the response, under
    the rule-set version that decided."""
    *results, last = bundle["entry"]
    record = last["resource"]
    assert record["resourceType"] == "Provenance"
    assert record["meta"]["profile"] == [US_CORE_PROVENANCE]
    assert [t["reference"] for t in record["target"]] == [e["fullUrl"] for e in results]
    assert record["recorded"] == results[0]["resource"]["issued"]
    (agent,) = record["agent"]
    assert agent["type"]["coding"][0]["code"] == "assembler"
    devices = {f"#{inner['id']}": inner for inner in record["contained"]}
    device = devices[agent["who"]["reference"]]
    assert device["resourceType"] == "Device"
    versions = {v["type"]["text"]: v["value"] for v in device["version"]}
    assert versions["engine"] == ENGINE_VERSION
    assert devices[agent["onBehalfOf"]["reference"]]["resourceType"] == "Organization"
    method = results[0]["resource"]["method"]["text"]
    (policy,) = record["policy"]
    assert policy.startswith(f"{CANONICAL}|shared.")
    assert f"version {policy.rpartition('.')[2]} " in method
    assert versions["rule set"].endswith(f" version {policy.rpartition('.')[2]}")
    assert record.get("entity") == ([{"role": "source", "what": source}] if source else None)


def assert_level_observation(level: Json, determination: Json) -> None:
    """The level Observation: the round trip's subject, encounter and response; the level
    (or why there is none), the IOP verdict and the urgency."""
    assert level["category"][0]["coding"][0]["code"] == "survey"
    assert level["code"]["coding"][0]["code"] == "level-of-care-recommendation"
    assert level["subject"] == {"reference": "Patient/1288992"}
    assert level["encounter"] == {"reference": "Encounter/89284"}
    assert level["derivedFrom"] == [{"reference": "QuestionnaireResponse/qr-1"}]
    expected = level_of(determination)
    if expected is None:
        assert "valueCodeableConcept" not in level
        assert level["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    else:
        assert level["valueCodeableConcept"]["coding"][0] == VOCABULARY.level_coding(
            LevelOfCare(expected)
        )
    components = {c["code"]["coding"][0]["code"]: c for c in level["component"]}
    assert (
        components["iop-verdict"]["valueCodeableConcept"]["coding"][0]["code"]
        == determination["iop"]["verdict"]
    )
    assert (
        components["urgency"]["valueCodeableConcept"]["coding"][0]["code"]
        == determination["urgency"]
    )
    assert "not a diagnosis" in level["note"][-1]["text"]


def assert_notes_explain(level: Json, determination: Json) -> None:
    """The reasons, safety alerts, barriers and missing answers are in the notes."""
    notes = " ".join(note["text"] for note in level["note"])
    for reason in (determination["recommended_level"] or {}).get("decided_by", []):
        assert reason["text"] in notes
    for alert in determination["safety_alerts"]:
        assert alert["action"] in notes
    for barrier in determination["barriers"]:
        assert f"Barrier: {barrier['description']}" in notes
        for accommodation in barrier["accommodations"]:
            assert accommodation["description"] in notes
    for missing in determination["missing"]:
        assert missing["label"] in notes


def assert_score_observations(level: Json, rest: list[Json], determination: Json) -> None:
    """hasMember: the score Observations, all in the Bundle, one per instrument scored."""
    scores = [r for r in rest if r["resourceType"] == "Observation"]
    assert [m["reference"] for m in level.get("hasMember", [])] == [
        f"Observation/{s['id']}" for s in scores
    ]
    assert len(scores) == len(determination["scores"])
    for score in scores:
        assert score["derivedFrom"] == level["derivedFrom"]
        assert score["category"] == level["category"]
    phq9 = next((s for s in scores if s["id"].endswith("-phq9")), None)
    if phq9 is not None and "valueInteger" in phq9:
        assert phq9["code"]["coding"][0] == {"system": LOINC, "code": "44261-6"}


def assert_service_request(rest: list[Json], determination: Json, screening_id: str) -> None:
    """The ServiceRequest proposal, when a level is recommended."""
    requests = [r for r in rest if r["resourceType"] == "ServiceRequest"]
    recommended = level_of(determination)
    if recommended is None:
        assert requests == []
    else:
        (referral,) = requests
        assert (referral["intent"], referral["status"]) == ("proposal", "draft")
        assert referral["reasonReference"] == [{"reference": f"Observation/{screening_id}"}]
        assert referral["subject"] == {"reference": "Patient/1288992"}
        assert referral["meta"]["profile"] == [US_CORE_SERVICE_REQUEST]
        ours, snomed = referral["code"]["coding"]
        assert ours == VOCABULARY.level_coding(LevelOfCare(recommended))
        assert snomed["system"] == SNOMED
        assert snomed["code"] in {"390866009", "183866009"}


async def test_results_without_a_subject_claim_no_profile_that_needs_one(
    client: httpx.AsyncClient,
) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"), subject=None)
    response["identifier"] = {"system": "urn:ehr:qr", "value": "qr-77"}

    bundle = (await evaluate(client, response)).json()

    assert_a_transaction_to_file(bundle, ehr_own=set())
    assert_provenance(
        bundle, source={"type": "QuestionnaireResponse", "identifier": response["identifier"]}
    )
    *results, _ = [e["resource"] for e in bundle["entry"]]
    assert {r["resourceType"] for r in results} == {"Observation"}  # no referral without one
    assert all("subject" not in r and "meta" not in r for r in results)


@pytest.mark.parametrize("asked_in", ["query", "parameters"])
async def test_us_core_results_need_a_subject(client: httpx.AsyncClient, asked_in: str) -> None:
    def asking(response: Json) -> tuple[str, Json]:
        if asked_in == "query":
            return f"{EVALUATE}?us-core=true", response
        return EVALUATE, {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "us-core", "valueBoolean": True},
                {"name": "questionnaire-response", "resource": response},
            ],
        }

    anonymous = response_for(VOCABULARY, answers("adult-iop-suitable"), subject=None)
    url, body = asking(anonymous)
    (issue,) = outcome(await client.post(url, content=json.dumps(body), headers=FHIR), 422)
    assert issue["expression"] == ["QuestionnaireResponse.subject"]
    assert issue["code"] == "required"
    await assert_nothing_stored(client)

    url, body = asking(response_for(VOCABULARY, answers("adult-iop-suitable")))
    filed = await client.post(url, content=json.dumps(body), headers=FHIR)
    assert filed.status_code == 200, filed.text
    profiles = [e["resource"]["meta"]["profile"][0] for e in filed.json()["entry"]]
    assert set(profiles) == {SCREENING_ASSESSMENT, US_CORE_SERVICE_REQUEST, US_CORE_PROVENANCE}


async def test_the_us_core_parameter_must_be_a_boolean(client: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "us-core", "valueString": "yes"},
            {
                "name": "questionnaire-response",
                "resource": response_for(VOCABULARY, answers("adult-iop-suitable")),
            },
        ],
    }
    (issue,) = outcome(await client.post(EVALUATE, content=json.dumps(body), headers=FHIR), 400)
    assert "yes" not in json.dumps(issue)
    outcome(
        await client.post(f"{EVALUATE}?us-core=maybe", content=json.dumps(body), headers=FHIR), 422
    )
    await assert_nothing_stored(client)


async def test_the_cited_version_decides(client: httpx.AsyncClient) -> None:
    version = await published_version(client)
    cited = response_for(VOCABULARY, answers("adult-iop-suitable"), version=f"shared.{version}")
    bundle = (await evaluate(client, cited)).json()
    assert f"version {version} " in bundle["entry"][0]["resource"]["method"]["text"]
    uncited = (
        await evaluate(client, response_for(VOCABULARY, answers("adult-iop-suitable")))
    ).json()
    assert "version 1 " in uncited["entry"][0]["resource"]["method"]["text"]


async def test_a_parameters_wrapper_and_plain_json_are_accepted(client: httpx.AsyncClient) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"))
    wrapped = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": response}],
    }
    assert (await evaluate(client, wrapped)).status_code == 200
    assert (await client.post(EVALUATE, json=response)).status_code == 200


async def test_idempotency_works_as_on_the_rest_api(client: httpx.AsyncClient) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"), subject="Patient/1")
    first = await evaluate(client, response, **{"Idempotency-Key": "ehr-qr-1"})
    again = await evaluate(client, response, **{"Idempotency-Key": "ehr-qr-1"})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = response | {"subject": {"reference": "Patient/2"}}
    reused = await evaluate(client, other, **{"Idempotency-Key": "ehr-qr-1"})
    assert "different request body" in outcome(reused, 422)[0]["diagnostics"]
    listed = (await client.get("/v1/screenings")).json()["items"]
    assert len(listed) == 1


@pytest.mark.parametrize(
    "names_itself",
    [
        {"identifier": {"system": "https://ehr.example/qr", "value": "qr-77"}},
        {"id": "qr-77"},  # with the subject response_for gives
    ],
)
async def test_a_response_that_names_itself_is_evaluated_once(
    client: httpx.AsyncClient, names_itself: Json
) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable")) | names_itself

    first = await evaluate(client, response)
    again = await evaluate(client, response)

    # The same Bundle, with the same identifiers: the EHR's ifNoneExist files nothing twice.
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert len((await client.get("/v1/screenings")).json()["items"]) == 1
    amended = copy.deepcopy(response)
    amended["authored"] = "2026-12-01T10:00:00Z"
    assert (await evaluate(client, amended)).json() != first.json()


async def test_a_response_that_does_not_name_itself_is_a_new_screening_each_time(
    client: httpx.AsyncClient,
) -> None:
    unnamed = response_for(VOCABULARY, answers("adult-iop-suitable"))
    id_only = response_for(VOCABULARY, answers("adult-iop-suitable"), subject=None)
    for response in (unnamed, unnamed, id_only | {"id": "qr-78"}, id_only | {"id": "qr-78"}):
        assert (await evaluate(client, response)).status_code == 200
    assert len((await client.get("/v1/screenings")).json()["items"]) == 4


async def test_concurrent_evaluations_with_one_key_store_one_screening(
    client: httpx.AsyncClient,
) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"), subject="Patient/7")
    key = {"Idempotency-Key": "ehr-qr-concurrent"}

    results = await asyncio.gather(*(evaluate(client, response, **key) for _ in range(10)))

    assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
    assert len([r for r in results if "idempotent-replayed" not in r.headers]) == 1
    assert all(r.json() == results[0].json() for r in results)
    assert '"Patient/7"' in results[0].text  # the subject it came with, replayed too
    listed = (await client.get("/v1/screenings")).json()["items"]
    assert len(listed) == 1


def _with_item(response: Json, link_id: str, answer: list[Json]) -> Json:
    changed = copy.deepcopy(response)
    changed["item"].append({"linkId": link_id, "answer": answer})
    return changed


def _replaced(response: Json, link_id: str, answer: list[Json]) -> Json:
    changed = copy.deepcopy(response)
    for item in walk(changed["item"]):
        if item["linkId"] == link_id:
            item["answer"] = answer
    return changed


BASE = response_for(VOCABULARY, answers("adult-iop-suitable"))
AUDIT_1 = "instruments.audit.items.1"

CITED, STATUS = "QuestionnaireResponse.questionnaire", "QuestionnaireResponse.status"
REFUSED: list[tuple[str, Json, int, str]] = [
    (
        "unknown questionnaire",
        BASE | {"questionnaire": "https://elsewhere.example/Q/x"},
        422,
        CITED,
    ),
    ("unknown version", BASE | {"questionnaire": f"{CANONICAL}|shared.99"}, 422, CITED),
    ("malformed version", BASE | {"questionnaire": f"{CANONICAL}|v1"}, 422, CITED),
    ("no questionnaire", {k: v for k, v in BASE.items() if k != "questionnaire"}, 422, CITED),
    ("in progress", BASE | {"status": "in-progress"}, 422, STATUS),
    ("stopped", BASE | {"status": "stopped"}, 422, STATUS),
    ("entered in error", BASE | {"status": "entered-in-error"}, 422, STATUS),
    (
        "unknown linkId",
        _with_item(BASE, "safety.flying", [{"valueBoolean": True}]),
        422,
        "linkId='safety.flying'",
    ),
    (
        "wrong type",
        _replaced(BASE, "logistics.travel_minutes_one_way", [{"valueString": "25"}]),
        422,
        "linkId='logistics.travel_minutes_one_way'",
    ),
    (
        "wrong code",
        _replaced(BASE, "respondent.age_group", [{"valueCoding": {"code": "toddler"}}]),
        422,
        "linkId='respondent.age_group'",
    ),
    (
        "not a score",
        _replaced(BASE, "instruments.phq9.items.1", [{"valueInteger": 7}]),
        422,
        "linkId='instruments.phq9.items.1'",
    ),
    (
        "two answers",
        _replaced(
            BASE, "safety.recent_violence", [{"valueBoolean": True}, {"valueBoolean": False}]
        ),
        422,
        "linkId='safety.recent_violence'",
    ),
    (
        "out of range",
        _replaced(BASE, "logistics.travel_minutes_one_way", [{"valueInteger": 601}]),
        422,
        "linkId='logistics.travel_minutes_one_way'",
    ),
    (
        # A follow-up answered though its gate question was answered no.
        "a rule of the answers",
        _with_item(BASE, "instruments.cssrs.method", [{"valueBoolean": True}]),
        422,
        "linkId='instruments.cssrs'",
    ),
    (
        "not FHIR",
        BASE
        | {"item": [{"linkId": "safety.recent_violence", "answer": [{"valueBoolean": "maybe"}]}]},
        400,
        "valueBoolean",
    ),
    ("another resource", {"resourceType": "Patient", "id": "x"}, 400, ""),
    # AUDIT items are scored on their own scale, not on the PHQ's frequency answers.
    (
        "a code of another instrument's scale",
        _replaced(BASE, AUDIT_1, [{"valueCoding": {"system": LOINC, "code": "LA6571-9"}}]),
        422,
        f"linkId='{AUDIT_1}'",
    ),
    (
        "an item score that is not a number",
        _replaced(
            BASE, AUDIT_1, [{"valueCoding": {"system": VOCABULARY.item_scores, "code": "²"}}]
        ),
        422,
        f"linkId='{AUDIT_1}'",
    ),
    (
        "an item score of many digits",
        _replaced(
            BASE, AUDIT_1, [{"valueCoding": {"system": VOCABULARY.item_scores, "code": "9" * 5000}}]
        ),
        422,
        f"linkId='{AUDIT_1}'",
    ),
    (
        "a boolean written as a number",
        _replaced(BASE, "safety.recent_violence", [{"valueBoolean": 1}]),
        422,
        "linkId='safety.recent_violence'",
    ),
    (
        "a decimal written as a string",
        _with_item(BASE, "medical.temperature_c", [{"valueDecimal": "37.5"}]),
        422,
        "linkId='medical.temperature_c'",
    ),
    (
        "a linkId that is not an identifier",
        _with_item(BASE, "x') or true or ('", [{"valueBoolean": True}]),
        422,
        "an item's linkId is not in the Questionnaire",
    ),
]


@pytest.mark.parametrize(("name", "body", "status", "where"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_a_response_that_cannot_be_used_is_an_operation_outcome_and_stores_nothing(
    client: httpx.AsyncClient, name: str, body: Json, status: int, where: str
) -> None:
    issues = outcome(await evaluate(client, body), status)
    described = json.dumps(issues)
    assert where in described, described
    assert "or true" not in described  # what is not an identifier is not echoed
    assert all(i["severity"] == "error" for i in issues)
    await assert_nothing_stored(client)


async def test_bodies_that_are_not_fhir_json(client: httpx.AsyncClient) -> None:
    outcome(await client.post(EVALUATE, content=b"{not json", headers=FHIR), 400)
    outcome(await client.post(EVALUATE, content=b"<QuestionnaireResponse/>",
                              headers={"content-type": "application/fhir+xml"}), 415)  # fmt: skip
    big = {"resourceType": "QuestionnaireResponse", "text": "x" * 70_000}
    outcome(await client.post(EVALUATE, json=big), 413)
    await assert_nothing_stored(client)


async def test_an_unanswered_item_of_a_given_instrument_counts_as_declined(
    client: httpx.AsyncClient,
) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"))
    panel = next(i for i in walk(response["item"]) if i["linkId"] == "instruments.phq9")
    panel["item"] = [i for i in panel["item"] if i["linkId"] != "instruments.phq9.items.3"]
    bundle = (await evaluate(client, response)).json()
    phq9 = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"].endswith("-phq9"))
    assert phq9["dataAbsentReason"]["coding"][0]["code"] == "asked-declined"
    assert "Items 3 declined" in phq9["note"][-1]["text"]


async def test_an_instrument_said_to_be_given_and_left_blank_is_declined_in_full(
    client: httpx.AsyncClient,
) -> None:
    """A form submitted with "DAST-10 was given" and no DAST-10 answer: every item declined, so the
    screen is open rather than negative."""
    response = response_for(VOCABULARY, answers("adult-iop-suitable"))
    response["item"].append(
        {"linkId": "instruments.dast10.given", "answer": [{"valueBoolean": True}]}
    )
    bundle = (await evaluate(client, response)).json()
    dast = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"].endswith("-dast10"))
    assert dast["dataAbsentReason"]["coding"][0]["code"] == "asked-declined"


async def test_a_given_c_ssrs_left_blank_is_declined_never_safe(
    client: httpx.AsyncClient,
) -> None:
    """The suicide screen said to be given and not answered: its questions count as declined,
    so the risk stays open (urgent, no IOP verdict) instead of reading as a negative screen."""
    answers_ = answers("adult-iop-suitable")
    del answers_["instruments"]["cssrs"]
    response = response_for(VOCABULARY, answers_)
    response["item"].append(
        {"linkId": "instruments.cssrs.given", "answer": [{"valueBoolean": True}]}
    )
    evaluated = await evaluate(client, response)
    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.json()["entry"][0]["resource"]["id"]
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    determination = stored["determination"]
    cssrs = next(s for s in determination["scores"] if s["instrument"] == "cssrs")
    assert cssrs["declined_items"] == [1, 2, 6]
    assert determination["iop"]["verdict"] == "pending_safety_assessment"
    assert determination["urgency"] != "routine"


async def test_a_follow_up_left_blank_after_a_yes_is_declined(client: httpx.AsyncClient) -> None:
    """Active thoughts answered yes and the method, intent and plan questions left blank: they
    count as declined, and the tier stays open."""
    response = _replaced(
        BASE, "instruments.cssrs.non_specific_active_thoughts", [{"valueBoolean": True}]
    )
    evaluated = await evaluate(client, response)
    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.json()["entry"][0]["resource"]["id"]
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    cssrs = next(s for s in stored["determination"]["scores"] if s["instrument"] == "cssrs")
    assert cssrs["declined_items"] == [3, 4, 5]
    assert cssrs["tier"] is None


async def test_crafft_and_asq_follow_ups_are_asked_on_their_conditions(
    client: httpx.AsyncClient,
) -> None:
    """CRAFFT 2.1 Part B beyond CAR only when Part A reports use; ASQ item 5 only after a yes to
    any of items 1-4; the ASQ's items carry no score, CRAFFT's do."""
    questionnaire = (await client.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
    items = {item["linkId"]: item for item in walk(questionnaire["item"])}

    assert "enableWhen" not in items["instruments.crafft.items.1"]
    for number in range(2, 7):
        crafft = items[f"instruments.crafft.items.{number}"]
        assert crafft["enableBehavior"] == "any"
        part_a = [f"instruments.crafft.{name}" for name in ("days_alcohol", "days_cannabis")]
        part_a.append("instruments.crafft.days_other")
        # asked unless every Part A question is answered 0
        assert crafft["enableWhen"] == [
            *({"question": q, "operator": ">", "answerInteger": 0} for q in part_a),
            *({"question": q, "operator": "exists", "answerBoolean": False} for q in part_a),
        ]
        assert "topic only" in crafft["text"]  # CRAFFT's wording needs permission
    assert items["instruments.crafft.days_alcohol"]["type"] == "integer"
    acute = items["instruments.asq.acute"]
    assert acute["enableBehavior"] == "any"
    assert [c["question"] for c in acute["enableWhen"]] == [
        f"instruments.asq.items.{n}" for n in range(1, 5)
    ]
    assert all(c["answerCoding"]["code"] == "LA33-6" for c in acute["enableWhen"])
    assert acute["text"] == "Are you having thoughts of killing yourself right now?"
    assert all("extension" not in o for o in items["instruments.asq.items.1"]["answerOption"])
    assert "ASQ" in questionnaire["copyright"]
    assert "NIMH" in questionnaire["copyright"]


@pytest.mark.parametrize(
    "youth",
    [
        {
            "crafft": {"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [True]},
            "asq": {"items": [True, False, "declined", False], "acute": True},
        },
        {
            "crafft": {"days_alcohol": 4, "days_cannabis": 2, "items": [False, True] + [False] * 4},
            "asq": {"items": [False] * 4},
        },
    ],
)
async def test_crafft_and_asq_round_trip_as_through_rest(
    client: httpx.AsyncClient, youth: Json
) -> None:
    sent = answers("adolescent-step-down")
    sent["instruments"] |= youth
    evaluated = await evaluate(client, response_for(VOCABULARY, sent))

    assert evaluated.status_code == 200, evaluated.text
    bundle = evaluated.json()
    Bundle.model_validate(bundle)
    screening_id = bundle["entry"][0]["resource"]["id"]
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    rest_made = await client.post("/v1/screenings/evaluate", json={"answers": sent})
    assert stored["determination"] == rest_made.json()["determination"]
    scores = {s["instrument"]: s for s in stored["determination"]["scores"]}
    crafft_items = youth["crafft"]["items"]
    assert scores["crafft"]["total"] == sum(1 for item in crafft_items if item is True)
    car_only = any("only the CAR item" in note for note in scores["crafft"]["notes"])
    assert car_only is (len(crafft_items) == 1)
    asq = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"].endswith("-asq"))
    valid(asq)
    if youth["asq"].get("acute"):
        assert asq["valueCodeableConcept"]["coding"][0]["code"] == "acute_positive"
    else:
        assert asq["valueCodeableConcept"]["coding"][0]["code"] == "negative"


@pytest.mark.parametrize(
    ("part_a", "expected"),
    [
        ({}, [False, *[DECLINED] * 5]),  # Part A blank: the form asked items 2-6
        ({"days_alcohol": 0}, [False, *[DECLINED] * 5]),  # one answered 0, two blank
        ({"days_alcohol": 0, "days_cannabis": 0, "days_other": 0}, [False]),  # CAR alone
    ],
)
def test_crafft_part_b_reads_back_as_the_questionnaire_asked_it(
    part_a: Json, expected: list[Any]
) -> None:
    """Items 2-6 are skipped only when every Part A question is answered 0; otherwise the form
    asks them, so left blank they were declined."""
    sent = answers("adolescent-step-down")
    crafft = {**part_a, "items": [False, False, False, False, False, False]}
    sent["instruments"]["crafft"] = crafft
    response = response_for(VOCABULARY, sent)
    part_b = [f"instruments.crafft.items.{n}" for n in range(2, 7)]
    response["item"] = list(_without(response["item"], set(part_b)))
    read = read_response(response, VOCABULARY)
    assert read.answers["instruments"]["crafft"]["items"] == expected


def _without(items: list[Json], link_ids: set[str]) -> Iterator[Json]:
    for item in items:
        if item["linkId"] in link_ids:
            continue
        if "item" in item:
            item = {**item, "item": list(_without(item["item"], link_ids))}
        yield item


async def test_a_given_asq_left_blank_after_a_yes_declines_item_5(
    client: httpx.AsyncClient,
) -> None:
    """A yes to an ASQ item and item 5 left blank: item 5 counts as declined, the result open."""
    sent = answers("adolescent-step-down")
    sent["instruments"]["asq"] = {"items": [False, True, False, False]}
    evaluated = await evaluate(client, response_for(VOCABULARY, sent))

    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.json()["entry"][0]["resource"]["id"]
    stored = (await client.get(f"/v1/screenings/{screening_id}")).json()
    asq = next(s for s in stored["determination"]["scores"] if s["instrument"] == "asq")
    assert (asq["positive"], asq["band"], asq["declined_items"]) == (True, None, [5])


async def test_a_given_total_left_blank_and_a_switch_misused_are_refused(
    client: httpx.AsyncClient,
) -> None:
    base = response_for(VOCABULARY, answers("insufficient-information"))
    blank_total = copy.deepcopy(base)
    blank_total["item"].append(
        {"linkId": "instruments.cows.given", "answer": [{"valueBoolean": True}]}
    )
    nested = copy.deepcopy(base)
    nested["item"].append(
        {
            "linkId": "instruments.phq9.given",
            "answer": [{"valueBoolean": True}],
            "item": [{"linkId": "instruments.phq9.items.9", "answer": [{"valueInteger": 3}]}],
        }
    )
    twice = copy.deepcopy(base)
    switch = {"linkId": "instruments.gad7.given", "answer": [{"valueBoolean": False}]}
    twice["item"] += [switch, switch | {"answer": [{"valueBoolean": True}]}]
    for body, where, what in (
        (blank_total, "instruments.cows.total", "required when the instrument is given"),
        (nested, "instruments.phq9.given", "takes no nested items"),
        (twice, "instruments.gad7.given", "answered more than once"),
    ):
        issues = outcome(await evaluate(client, body), 422)
        assert f"linkId '{where}'" in issues[0]["diagnostics"], issues
        assert what in issues[0]["diagnostics"]
    await assert_nothing_stored(client)


async def test_an_instrument_said_not_to_be_given_takes_no_answers(
    client: httpx.AsyncClient,
) -> None:
    response = response_for(VOCABULARY, answers("adult-iop-suitable"))
    switch = next(i for i in walk(response["item"]) if i["linkId"] == "instruments.phq9.given")
    switch["answer"] = [{"valueBoolean": False}]
    issues = outcome(await evaluate(client, response), 422)
    assert "linkId 'instruments.phq9.given'" in issues[0]["diagnostics"]
    await assert_nothing_stored(client)


async def test_results_of_another_tenant_are_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    bundle = (
        await evaluate(client, response_for(VOCABULARY, answers("adult-iop-suitable")))
    ).json()
    results = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] != "Provenance"
    ]
    ids = [(r["resourceType"], r["id"]) for r in results]
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        for resource_type, resource_id in ids:
            outcome(await other.get(f"/fhir/r4/{resource_type}/{resource_id}"), 404)
    for path in (f"/fhir/r4/Observation/{ids[0][1]}-nope", "/fhir/r4/ServiceRequest/x"):
        outcome(await client.get(path), 404)


async def test_evaluating_and_reading_are_audited(client: httpx.AsyncClient) -> None:
    bundle = (
        await evaluate(client, response_for(VOCABULARY, answers("adult-iop-suitable")))
    ).json()
    screening_id = bundle["entry"][0]["resource"]["id"]
    await client.get(f"/fhir/r4/Observation/{screening_id}-phq9")
    events = (await client.get("/v1/audit-events", params={"resource_id": screening_id})).json()
    assert [(e["action"], e["outcome"]) for e in events["items"]] == [
        ("screening.read", 200),
        ("screening.create", 201),
    ]


# --- terminology and metadata -----------------------------------------------------------------


async def test_code_systems_value_sets_and_capabilities_are_valid_fhir(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    levels = valid((await client.get("/fhir/r4/CodeSystem/level-of-care")).json())
    assert levels["url"] == VOCABULARY.levels
    assert [c["code"] for c in levels["concept"]][:2] == ["outpatient", "intensive_outpatient"]
    verdicts = valid((await client.get("/fhir/r4/ValueSet/iop-verdict")).json())
    assert verdicts["compose"]["include"] == [{"system": VOCABULARY.verdicts}]
    listed = (await client.get("/fhir/r4/CodeSystem")).json()
    assert {e["resource"]["id"] for e in listed["entry"]} == set(code_systems())
    by_url = (
        await client.get("/fhir/r4/ValueSet", params={"url": VOCABULARY.value_set("level-of-care")})
    ).json()
    assert by_url["total"] == 1
    outcome(await client.get("/fhir/r4/ValueSet/urgency"), 404)  # a code system without a value set
    valid((await client.get("/fhir/r4/OperationDefinition/QuestionnaireResponse-evaluate")).json())
    async with http_client(app, None) as anonymous:
        capabilities = await anonymous.get("/fhir/r4/metadata")
    assert capabilities.status_code == 200
    statement = valid(capabilities.json())
    assert statement["fhirVersion"] == "4.0.1"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Questionnaire", "QuestionnaireResponse", "Observation", "ServiceRequest"} <= types


async def test_the_example_response_of_the_docs_is_current_and_evaluates(
    client: httpx.AsyncClient,
) -> None:
    copied = json.loads((EXAMPLES / "fhir" / "questionnaire-response.json").read_text())
    # The file integrators copy is the OpenAPI example (`make docs` regenerates it).
    assert copied == example_response(VOCABULARY)
    bundle = (await evaluate(client, copied)).json()
    level = bundle["entry"][0]["resource"]
    assert level["valueCodeableConcept"]["coding"][0]["code"] == "intensive_outpatient"

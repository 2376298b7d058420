"""Tenants are isolated: a client never sees, lists, replays or decides on another tenant's
screening, and never reads or changes another tenant's rule sets or clients. The answer is
404, exactly as for an id that does not exist, so ids cannot be probed.

Two clinics, ``clinic-a`` and ``clinic-b``, each with an all-scope client; neither is the
operator tenant, so both read the shared rule sets and may only fork them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.fhir.examples import response_for
from app.fhir.terminology import Vocabulary
from app.programs.examples import EVENING_IOP
from tests.api.access_support import UNKNOWN_ID, protected
from tests.support.apps import http_client, new_key
from tests.support.examples import example, level_of
from tests.support.problems import assert_problem

A, B = "clinic-a", "clinic-b"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
# Object endpoints whose objects every tenant shares: terminology and the questions (a
# Questionnaire is named by its key; a pinned version is looked up in the caller's tenant).
SHARED_BY_ALL = {
    "GET /fhir/r4/Questionnaire/{questionnaire_id}",
    "POST /fhir/r4/Questionnaire/{questionnaire_id}/$populate",
    "GET /fhir/r4/CodeSystem/{code_system_id}",
    "GET /fhir/r4/ValueSet/{value_set_id}",
    "GET /fhir/r4/ValueSet/{value_set_id}/$expand",
    "GET /fhir/r4/NamingSystem/{naming_system_id}",
    "GET /fhir/r4/StructureDefinition/{structure_definition_id}",
    "GET /fhir/r4/OperationDefinition/{operation_id}",
}
KEY = "iop-level-of-care"
PERSON = "p-clinic-a-0001"  # clinic-a's pseudonymous id of the person its screening is about
SHARED_VERSIONS = f"/v1/rule-sets/shared/{KEY}/versions"
FORK = f"/v1/rule-sets/{A}/{KEY}"


@dataclass
class World:
    a: httpx.AsyncClient
    b: httpx.AsyncClient
    operator: httpx.AsyncClient
    screening: str  # clinic-a's
    fhir_screening: str  # clinic-a's, from a QuestionnaireResponse
    fork_version: int  # clinic-a's draft of its fork
    fork_etag: str
    a_client: str  # a client of clinic-a
    program: str  # a program of clinic-a's directory
    referral: str  # clinic-a's referral of its screening to the program
    document: dict[str, Any]


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[World]:
    async with (
        http_client(app, await new_key(app, tenant=A, name="clinic-a admin")) as a,
        http_client(app, await new_key(app, tenant=B, name="clinic-b admin")) as b,
    ):
        screening = await a.post(
            "/v1/screenings", json={"answers": example("adult-iop-suitable"), "person_id": PERSON}
        )
        assert screening.status_code == 201, screening.text
        fork = await a.post(
            f"{FORK}/versions", params={"copy_from": 1, "copy_from_owner": "shared"}
        )
        assert fork.status_code == 201, fork.text
        created = await a.post("/v1/clients", json={"name": "intake", "scopes": ["admin"]})
        assert created.status_code == 201, created.text
        program = await a.post("/v1/programs", json=EVENING_IOP)
        assert program.status_code == 201, program.text
        referral = await a.post(
            f"/v1/screenings/{screening.json()['id']}/referrals",
            json={"program_id": program.json()["id"], "referred_by": "clinician-1"},
        )
        assert referral.status_code == 201, referral.text
        response = response_for(VOCABULARY, example("adult-iop-suitable"), subject="Patient/7")
        evaluated = await a.post("/fhir/r4/QuestionnaireResponse/$evaluate", json=response)
        assert evaluated.status_code == 200, evaluated.text
        yield World(
            a=a,
            b=b,
            operator=client,
            screening=screening.json()["id"],
            fhir_screening=evaluated.json()["entry"][0]["resource"]["id"],
            fork_version=fork.json()["version"],
            fork_etag=fork.headers["etag"],
            a_client=created.json()["id"],
            program=program.json()["id"],
            referral=referral.json()["id"],
            document=copy.deepcopy(fork.json()["content"]),
        )


def object_requests(w: World) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Every operation that names one of clinic-a's objects, as (method, path, request
    arguments) that succeed for clinic-a. Keys are the OpenAPI operations they cover."""
    version = f"{FORK}/versions/{w.fork_version}"
    decision = {"final_level": "intensive_outpatient", "decided_by": "clinician-1"}
    return {
        "GET /v1/screenings/{screening_id}": ("GET", f"/v1/screenings/{w.screening}", {}),
        "GET /v1/people/{person_id}/screenings": ("GET", f"/v1/people/{PERSON}/screenings", {}),
        "POST /v1/screenings/{screening_id}/replay": (
            "POST",
            f"/v1/screenings/{w.screening}/replay",
            {},
        ),
        "POST /v1/screenings/{screening_id}/decision": (
            "POST",
            f"/v1/screenings/{w.screening}/decision",
            {"json": decision},
        ),
        "POST /v1/screenings/{screening_id}/referrals": (
            "POST",
            f"/v1/screenings/{w.screening}/referrals",
            {"json": {"program_id": w.program, "referred_by": "clinician-1"}},
        ),
        "GET /v1/screenings/{screening_id}/referrals": (
            "GET",
            f"/v1/screenings/{w.screening}/referrals",
            {},
        ),
        "GET /v1/screenings/{screening_id}/referrals/{referral_id}": (
            "GET",
            f"/v1/screenings/{w.screening}/referrals/{w.referral}",
            {},
        ),
        "GET /v1/rule-sets/{owner}/{key}/versions": ("GET", f"{FORK}/versions", {}),
        "GET /v1/rule-sets/{owner}/{key}/versions/{version}": ("GET", version, {}),
        "GET /v1/rule-sets/{owner}/{key}/versions/{version}/export": (
            "GET",
            f"{version}/export",
            {},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions/{version}/validate": (
            "POST",
            f"{version}/validate",
            {},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions/{version}/simulate": (
            "POST",
            f"{version}/simulate",
            {},
        ),
        "GET /v1/rule-sets/{owner}/{key}/versions/{version}/overrides": (
            "GET",
            f"{version}/overrides",
            {},
        ),
        "GET /v1/rule-sets/{owner}/{key}/diff": (
            "GET",
            f"{FORK}/diff",
            {"params": {"from": 1, "to": w.fork_version, "from_owner": "shared"}},
        ),
        "PUT /v1/rule-sets/{owner}/{key}/versions/{version}": (
            "PUT",
            version,
            {"json": w.document, "headers": {"If-Match": w.fork_etag}},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions": (
            "POST",
            f"{FORK}/versions",
            {"params": {"copy_from": w.fork_version}},
        ),
        "POST /v1/rule-sets/{owner}/import": (
            "POST",
            f"/v1/rule-sets/{A}/import",
            {"json": w.document},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions/{version}/publish": (
            "POST",
            f"{version}/publish",
            {},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions/{version}/activate": (
            "POST",
            f"{version}/activate",
            {},
        ),
        "POST /v1/rule-sets/{owner}/{key}/versions/{version}/retire": (
            "POST",
            f"{FORK}/versions/{w.fork_version + 1}/retire",
            {},
        ),
        "DELETE /v1/rule-sets/{owner}/{key}/versions/{version}": (
            "DELETE",
            f"{FORK}/versions/{w.fork_version + 2}",
            {"headers": {"If-Match": "*"}},
        ),
        "GET /fhir/r4/Observation/{observation_id}": (
            "GET",
            f"/fhir/r4/Observation/{w.screening}",
            {},
        ),
        "GET /fhir/r4/ServiceRequest/{service_request_id}": (
            "GET",
            f"/fhir/r4/ServiceRequest/{w.fhir_screening}-referral",
            {},
        ),
        "GET /fhir/r4/Questionnaire/{questionnaire_id}/_history/{version_id}": (
            "GET",
            f"/fhir/r4/Questionnaire/{KEY}/_history/{A}.{w.fork_version + 1}",
            {},
        ),
        "GET /v1/clients/{client_id}": ("GET", f"/v1/clients/{w.a_client}", {}),
        "POST /v1/clients/{client_id}/revoke": ("POST", f"/v1/clients/{w.a_client}/revoke", {}),
        "GET /v1/programs/{program_id}": ("GET", f"/v1/programs/{w.program}", {}),
        "GET /fhir/r4/HealthcareService/{program_id}": (
            "GET",
            f"/fhir/r4/HealthcareService/{w.program}",
            {},
        ),
        "PUT /v1/programs/{program_id}": (
            "PUT",
            f"/v1/programs/{w.program}",
            {"json": EVENING_IOP, "headers": {"If-Match": '"1"'}},
        ),
        "POST /v1/programs/{program_id}/retire": (
            "POST",
            f"/v1/programs/{w.program}/retire",
            {"headers": {"If-Match": '"2"'}},
        ),
    }


async def snapshot(w: World) -> dict[str, Any]:
    """What clinic-a can see of its own objects."""
    screening = (await w.a.get(f"/v1/screenings/{w.screening}")).json()
    versions = (await w.a.get(f"{FORK}/versions")).json()
    client = (await w.a.get(f"/v1/clients/{w.a_client}")).json()
    program = (await w.a.get(f"/v1/programs/{w.program}")).json()
    return {"screening": screening, "versions": versions, "client": client, "program": program}


def _without_names(response: httpx.Response) -> dict[str, Any]:
    """A 404's body without what names the object asked for (its id, the request id)."""
    assert response.status_code == 404, response.text
    body: dict[str, Any] = response.json()
    if body.get("resourceType") == "OperationOutcome":
        return {
            "issue": [{k: v for k, v in i.items() if k != "diagnostics"} for i in body["issue"]]
        }
    return {
        k: v for k, v in assert_problem(response, 404).items() if k not in ("instance", "detail")
    }


async def test_every_object_endpoint_is_404_for_another_tenant_and_works_for_its_own(
    app: FastAPI, world: World
) -> None:
    requests = object_requests(world)
    object_operations = {str(op) for op in protected(app) if "{" in op.template}
    assert object_operations == set(requests) | SHARED_BY_ALL, "add object endpoints to the matrix"

    # Objects for the lifecycle requests to act on: a published version to retire and a
    # draft to delete.
    for _ in range(2):
        extra = await world.a.post(
            f"{FORK}/versions", params={"copy_from": 1, "copy_from_owner": "shared"}
        )
        assert extra.status_code == 201, extra.text
    assert (await world.a.post(f"{FORK}/versions/{world.fork_version + 1}/publish")).is_success

    before = await snapshot(world)
    for name, (method, path, arguments) in requests.items():
        foreign = await world.b.request(method, path, **arguments)
        # The same answer as for something that does not exist: nothing to probe.
        unknown_path = path
        for known in (world.screening, world.fhir_screening, world.a_client, world.program):
            unknown_path = unknown_path.replace(known, UNKNOWN_ID)
        unknown = await world.a.request(method, unknown_path.replace(A, "clinic-z"), **arguments)
        assert _without_names(foreign) == _without_names(unknown), name
    assert await snapshot(world) == before  # nothing changed, nothing was decided

    # The same requests, in this order, succeed for clinic-a itself (they change things:
    # a decision, a published and active fork, a retired and a deleted version).
    for name, (method, path, arguments) in requests.items():
        own = await world.a.request(method, path, **arguments)
        assert own.status_code in (200, 201, 204), (name, own.text)


async def test_lists_show_only_the_tenants_own(app: FastAPI, world: World) -> None:
    assert (await world.b.get("/v1/screenings")).json()["items"] == []
    assert {s["id"] for s in (await world.a.get("/v1/screenings")).json()["items"]} == {
        world.screening,
        world.fhir_screening,
    }
    assert {(s["owner"], s["key"]) for s in (await world.b.get("/v1/rule-sets")).json()} == {
        ("shared", KEY)
    }
    assert {(s["owner"], s["key"]) for s in (await world.a.get("/v1/rule-sets")).json()} == {
        ("shared", KEY),
        (A, KEY),
    }
    b_clients = (await world.b.get("/v1/clients")).json()["items"]
    assert {c["tenant"] for c in b_clients} == {B}
    a_clients = (await world.a.get("/v1/clients")).json()["items"]
    assert {c["tenant"] for c in a_clients} == {A}
    assert (await world.b.get("/v1/programs", params={"include_retired": True})).json() == {
        "items": [],
        "next_cursor": None,
    }
    a_programs = (await world.a.get("/v1/programs")).json()["items"]
    assert [p["id"] for p in a_programs] == [world.program]
    b_events = (await world.b.get("/v1/audit-events", params={"limit": 1000})).json()["items"]
    assert b_events
    assert {e["tenant"] for e in b_events} == {B}
    assert all(world.screening != e["resource_id"] for e in b_events)
    # The screening list filters cannot reach across either.
    reference = await world.b.get("/v1/screenings", params={"rule_set_key": KEY})
    assert reference.json()["items"] == []


async def test_matching_reaches_neither_another_tenants_screening_nor_its_programs(
    world: World,
) -> None:
    foreign = await world.b.post("/v1/program-matches", json={"screening_id": world.screening})
    own = await world.b.post("/v1/program-matches", json={"answers": example("adult-iop-suitable")})
    theirs = await world.a.post("/v1/program-matches", json={"screening_id": world.screening})

    assert_problem(foreign, 404)
    assert (own.json()["considered"], own.json()["candidates"]) == (0, [])
    assert [c["program"]["id"] for c in theirs.json()["candidates"]] == [world.program]


async def test_fhir_finds_neither_another_tenants_programs_nor_its_referrals(
    world: World,
) -> None:
    referred = await world.a.post(
        f"/v1/screenings/{world.screening}/referrals",
        json={"program_id": world.program, "referred_by": "clinician-1"},
    )
    assert referred.status_code == 201, referred.text
    order = f"/fhir/r4/ServiceRequest/{referred.json()['id']}"

    foreign = await world.b.get(order)
    unknown = await world.a.get(f"/fhir/r4/ServiceRequest/{UNKNOWN_ID}")
    assert _without_names(foreign) == _without_names(unknown)
    own = await world.a.get(order)
    assert own.json()["performer"][0]["reference"] == f"HealthcareService/{world.program}"
    searched = {"_id": world.program}
    theirs = (await world.b.get("/fhir/r4/HealthcareService", params=searched)).json()
    mine = (await world.a.get("/fhir/r4/HealthcareService", params=searched)).json()
    assert (len(theirs["entry"]), len(mine["entry"])) == (0, 1)


async def test_an_idempotency_key_belongs_to_the_client_that_sent_it(world: World) -> None:
    body = {"answers": example("adult-iop-suitable")}
    headers = {"Idempotency-Key": "shared-by-accident-1"}
    first = await world.a.post("/v1/screenings", json=body, headers=headers)
    other_tenant = await world.b.post("/v1/screenings", json=body, headers=headers)

    assert (first.status_code, other_tenant.status_code) == (201, 201)
    assert "idempotent-replayed" not in other_tenant.headers
    assert other_tenant.json()["id"] != first.json()["id"]
    again = await world.a.post("/v1/screenings", json=body, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]


async def test_a_tenant_cannot_pin_or_replay_under_another_tenants_rule_set(
    world: World,
) -> None:
    pinned = await world.b.post(
        "/v1/screenings",
        json={"answers": example("adult-iop-suitable"), "rule_set": {"owner": A, "key": KEY}},
    )
    assert [e["pointer"] for e in assert_problem(pinned, 422)["errors"]] == ["#/rule_set/owner"]
    own = await world.b.post("/v1/screenings", json={"answers": example("adult-iop-suitable")})
    replay = await world.b.post(
        f"/v1/screenings/{own.json()['id']}/replay", json={"owner": A, "version": 1}
    )
    assert_problem(replay, 422)


async def test_only_the_operator_tenant_changes_shared_rule_sets(world: World) -> None:
    refused = await world.b.post(SHARED_VERSIONS, params={"copy_from": 1})
    body = assert_problem(refused, 403, "forbidden")
    assert "Fork" in body["detail"]
    for action in ("publish", "activate", "retire"):
        assert_problem(await world.b.post(f"{SHARED_VERSIONS}/1/{action}"), 403, "forbidden")
    assert_problem(await world.b.post("/v1/rule-sets/shared/import", json=world.document), 403)
    # The operator may, and its drafts stay its own until published.
    draft = await world.operator.post(SHARED_VERSIONS, params={"copy_from": 1})
    assert draft.status_code == 201, draft.text
    number = draft.json()["version"]
    assert_problem(await world.b.get(f"{SHARED_VERSIONS}/{number}"), 404)
    assert [v["version"] for v in (await world.b.get(SHARED_VERSIONS)).json()] == [1]
    listed = {s["key"]: s for s in (await world.b.get("/v1/rule-sets")).json()}
    assert (listed[KEY]["latest_version"], listed[KEY]["versions"]) == (1, 1)
    pinned = await world.b.post(
        "/v1/screenings",
        json={"answers": example("adult-iop-suitable"), "rule_set": {"version": number}},
    )
    assert [e["detail"] for e in assert_problem(pinned, 422)["errors"]] == ["no such version"]
    published = await world.operator.post(f"{SHARED_VERSIONS}/{number}/publish")
    assert published.status_code == 200, published.text
    assert (await world.b.get(f"{SHARED_VERSIONS}/{number}")).status_code == 200
    # A new shared rule set with drafts only does not exist yet for the other tenants.
    new = copy.deepcopy(world.document) | {"key": "new-pathway"}
    assert (await world.operator.post("/v1/rule-sets/shared/import", json=new)).status_code == 201
    assert "new-pathway" not in {s["key"] for s in (await world.b.get("/v1/rule-sets")).json()}
    assert_problem(await world.b.get("/v1/rule-sets/shared/new-pathway/versions"), 404)
    assert (await world.operator.get("/v1/rule-sets/shared/new-pathway/versions")).is_success


async def test_populate_pinned_to_another_tenants_version_is_404_like_an_unknown_one(
    world: World,
) -> None:
    published = await world.a.post(f"{FORK}/versions/{world.fork_version}/publish")
    assert published.status_code == 200, published.text
    read = await world.a.get(f"/fhir/r4/Questionnaire/{KEY}")
    canonical = read.json()["url"]  # the canonical base the service serves

    def pinned_to(version: str) -> dict[str, Any]:
        return {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "subject", "valueReference": {"reference": "Patient/7"}},
                {"name": "questionnaire", "valueCanonical": f"{canonical}|{version}"},
            ],
        }

    populate = f"/fhir/r4/Questionnaire/{KEY}/$populate"
    mine = pinned_to(f"{A}.{world.fork_version}")
    own = await world.a.post(populate, json=mine)
    assert own.status_code == 200, own.text
    foreign = await world.b.post(populate, json=mine)
    unknown = await world.b.post(populate, json=pinned_to(f"clinic-z.{world.fork_version}"))
    assert _without_names(foreign) == _without_names(unknown)
    shared = await world.b.post(populate, json=pinned_to("shared.1"))
    assert shared.status_code == 200, shared.text


def _stricter(document: dict[str, Any]) -> dict[str, Any]:
    """The fork a clinic makes: failed weekly outpatient care steps up to partial
    hospitalization rather than IOP (and the cases that pin the rule say so)."""
    changed = copy.deepcopy(document)
    for stage in changed["stages"]:
        for rule in stage["rules"]:
            if rule["id"] == "place.iop-step-up":
                rule["level"] = "partial_hospitalization"
    for case in changed["tests"]:
        if "place.iop-step-up" in case["expect"].get("fired", []):
            case["expect"].update(level="partial_hospitalization", iop="higher_level_needed")
    return changed


async def test_a_tenants_active_fork_decides_its_screenings_and_no_one_elses(
    world: World,
) -> None:
    answers = example("adult-iop-suitable")  # outpatient care did not help: the step-up rule
    before = await world.a.post("/v1/screenings", json={"answers": answers})
    assert before.json()["rule_set"]["owner"] == "shared"  # a draft fork decides nothing

    version = f"{FORK}/versions/{world.fork_version}"
    edited = await world.a.put(
        version, json=_stricter(world.document), headers={"If-Match": world.fork_etag}
    )
    assert edited.status_code == 200, edited.text
    assert (await world.a.post(f"{version}/publish")).status_code == 200
    activated = await world.a.post(f"{version}/activate")
    assert activated.json()["owner"] == A

    mine = (await world.a.post("/v1/screenings", json={"answers": answers})).json()
    theirs = (await world.b.post("/v1/screenings", json={"answers": answers})).json()

    assert (mine["rule_set"]["owner"], mine["rule_set"]["version"]) == (A, world.fork_version)
    assert level_of(mine["determination"]) == "partial_hospitalization"
    assert theirs["rule_set"]["owner"] == "shared"
    assert level_of(theirs["determination"]) == "intensive_outpatient"
    # Pinning without an owner means the tenant's own rule set once it has one...
    pinned = await world.a.post(
        "/v1/screenings", json={"answers": answers, "rule_set": {"version": world.fork_version}}
    )
    assert pinned.json()["rule_set"]["owner"] == A
    # ...and the shared one is still there by name.
    shared = await world.a.post(
        "/v1/screenings",
        json={"answers": answers, "rule_set": {"owner": "shared", "version": 1}},
    )
    assert (shared.json()["rule_set"]["owner"], level_of(shared.json()["determination"])) == (
        "shared",
        "intensive_outpatient",
    )
    # A replay of the earlier screening under the fork is a what-if.
    what_if = await world.a.post(f"/v1/screenings/{before.json()['id']}/replay", json={"owner": A})
    assert what_if.status_code == 200, what_if.text
    assert (what_if.json()["what_if"], what_if.json()["level_after"]) == (
        True,
        "partial_hospitalization",
    )
    diff = await world.a.get(
        f"{FORK}/diff", params={"from": 1, "from_owner": "shared", "to": world.fork_version}
    )
    assert [r["rule_id"] for r in diff.json()["rules"]] == ["place.iop-step-up"]

"""The program directory in FHIR: programs read and searched as HealthcareServices (tenancy,
retired programs inactive, the search parameters), recorded referrals read and searched as
ServiceRequests that name the program as performer, and the pure mappings behind them."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event

from app.engine.determination import LevelOfCare
from app.engine.programs import DirectoryEntry, ProgramDocument
from app.fhir.healthcare_service import availability, available_times, healthcare_service
from app.fhir.outcome import FhirError
from app.fhir.referrals import person_system, referral_request
from app.fhir.search import DEFAULT_COUNT, MAX_COUNT, parse_service_search, program_criteria
from app.fhir.terminology import Vocabulary
from app.kernel.db import new_id
from app.programs.models import Program
from app.programs.repository import ascii_lower
from app.referrals.models import Referral
from app.screenings.models import Screening
from app.screenings.repository import ScreeningRepository
from app.security.principal import Scope
from tests.api.test_fhir_search import evaluated
from tests.support.apps import OPERATOR_TENANT, http_client, new_key
from tests.support.fhir import outcome, valid

Json = dict[str, Any]
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
EVENING_IOP: Json = {
    "name": "Évening IOP, Riverside clinic",
    "description": "Group and individual therapy three evenings a week.",
    "operated_by": "Riverside Health",
    "level": "intensive_outpatient",
    "populations": ["adult", "older_adult"],
    "specialties": ["substance_use", "mental_health"],
    "co_occurring_capability": "capable",
    "services": ["moud"],
    "modality": "hybrid",
    "timetable": [
        {"day": "monday", "start": "18:00", "end": "21:00", "modality": "in_person"},
        {"day": "wednesday", "start": "18:00", "end": "21:00", "modality": "telehealth"},
        {"day": "saturday", "start": "10:00", "end": "13:00", "modality": "in_person"},
    ],
    "location": {
        "label": "Riverside clinic",
        "address": "1 River St",
        "latitude": 40.1,
        "longitude": -75.2,
    },
    "languages": ["en", "es"],
    "capacity": {"open_places": 2, "waitlist_weeks": 3},
    "contact": {"phone": "+1 555 0100", "url": "https://riverside.example/iop"},
}
DAY_PROGRAM: Json = {
    "name": "Day program",
    "level": "partial_hospitalization",
    "populations": ["adolescent"],
    "specialties": ["eating_disorder"],
    "modality": "in_person",
    "languages": ["en"],
    "accepting_referrals": False,
}


def document(body: Json) -> ProgramDocument:
    return ProgramDocument.model_validate(body)


async def stored_program(
    app: FastAPI, body: Json, *, tenant: str = OPERATOR_TENANT, retired: bool = False
) -> str:
    """A program of ``tenant``'s directory, written as the programs table holds it."""
    program = document(body)
    row = Program(
        id=new_id(),
        tenant_id=tenant,
        version=2,
        name=program.name,
        level=program.level.value,
        document=program.model_dump(mode="json"),
        created_by="tests",
        updated_by="tests",
        retired_at=datetime.now(UTC) if retired else None,
        retired_by="tests" if retired else None,
    )
    async with app.state.sessions() as session, session.begin():
        session.add(row)
    return row.id


async def stored_referral(app: FastAPI, screening_id: str, program_id: str) -> str:
    async with app.state.sessions() as session, session.begin():
        screening = await ScreeningRepository(session).get(OPERATOR_TENANT, screening_id)
        assert screening is not None
        row = Referral(
            id=new_id(),
            tenant_id=screening.tenant_id,
            client_id="tests",
            screening_id=screening.id,
            screening_created_at=screening.created_at,
            program_id=program_id,
            program_version=2,
            program=document(EVENING_IOP).model_dump(mode="json"),
            level="intensive_outpatient",
            match={"fits": True},
            referred_by="Dr. Rivera",
            note="Prefers evening sessions.",
        )
        session.add(row)
    return row.id


# --- HealthcareService through the API --------------------------------------------------------


async def test_a_program_reads_as_a_valid_healthcare_service(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    program_id = await stored_program(app, EVENING_IOP)
    answered = await client.get(f"/fhir/r4/HealthcareService/{program_id}")
    assert answered.status_code == 200, answered.text
    assert answered.headers["content-type"] == "application/fhir+json"
    service = valid(answered.json())
    assert service["id"] == program_id
    assert service["meta"]["versionId"] == "2"
    assert service["active"] is True
    assert service["category"][0]["coding"][0]["code"] == "intensive_outpatient"
    assert service["location"] == [{"reference": "#loc", "display": "Riverside clinic"}]
    assert service["contained"][0]["position"] == {"longitude": -75.2, "latitude": 40.1}


async def test_a_retired_program_is_inactive_and_another_tenants_is_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    retired = await stored_program(app, DAY_PROGRAM, retired=True)
    theirs = await stored_program(app, EVENING_IOP, tenant="clinic-b")
    read = await client.get(f"/fhir/r4/HealthcareService/{retired}")
    assert read.json()["active"] is False
    assert outcome(await client.get(f"/fhir/r4/HealthcareService/{theirs}"), 404)
    assert outcome(await client.get(f"/fhir/r4/HealthcareService/{new_id()}"), 404)


async def test_the_directory_is_searched_by_active_name_category_and_id(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    iop = await stored_program(app, EVENING_IOP)
    day = await stored_program(app, DAY_PROGRAM, retired=True)
    await stored_program(app, EVENING_IOP, tenant="clinic-b")

    async def found(**params: str) -> list[str]:
        answered = await client.get("/fhir/r4/HealthcareService", params=params)
        assert answered.status_code == 200, answered.text
        bundle = valid(answered.json())
        return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]

    assert await found() == [iop, day]
    assert await found(active="true") == [iop]
    assert await found(active="false") == [day]
    assert await found(name="ÉVENING") == [iop]  # the case of A to Z ignored
    assert await found(name="Év,nothing") == [iop]
    assert await found(name="év") == await found(name="evening") == []  # accents as written
    assert await found(name="IOP") == []  # starts with, not contains
    assert await found(name="_") == await found(name="%") == []  # no wildcards
    assert await found(name="day", active="false") == [day]
    assert await found(**{"service-category": "partial_hospitalization"}) == [day]
    system = VOCABULARY.levels.replace("carelevel.dev", "nowhere.example")
    assert await found(**{"service-category": f"{system}|partial_hospitalization"}) == []
    assert await found(_id=f"{day},{new_id()}") == [day]
    issues = outcome(await client.get("/fhir/r4/HealthcareService", params={"active": "yes"}), 400)
    assert issues[0]["diagnostics"].startswith("active:")


async def test_the_directory_is_paged_by_count_and_the_next_link(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    stored = [await stored_program(app, EVENING_IOP | {"name": f"IOP {i}"}) for i in range(5)]
    await stored_program(app, DAY_PROGRAM)  # not an IOP: filtered out of every page
    await stored_program(app, EVENING_IOP | {"name": "IOP of clinic-b"}, tenant="clinic-b")
    url: str | None = "/fhir/r4/HealthcareService?name=iop&_count=2"
    pages: list[list[str]] = []
    while url is not None:
        answered = await client.get(url, headers={"Prefer": "handling=strict"})
        assert answered.status_code == 200, answered.text
        bundle = valid(answered.json())
        links = {link["relation"]: link["url"] for link in bundle["link"]}
        assert links["self"].endswith("/fhir/r4/HealthcareService?name=iop&_count=2")
        pages.append([e["resource"]["id"] for e in bundle["entry"]])
        url = links.get("next")
    assert pages == [stored[:2], stored[2:4], stored[4:]]


async def test_a_page_holds_the_default_count_and_the_most_a_client_may_ask(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for i in range(DEFAULT_COUNT + 1):
        await stored_program(app, DAY_PROGRAM | {"name": f"Day {i}"})

    async def page(**params: str) -> Json:
        answered = await client.get("/fhir/r4/HealthcareService", params=params)
        assert answered.status_code == 200, answered.text
        return dict(answered.json())

    first = await page()
    assert len(first["entry"]) == DEFAULT_COUNT
    assert [link["relation"] for link in first["link"]] == ["self", "next"]
    assert len((await page(_count=str(MAX_COUNT + 1)))["entry"]) == DEFAULT_COUNT + 1
    issues = outcome(await client.get("/fhir/r4/HealthcareService", params={"_count": "0"}), 400)
    assert issues[0]["diagnostics"].startswith("_count:")
    refused = await client.get("/fhir/r4/HealthcareService", params={"_cursor": "bm9wZQ"})
    assert outcome(refused, 400)


async def test_a_page_is_one_query_of_at_most_a_page_and_one_more_program(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for i in range(4):
        await stored_program(app, DAY_PROGRAM | {"name": f"Day {i}"})
    read: list[tuple[Any, ...]] = []

    def reading(_: Any, __: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FROM programs" in statement:
            read.append(tuple(parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "after_cursor_execute", reading)
    try:
        answered = await client.get("/fhir/r4/HealthcareService", params={"_count": "1"})
    finally:
        event.remove(engine, "after_cursor_execute", reading)
    assert len(answered.json()["entry"]) == 1
    assert len(read) == 1
    assert 2 in read[0]  # the LIMIT: the page and one more, to know whether there is a next


async def test_the_directory_needs_the_programs_read_scope(app: FastAPI) -> None:
    program_id = await stored_program(app, EVENING_IOP)
    key = await new_key(app, scopes={Scope.SCREENINGS_READ})
    async with http_client(app, key) as reader:
        assert outcome(await reader.get(f"/fhir/r4/HealthcareService/{program_id}"), 403)
        assert outcome(await reader.get("/fhir/r4/HealthcareService"), 403)


async def test_the_capability_statement_declares_the_healthcare_service_search(
    client: httpx.AsyncClient,
) -> None:
    capability = (await client.get("/fhir/r4/metadata")).json()
    declared = {r["type"]: r for r in capability["rest"][0]["resource"]}
    names = {p["name"] for p in declared["HealthcareService"]["searchParam"]}
    assert names == {"_id", "active", "name", "service-category"}


# --- recorded referrals as ServiceRequests ----------------------------------------------------


async def test_a_recorded_referral_reads_and_is_found_as_an_order_to_the_program(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    screening_id = await evaluated(client, "Patient/p-7")
    program_id = await stored_program(app, EVENING_IOP)
    referral_id = await stored_referral(app, screening_id, program_id)
    answered = await client.get(f"/fhir/r4/ServiceRequest/{referral_id}")
    assert answered.status_code == 200, answered.text
    order = valid(answered.json())
    assert (order["id"], order["intent"], order["status"]) == (referral_id, "order", "active")
    assert order["subject"] == {"reference": "Patient/p-7"}
    assert order["performer"][0]["reference"] == f"HealthcareService/{program_id}"
    assert order["basedOn"] == [{"reference": f"ServiceRequest/{screening_id}-referral"}]
    assert order["reasonReference"] == [{"reference": f"Observation/{screening_id}"}]

    searched = await client.get("/fhir/r4/ServiceRequest", params={"patient": "p-7"})
    found = [e["resource"]["id"] for e in searched.json()["entry"]]
    assert found == [f"{screening_id}-referral", referral_id]
    by_identifier = await client.get("/fhir/r4/ServiceRequest", params={"identifier": referral_id})
    assert [e["resource"]["id"] for e in by_identifier.json()["entry"]] == [referral_id]


async def test_another_tenant_cannot_read_a_referral(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    screening_id = await evaluated(client, "Patient/p-8")
    referral_id = await stored_referral(app, screening_id, await stored_program(app, EVENING_IOP))
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        assert outcome(await other.get(f"/fhir/r4/ServiceRequest/{referral_id}"), 404)


# --- the pure mappings ------------------------------------------------------------------------


def test_the_timetable_is_grouped_by_hours_over_days() -> None:
    assert available_times(document(EVENING_IOP)) == [
        {"daysOfWeek": ["sat"], "availableStartTime": "10:00:00", "availableEndTime": "13:00:00"},
        {
            "daysOfWeek": ["mon", "wed"],
            "availableStartTime": "18:00:00",
            "availableEndTime": "21:00:00",
        },
    ]
    assert available_times(document(DAY_PROGRAM)) == []


def test_availability_says_the_wait_the_places_and_whether_referrals_are_taken() -> None:
    assert availability(document(EVENING_IOP)) == "Estimated wait: 3 weeks. 2 places open."
    assert availability(document(DAY_PROGRAM)) == "Not accepting referrals."
    one = document(DAY_PROGRAM | {"accepting_referrals": True, "capacity": {"open_places": 1}})
    assert availability(one) == "1 place open."
    assert availability(document(DAY_PROGRAM | {"accepting_referrals": True})) == (
        "Accepting referrals."
    )


def test_the_healthcare_service_codes_what_the_program_offers() -> None:
    entry = DirectoryEntry(new_id(), 1, document(EVENING_IOP))
    service = valid(healthcare_service(VOCABULARY, entry, retired=False))
    assert [e["code"]["coding"][0]["code"] for e in service["eligibility"]] == [
        "adult",
        "older_adult",
    ]
    assert [c["coding"][0]["code"] for c in service["program"]] == [
        "intensive_outpatient",
        "capable",
        "moud",
    ]
    assert [c["coding"][0]["code"] for c in service["communication"]] == ["en", "es"]
    assert service["characteristic"][0]["coding"][0]["code"] == "hybrid"
    assert service["providedBy"] == {"display": "Riverside Health"}
    assert {t["system"] for t in service["telecom"]} == {"phone", "url"}
    bare = healthcare_service(
        VOCABULARY, DirectoryEntry("x", 1, document(DAY_PROGRAM)), retired=True
    )
    assert "contained" not in bare
    assert "location" not in bare
    assert "telecom" not in bare
    assert bare["active"] is False


def test_a_search_asks_the_programs_table_for_what_fhir_parameters_say() -> None:
    search = parse_service_search(
        [
            ("name", "Ev,Da"),
            ("colour", "red"),
            ("active", "false"),
            ("service-category", f"{VOCABULARY.levels}|residential,elsewhere|inpatient"),
            ("service-category", "|residential"),
            ("_count", "5"),
            ("_cursor", "abc"),
        ],
        strict=False,
    )
    assert (search.count, search.cursor, search.ignored) == (5, "abc", ("colour",))
    assert ("_cursor", "abc") not in search.used
    criteria = program_criteria(search, VOCABULARY.levels)
    assert criteria.name_prefixes == (("Ev", "Da"),)
    assert criteria.retired is True
    assert criteria.levels == (frozenset({"residential"}), frozenset())
    any_level = parse_service_search([("service-category", f"{VOCABULARY.levels}|")], strict=False)
    every = program_criteria(any_level, VOCABULARY.levels)
    assert every.levels == (frozenset(level.value for level in LevelOfCare),)
    with pytest.raises(FhirError) as refused:
        parse_service_search([("_count", "1"), ("_count", "2")], strict=True)
    assert refused.value.issues[0].diagnostics == "_count: may be given once"


@given(st.text(max_size=20))
def test_the_name_search_lowers_a_to_z_and_nothing_else(text: str) -> None:
    lowered = ascii_lower(text)
    assert len(lowered) == len(unicodedata.normalize("NFC", text))
    for before, after in zip(unicodedata.normalize("NFC", text), lowered, strict=True):
        assert after == (before.lower() if "A" <= before <= "Z" else before)


def test_a_referral_names_the_person_by_subject_person_id_or_description() -> None:
    screening = Screening(id=new_id(), tenant_id="clinic-a", fhir_context={}, person_id=None)
    referral = Referral(
        id=new_id(),
        program_id=new_id(),
        program={"name": "Day program"},
        level=LevelOfCare.PARTIAL_HOSPITALIZATION.value,
        referred_by="Dr. Rivera",
        note=None,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
    )
    described = valid(referral_request(VOCABULARY, referral, screening, proposed=False))
    assert described["subject"] == {
        "display": f"Person screened in carelevel screening {screening.id}"
    }
    assert "basedOn" not in described
    assert "note" not in described
    screening.person_id = "person-000123"
    named = referral_request(VOCABULARY, referral, screening, proposed=False)
    assert named["subject"]["identifier"] == {
        "system": person_system("clinic-a"),
        "value": "person-000123",
    }
    screening.fhir_context = {"subject": {"reference": "Patient/9"}}
    subject = referral_request(VOCABULARY, referral, screening, proposed=True)["subject"]
    assert subject == {"reference": "Patient/9"}

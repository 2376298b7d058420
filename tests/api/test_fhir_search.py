"""FHIR R4 completeness through the public API: stored results searched by patient (code, date,
paging, tenants), canonical searches by ``url|version``, ``ValueSet/$expand``, NamingSystems,
JSON-only content negotiation and canonical URLs that resolve; and the pure date and token
matching of app/fhir/search.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.examples import response_for
from app.fhir.search import Search, date_range, matches, parse_search
from app.fhir.terminology import LOINC, Vocabulary
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE, Settings
from app.screenings.models import normal_reference
from tests.support.apps import http_client, new_key, started_app
from tests.support.examples import example as answers
from tests.support.fhir import EVALUATE, FHIR, valid
from tests.support.fhir import outcome as issues

Json = dict[str, Any]
LEGACY = Vocabulary(LEGACY_FHIR_CANONICAL_BASE)
LEVEL = f"{LEGACY_FHIR_CANONICAL_BASE}/CodeSystem/observation|level-of-care-recommendation"
PHQ9_TOTAL = f"{LOINC}|44261-6"


async def evaluated(
    client: httpx.AsyncClient,
    subject: str | None,
    *,
    authored: str = "2026-11-26T14:05:00Z",
    vocabulary: Vocabulary = LEGACY,
) -> str:
    """The id of the screening a QuestionnaireResponse about ``subject`` stored: its level
    Observation's, the prefix of its other results' ids."""
    response = response_for(vocabulary, answers("adult-iop-suitable"), subject=subject)
    response["authored"] = authored
    answered = await client.post(EVALUATE, content=json.dumps(response), headers=FHIR)
    assert answered.status_code == 200, answered.text
    return answered.headers["location"].rsplit("/", 1)[1]


def ids(bundle: Json) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


# --- searching stored results ------------------------------------------------------------------


async def test_observations_of_a_patient_come_newest_first_and_only_theirs(
    client: httpx.AsyncClient,
) -> None:
    first = await evaluated(client, "Patient/p-1")
    await evaluated(client, "Patient/p-2")
    second = await evaluated(client, "Patient/p-1/_history/3")  # the version is not the patient

    found = await client.get("/fhir/r4/Observation", params={"subject": "Patient/p-1"})

    assert found.status_code == 200
    bundle = valid(found.json())
    assert bundle["type"] == "searchset"
    screenings = [found_id[:36] for found_id in ids(bundle)]
    assert screenings == sorted(screenings, key=[second, first].index)
    assert ids(bundle)[0] == second  # the level Observation first, then the scores
    assert len(screenings) > 2
    assert {e["resource"]["subject"]["reference"] for e in bundle["entry"]} <= {
        "Patient/p-1",
        "Patient/p-1/_history/3",
    }
    self_link = next(link["url"] for link in bundle["link"] if link["relation"] == "self")
    assert self_link.endswith("/fhir/r4/Observation?subject=Patient%2Fp-1")


async def test_a_bare_id_a_patient_parameter_and_an_absolute_reference(
    client: httpx.AsyncClient,
) -> None:
    relative = await evaluated(client, "Patient/p-7")
    absolute = await evaluated(client, "https://ehr.example/fhir/Patient/p-7")

    by_id = await client.get("/fhir/r4/ServiceRequest", params={"patient": "p-7"})
    by_url = await client.get(
        "/fhir/r4/ServiceRequest", params={"subject": "https://ehr.example/fhir/Patient/p-7"}
    )

    # Which server an absolute reference names is the EHR's to say: never taken for a relative.
    assert ids(by_id.json()) == [f"{relative}-referral"]
    assert ids(by_url.json()) == [f"{absolute}-referral"]


async def test_code_and_date_narrow_the_search(client: httpx.AsyncClient) -> None:
    january = await evaluated(client, "Patient/p-3", authored="2026-01-15T09:00:00Z")
    await evaluated(client, "Patient/p-3", authored="2026-02-15T09:00:00Z")

    found = await client.get(
        "/fhir/r4/Observation",
        params=[
            ("subject", "Patient/p-3"),
            ("code", LEVEL),
            ("date", "ge2026-01"),
            ("date", "lt2026-02-01"),
        ],
    )

    assert ids(found.json()) == [january]
    none = await client.get(
        "/fhir/r4/Observation", params={"subject": "Patient/p-3", "code": f"{LOINC}|0000-0"}
    )
    assert ids(none.json()) == []


async def test_each_result_is_found_by_its_identifier_with_or_without_the_subject(
    client: httpx.AsyncClient,
) -> None:
    screening = await evaluated(client, "Patient/p-8")
    other = await evaluated(client, "Patient/p-8")
    system = LEGACY.result_identifier

    referral = await client.get(
        "/fhir/r4/ServiceRequest", params={"identifier": f"{system}|{screening}-referral"}
    )
    level = await client.get(
        "/fhir/r4/Observation",
        params={"subject": "Patient/p-8", "identifier": f"{system}|{screening}"},
    )
    either = await client.get(
        "/fhir/r4/Observation", params={"identifier": f"{screening},{other}-phq9"}
    )
    elsewhere = await client.get(
        "/fhir/r4/Observation", params={"identifier": f"https://ehr.example/ids|{screening}"}
    )
    other_patient = await client.get(
        "/fhir/r4/Observation", params={"subject": "Patient/p-9", "identifier": screening}
    )

    assert ids(valid(referral.json())) == [f"{screening}-referral"]
    assert ids(level.json()) == [screening]
    assert ids(either.json()) == [f"{other}-phq9", screening]  # newest screening first
    assert ids(elsewhere.json()) == ids(other_patient.json()) == []


async def test_pages_follow_the_next_link_without_gaps_or_repeats(
    client: httpx.AsyncClient,
) -> None:
    for _ in range(3):
        await evaluated(client, "Patient/p-4")
    everything = ids(
        (await client.get("/fhir/r4/Observation?subject=Patient/p-4&_count=100")).json()
    )
    assert len(everything) > 4

    seen: list[str] = []
    url: str | None = "/fhir/r4/Observation?subject=Patient/p-4&_count=2&_sort=-date"
    while url is not None:
        page = (await client.get(url)).json()
        assert len(ids(page)) <= 2
        seen += ids(page)
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        url = urlsplit(following[0])._replace(scheme="", netloc="").geturl() if following else None

    assert seen == everything


async def test_another_tenant_finds_nothing_of_the_patient(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await evaluated(client, "Patient/p-5")
    async with http_client(app, await new_key(app, tenant="clinic-b")) as other:
        found = await other.get("/fhir/r4/Observation", params={"subject": "Patient/p-5"})
        cursor = await client.get("/fhir/r4/Observation?subject=Patient/p-5&_count=1")
        following = next(x["url"] for x in cursor.json()["link"] if x["relation"] == "next")
        replayed = await other.get(urlsplit(following)._replace(scheme="", netloc="").geturl())

    assert ids(cursor.json())
    assert ids(found.json()) == []
    assert ids(replayed.json()) == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("code=x", "subject"),
        ("subject=not%20a%20reference", "subject"),
        ("patient=Group/9", "patient"),
        ("subject=Patient/1&code:text=phq", "code:text"),
        ("subject=Patient/1&date=2026-13-40", "date"),
        ("subject=Patient/1&date=sa2026", "date"),
        ("subject=Patient/1&_count=0", "_count"),
        ("subject=Patient/1&date=9999-12-31T23:59:59Z", "date"),  # no instant after it
        ("identifier=https://carelevel.dev/fhir/NamingSystem/result-id|", "identifier"),
        ("subject=Patient/1&_sort=date", "_sort"),
    ],
)
async def test_a_parameter_that_cannot_be_used_is_an_operation_outcome(
    client: httpx.AsyncClient, query: str, parameter: str
) -> None:
    found = issues(await client.get(f"/fhir/r4/Observation?{query}"), 400)

    assert found[0]["diagnostics"].startswith(f"{parameter}:")
    assert "not a reference" not in found[0]["diagnostics"]  # the value is never echoed
    assert "2026-13-40" not in found[0]["diagnostics"]


async def test_unknown_parameters_are_reported_or_refused_when_strict(
    client: httpx.AsyncClient,
) -> None:
    await evaluated(client, "Patient/p-6")
    query = "/fhir/r4/Observation?subject=Patient/p-6&_elements=code"

    lenient = (await client.get(query)).json()
    strict = await client.get(query, headers={"Prefer": "handling=strict"})

    outcome = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["issue"][0]["code"] == "not-supported"
    assert outcome[0]["issue"][0]["diagnostics"].startswith("_elements:")
    assert ids(lenient)
    self_link = next(link["url"] for link in lenient["link"] if link["relation"] == "self")
    assert "_elements" not in self_link  # only what was applied
    assert issues(strict, 400)[0]["code"] == "not-supported"


@pytest.mark.parametrize(
    "query",
    [
        "/fhir/r4/Questionnaire?name=iop&context-type-value=focus$x",
        "/fhir/r4/Questionnaire?_count=0",
        "/fhir/r4/CodeSystem?name=level",
        "/fhir/r4/ValueSet?url=x|1&version=2&title=y",
        "/fhir/r4/NamingSystem?kind=identifier",
    ],
)
async def test_the_other_searches_report_unknown_parameters_or_refuse_them_when_strict(
    client: httpx.AsyncClient, query: str
) -> None:
    lenient = valid((await client.get(query)).json())
    strict = await client.get(query, headers={"Prefer": "handling=strict"})

    warnings = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert {issue["severity"] for issue in warnings[0]["issue"]} == {"warning"}
    unknown = query.split("?")[1].split("&")[-1].split("=")[0]
    assert warnings[0]["issue"][-1]["diagnostics"].startswith(f"{unknown}:")
    assert issues(strict, 400)[0]["code"] == "not-supported"
    path = query.split("?")[0]
    modified = "value:below=x" if path.endswith("NamingSystem") else "url:below=x"
    issues(await client.get(f"{path}?{modified}"), 400)  # a modifier is refused either way


async def test_a_cursor_this_api_did_not_give_is_refused(client: httpx.AsyncClient) -> None:
    issues(await client.get("/fhir/r4/Observation?subject=Patient/1&_cursor=bm9wZQ"), 400)


# --- canonical searches ----------------------------------------------------------------------


async def test_the_questionnaire_is_found_by_url_and_version(client: httpx.AsyncClient) -> None:
    canonical = LEGACY.questionnaire("iop-level-of-care")
    current = (await client.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()

    piped = await client.get("/fhir/r4/Questionnaire", params={"url": f"{canonical}|shared.1"})
    separate = await client.get(
        "/fhir/r4/Questionnaire", params={"url": canonical, "version": "shared.1"}
    )
    unknown = await client.get("/fhir/r4/Questionnaire", params={"url": f"{canonical}|shared.9"})
    conflicting = await client.get(
        "/fhir/r4/Questionnaire", params={"url": f"{canonical}|shared.1", "version": "shared.2"}
    )

    assert current["version"] == "shared.1"
    assert ids(piped.json()) == ids(separate.json()) == ["iop-level-of-care"]
    assert piped.json()["entry"][0]["resource"]["version"] == "shared.1"
    assert ids(unknown.json()) == ids(conflicting.json()) == []


async def test_code_systems_and_value_sets_are_found_by_url_and_version(
    client: httpx.AsyncClient,
) -> None:
    url = LEGACY.code_system("level-of-care")
    version = (await client.get("/fhir/r4/CodeSystem/level-of-care")).json()["version"]

    found = await client.get("/fhir/r4/CodeSystem", params={"url": f"{url}|{version}"})
    other_version = await client.get("/fhir/r4/CodeSystem", params={"url": f"{url}|0.0.0"})
    value_set = await client.get(
        "/fhir/r4/ValueSet", params={"url": LEGACY.value_set("iop-verdict"), "version": version}
    )

    assert ids(found.json()) == ["level-of-care"]
    assert ids(other_version.json()) == []
    assert ids(value_set.json()) == ["iop-verdict"]


# --- ValueSet/$expand ------------------------------------------------------------------------


async def test_a_value_set_expands_to_its_code_systems_codes(client: httpx.AsyncClient) -> None:
    system = (await client.get("/fhir/r4/CodeSystem/level-of-care")).json()

    by_id = await client.get("/fhir/r4/ValueSet/level-of-care/$expand")
    by_url = await client.get(
        "/fhir/r4/ValueSet/$expand", params={"url": LEGACY.value_set("level-of-care")}
    )

    expansion = valid(by_id.json())["expansion"]
    assert [c["code"] for c in expansion["contains"]] == [c["code"] for c in system["concept"]]
    assert {c["system"] for c in expansion["contains"]} == {system["url"]}
    assert expansion["total"] == len(system["concept"])
    assert by_url.json()["expansion"]["contains"] == expansion["contains"]


async def test_an_expansion_is_filtered_and_paged(client: httpx.AsyncClient) -> None:
    whole = (await client.get("/fhir/r4/ValueSet/level-of-care/$expand")).json()["expansion"]
    codes = [c["code"] for c in whole["contains"]]

    page = await client.get("/fhir/r4/ValueSet/level-of-care/$expand?offset=1&count=2")
    filtered = await client.get("/fhir/r4/ValueSet/level-of-care/$expand?filter=INTENSIVE")

    assert [c["code"] for c in page.json()["expansion"]["contains"]] == codes[1:3]
    assert page.json()["expansion"]["total"] == len(codes)
    assert [c["code"] for c in filtered.json()["expansion"]["contains"]] == [
        code for code in codes if "intensive" in code
    ]


async def test_expanding_what_is_not_a_value_set_is_404(client: httpx.AsyncClient) -> None:
    issues(await client.get("/fhir/r4/ValueSet/urgency/$expand"), 404)
    issues(await client.get("/fhir/r4/ValueSet/$expand?url=https://elsewhere.example/x"), 404)


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("count=-1", "count"),
        ("count=ten", "count"),
        ("count=1001", "count"),
        ("offset=10001", "offset"),
        ("filter=" + "x" * 201, "filter"),
    ],
)
async def test_an_expansion_parameter_that_cannot_be_used_is_400_naming_it(
    client: httpx.AsyncClient, query: str, parameter: str
) -> None:
    """As for search parameters: 400 (FHIR's answer to a parameter it cannot use), not 422."""
    for path in ("/fhir/r4/ValueSet/level-of-care/$expand?", "/fhir/r4/ValueSet/$expand?url=x&"):
        found = issues(await client.get(path + query), 400)
        assert found[0]["diagnostics"].startswith(f"{parameter}:")
        assert "ten" not in found[0]["diagnostics"]
    # url is a required parameter, refused as FastAPI refuses any missing one under /fhir.
    missing_url = issues(await client.get("/fhir/r4/ValueSet/$expand"), 422)
    assert "url" in missing_url[0]["diagnostics"]


# --- naming systems, negotiation, the capability statement -------------------------------------


async def test_the_identifier_systems_cited_are_served(client: httpx.AsyncClient) -> None:
    cited = LEGACY.screening_identifier

    read = await client.get("/fhir/r4/NamingSystem/screening-id")
    searched = await client.get("/fhir/r4/NamingSystem", params={"value": cited})

    assert valid(read.json())["uniqueId"][0]["value"] == cited
    assert ids(searched.json()) == ["screening-id"]
    issues(await client.get("/fhir/r4/NamingSystem/patient-id"), 404)


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/fhir/r4/metadata", {"accept": "application/fhir+xml"}),
        ("/fhir/r4/Questionnaire/iop-level-of-care", {"accept": "application/xml"}),
        ("/fhir/r4/CodeSystem?_format=xml", {}),
        ("/fhir/r4/Observation?subject=Patient/1&_format=application/fhir%2Bxml", {}),
    ],
)
async def test_asking_only_for_xml_is_406(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    assert issues(await client.get(path, headers=headers), 406)


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("_format=json", "application/fhir+xml"),  # _format overrides Accept
        ("_format=application/fhir%2Bjson", None),
        ("", "application/json"),
        ("", "application/fhir+xml;q=0.9, */*;q=0.1"),
    ],
)
async def test_json_is_served_when_acceptable(
    client: httpx.AsyncClient, query: str, accept: str | None
) -> None:
    headers = {"accept": accept} if accept else {}
    response = await client.get(f"/fhir/r4/metadata?{query}", headers=headers)

    assert response.status_code == 200
    capabilities = valid(response.json())
    resources = {r["type"]: r for r in capabilities["rest"][0]["resource"]}
    assert {p["name"] for p in resources["Observation"]["searchParam"]} >= {"subject", "date"}
    assert resources["ValueSet"]["operation"][0]["name"] == "expand"


# --- canonical URLs that resolve ---------------------------------------------------------------


async def test_canonical_urls_resolve_and_the_former_base_is_still_accepted(
    schema: AsyncEngine, settings: Settings
) -> None:
    public = "https://carelevel.example"
    configured = settings.model_copy(update={"public_url": public})
    async with (
        started_app(schema, configured) as app,
        http_client(app, await new_key(app)) as client,
    ):
        questionnaire = (await client.get("/fhir/r4/Questionnaire/iop-level-of-care")).json()
        former = await evaluated(client, "Patient/p-8", vocabulary=LEGACY)
        level = (await client.get(f"/fhir/r4/Observation/{former}")).json()
        by_former_url = await client.get(
            "/fhir/r4/Questionnaire", params={"url": LEGACY.questionnaire("iop-level-of-care")}
        )

    assert questionnaire["url"] == f"{public}/fhir/r4/Questionnaire/iop-level-of-care"
    # The canonical is the read URL: its path is this server's.
    assert urlsplit(questionnaire["url"]).path == "/fhir/r4/Questionnaire/iop-level-of-care"
    assert level["valueCodeableConcept"]["coding"][0]["system"].startswith(f"{public}/fhir/r4/")
    assert ids(by_former_url.json()) == ["iop-level-of-care"]


def test_the_canonical_base_follows_the_public_url_unless_set() -> None:
    assert Settings().canonical_base == LEGACY_FHIR_CANONICAL_BASE
    assert Settings(public_url="https://c.example").canonical_base == "https://c.example/fhir/r4"
    pinned = Settings(public_url="https://c.example", fhir_canonical_base="https://x.example/f")
    assert pinned.canonical_base == "https://x.example/f"


# --- the pure matching -------------------------------------------------------------------------


def observation(effective: str, system: str = LOINC, code: str = "44261-6") -> Json:
    return {
        "resourceType": "Observation",
        "code": {"coding": [{"system": system, "code": code}]},
        "effectiveDateTime": effective,
    }


def search(*parameters: tuple[str, str]) -> Search:
    return parse_search("Observation", [("subject", "Patient/1"), *parameters], strict=True)


@pytest.mark.parametrize(
    ("parameter", "effective", "expected"),
    [
        ("2026-01", "2026-01-31T23:59:59Z", True),
        ("2026-01", "2026-02-01T00:00:00Z", False),
        ("eq2026-01-15", "2026-01-15", True),
        ("ne2026-01-15", "2026-01-15T10:00:00+00:00", False),
        ("gt2026-01-15", "2026-01-16T00:00:00Z", True),
        ("gt2026-01-15", "2026-01-15T12:00:00Z", False),
        ("ge2026-01-15", "2026-01-15T12:00:00Z", True),
        ("lt2026-01-15", "2026-01-14T23:59:59Z", True),
        ("lt2026-01-15", "2026-01-15T00:00:00Z", False),
        ("le2026-01-15", "2026-01-15T00:00:00Z", True),
        ("ge2026-01-15T10:00:00+02:00", "2026-01-15T08:00:00Z", True),
        ("lt2026-01-15T10:00:00+02:00", "2026-01-15T08:00:00Z", False),
        ("eq2026", "2026-01", True),  # a month within the year
        ("eq2026-01-15", "2026-01", False),  # a month is not within a day
    ],
)
def test_dates_compare_as_ranges(parameter: str, effective: str, expected: bool) -> None:
    assert matches(observation(effective), search(("date", parameter))) is expected


def test_alternatives_are_ored_and_parameters_anded() -> None:
    either = search(("code", f"{LOINC}|1-1,44261-6"))
    both = search(("code", f"{LOINC}|"), ("code", "|44261-6"))

    assert matches(observation("2026-01-01"), either)
    assert not matches(observation("2026-01-01"), both)  # |code: codes without a system
    assert matches(observation("2026-01-01"), search(("code", f"{LOINC}|")))


def test_a_reference_is_searchable_relative_or_absolute_without_its_version() -> None:
    assert normal_reference("Patient/1/_history/2") == "Patient/1"
    assert normal_reference("https://ehr.example/fhir/Patient/1") == (
        "https://ehr.example/fhir/Patient/1"
    )
    assert normal_reference("#contained") is None
    assert normal_reference("urn:uuid:4f2d1c3e-8b1a-4a4e-9c55-0a1d2e3f4b5c") is None
    assert date_range("2026-02") == (
        datetime(2026, 2, 1, tzinfo=UTC),
        datetime(2026, 3, 1, tzinfo=UTC),
    )

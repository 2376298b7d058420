"""What clinicians' overrides teach about a rule-set version, through the public API: the
override report, the override figures of a diff and the clinician agreement of a simulation.

The application withholds figures resting on fewer than 5 screenings
(``override_report_min_count=5``) and trusts one EHR (tenant ``clinic-c``) for the CDS Hooks
feedback that reports overrides without the level chosen. The usual story: 6 adults screened
for IOP whose recommendation the clinician took, and 6 adolescents stepping down from a day
program whose IOP recommendation the clinician overrode to partial hospitalization. With k = 5,
every count shown is rounded down to a multiple of 5 (6 shows as 5, 12 as 10).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.fhir.examples import response_for
from app.fhir.terminology import Vocabulary
from app.kernel.issuers import CdsClient
from app.kernel.settings import Settings
from app.security.principal import Scope
from tests.api.rule_sets_support import (
    KEY,
    STEP_DOWN,
    VERSIONS,
    create_draft,
    default_document,
    screen,
    stepping_down_to_php,
)
from tests.support.apps import http_client, new_key, reset, running
from tests.support.examples import create, example
from tests.support.problems import assert_problem
from tests.support.tokens import EC_384_KEY, public_jwk

K = 5
BASE_URL = "http://carelevel.test"
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
EHR = CdsClient(
    name="ehr-c",
    issuer="https://ehr-c.example.test",
    jwks={"keys": [public_jwk(EC_384_KEY, "c-1", use="sig")]},
    tenant="clinic-c",
)
SCREENING_SERVICE = "/cds-services/carelevel-iop-screening"
REPORT = f"{VERSIONS}/1/overrides"
IOP, PHP = "intensive_outpatient", "partial_hospitalization"


@pytest.fixture(scope="module")
async def reporting_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    changed = {
        "override_report_min_count": K,
        "cds_clients": [EHR],
        "public_url": BASE_URL,
        "fhir_canonical_base": VOCABULARY.base,
    }
    async with running(settings.model_copy(update=changed)) as application:
        yield application


@pytest.fixture
async def app(reporting_app: FastAPI, schema: AsyncEngine) -> FastAPI:
    await reset(reporting_app, schema)
    return reporting_app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An operator-tenant client with every scope (the operator drafts shared versions)."""
    async with http_client(app, await new_key(app)) as http:
        yield http


async def decide(
    client: httpx.AsyncClient, screening: dict[str, Any], level: str, *reasons: str
) -> None:
    body = {"final_level": level, "variance_reasons": list(reasons), "decided_by": "clinician-7"}
    response = await client.post(f"/v1/screenings/{screening['id']}/decision", json=body)
    assert response.status_code == 201, response.text


async def agreed_adults(client: httpx.AsyncClient, count: int = 6) -> None:
    for _ in range(count):
        await decide(client, await screen(client, "adult-iop-suitable"), IOP)


async def overridden_step_downs(client: httpx.AsyncClient, count: int = 6) -> None:
    for _ in range(count):
        await decide(client, await screen(client, "adolescent-step-down"), PHP, "clinical_judgment")


async def report(client: httpx.AsyncClient, path: str = REPORT) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def rules_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["rule_id"]: row for row in body["rules"]}


async def test_the_report_counts_each_screenings_latest_decision(
    client: httpx.AsyncClient,
) -> None:
    await agreed_adults(client, 5)
    await overridden_step_downs(client, 5)
    # A later decision supersedes: one adult first overridden, then agreed; one adolescent
    # first agreed, then overridden.
    adult = await screen(client, "adult-iop-suitable")
    await decide(client, adult, "outpatient", "client_declined_recommended_level")
    await decide(client, adult, IOP)
    adolescent = await screen(client, "adolescent-step-down")
    await decide(client, adolescent, IOP)
    await decide(client, adolescent, PHP, "clinical_judgment")
    await screen(client, "adult-iop-suitable")  # no decision: not counted

    body = await report(client)

    assert (body["owner"], body["key"], body["version"]) == ("shared", KEY, 1)
    assert (body["min_count"], body["withheld"], body["truncated"]) == (K, False, False)
    assert body["count_granularity"] == 5
    assert body["notice"] is None
    assert (body["decisions_considered"], body["without_recommendation"]) == (10, 0)  # 12
    assert (body["agreed"], body["overridden"]) == (5, 5)  # 6 and 6
    assert (body["agreement_rate"], body["override_rate"]) == (0.5, 0.5)
    assert body["suppressed"] is False
    assert body["reasons"] == [{"reason": "clinical_judgment", "count": 5, "suppressed": False}]
    assert body["chosen_instead"] == [
        {"recommended_level": IOP, "chosen_level": PHP, "count": 5, "suppressed": False}
    ]
    rules = rules_of(body)
    assert rules[STEP_DOWN] == {
        "rule_id": STEP_DOWN,
        "fired_in_decided": 5,
        "fired_in_overridden": 5,
        "override_rate": 1.0,
        "lift": 2.0,
        "suppressed": False,
    }
    shared = rules["place.iop-symptoms-with-impairment"]  # fires in both groups
    assert (shared["fired_in_decided"], shared["override_rate"], shared["lift"]) == (10, 0.5, 1.0)
    adults_only = rules["place.iop-step-up"]
    assert (adults_only["fired_in_overridden"], adults_only["override_rate"]) == (0, 0.0)
    assert adults_only["lift"] == 0.0
    # The most overridden first, then by rule id; never-overridden rules last.
    order = [row["rule_id"] for row in body["rules"]]
    assert order.index(STEP_DOWN) < order.index("place.iop-step-up")
    overridden = [r["rule_id"] for r in body["rules"] if r["fired_in_overridden"] == 5]
    assert overridden == sorted(overridden) == order[: len(overridden)]
    text = str(body)  # no screening ids and no clinicians anywhere
    assert adult["id"] not in text
    assert adolescent["id"] not in text
    assert "clinician-7" not in text


async def test_figures_resting_on_fewer_than_k_screenings_are_withheld(
    client: httpx.AsyncClient,
) -> None:
    await agreed_adults(client)
    await overridden_step_downs(client)
    # One more override, to another level and for another reason: each of its own figures
    # rests on one screening.
    older = await screen(client, "older-adult-alcohol")
    await decide(client, older, "outpatient", "waitlist")

    body = await report(client)

    assert (body["decisions_considered"], body["agreed"], body["overridden"]) == (10, 5, 5)
    # 7 overrides split 6 + 1, by reason and by level chosen: showing the 6 would give the 1
    # away, so both are withheld (and the rows kept).
    assert {(row["reason"], row["count"], row["suppressed"]) for row in body["reasons"]} == {
        ("clinical_judgment", None, True),
        ("waitlist", None, True),
    }
    assert {
        (row["chosen_level"], row["count"], row["suppressed"]) for row in body["chosen_instead"]
    } == {
        (PHP, None, True),
        ("outpatient", None, True),
    }
    rules = rules_of(body)
    only_older = rules["place.primary-care-coordination"]
    assert (only_older["fired_in_decided"], only_older["suppressed"]) == (None, True)
    # The step-down rule fired in 6 screenings, all overridden: shown, that rate would tell
    # that the seventh override is the one screening without it.
    step_down = rules[STEP_DOWN]
    assert step_down["fired_in_decided"] == 5
    assert (step_down["fired_in_overridden"], step_down["override_rate"]) == (None, None)
    assert (step_down["lift"], step_down["suppressed"]) == (None, True)


async def test_below_k_decided_screenings_the_whole_report_is_withheld(
    client: httpx.AsyncClient,
) -> None:
    await agreed_adults(client, 2)
    await overridden_step_downs(client, 2)

    body = await report(client)

    assert body["withheld"] is True
    assert "Fewer than 5" in body["notice"]
    assert body["decisions_considered"] is None
    assert (body["agreed"], body["overridden"], body["override_rate"]) == (None, None, None)
    assert (body["reasons"], body["chosen_instead"], body["rules"]) == ([], [], [])
    assert body["suppressed"] is True


async def test_only_the_callers_tenant_decisions_count(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await agreed_adults(client)
    await overridden_step_downs(client)
    async with http_client(app, await new_key(app, tenant="clinic-b")) as clinic_b:
        await overridden_step_downs(clinic_b, 3)
        assert (await report(clinic_b))["withheld"] is True  # its own 3, not 15
        await agreed_adults(clinic_b, 3)
        theirs = await report(clinic_b)

    ours = await report(client)

    assert (ours["decisions_considered"], ours["overridden"]) == (10, 5)
    assert (theirs["decisions_considered"], theirs["agreed"], theirs["overridden"]) == (
        5,
        None,
        None,
    )
    assert theirs["suppressed"] is True


async def test_the_report_needs_both_scopes_and_a_version_the_caller_reads(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    rules_only = await new_key(app, scopes={Scope.RULESETS_READ})
    async with http_client(app, rules_only) as reader:
        assert_problem(await reader.get(REPORT), 403)
    assert_problem(await client.get(f"{VERSIONS}/99/overrides"), 404)
    assert_problem(await client.get(f"/v1/rule-sets/clinic-z/{KEY}/versions/1/overrides"), 404)
    invalid = assert_problem(await client.get(f"{VERSIONS}/0/overrides"), 422)
    assert [error["pointer"] for error in invalid["errors"]] == ["#/path/version"]


async def test_the_report_reads_only_the_most_recently_decided_screenings(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.rulesets.service.OVERRIDE_DECISION_LIMIT", 6)
    await overridden_step_downs(client)
    await agreed_adults(client)

    body = await report(client)

    assert (body["truncated"], body["decision_limit"]) == (True, 6)
    assert (body["decisions_considered"], body["agreed"], body["overridden"]) == (5, 5, 0)
    assert "6 most recently decided" in body["notice"]


# --- next to diff and simulate -----------------------------------------------------------------


async def test_a_diff_shows_how_changed_rules_were_overridden(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await agreed_adults(client)
    await overridden_step_downs(client)
    await create_draft(client, stepping_down_to_php(await default_document(client)))
    diff_path = f"/v1/rule-sets/shared/{KEY}/diff"

    diff = (await client.get(diff_path, params={"from": 1, "to": 2})).json()

    [change] = diff["rules"]
    assert (change["rule_id"], change["change"]) == (STEP_DOWN, "changed")
    assert change["overrides"]["fired_in_decided"] == 5
    assert (change["overrides"]["override_rate"], change["overrides"]["lift"]) == (1.0, 2.0)
    assert diff["overrides"] == {
        "decisions_considered": 10,
        "override_rate": 0.5,
        "min_count": K,
        "count_granularity": 5,
        "truncated": False,
    }
    # Without screenings:read, the diff is what it always was.
    async with http_client(app, await new_key(app, scopes={Scope.RULESETS_READ})) as reader:
        plain = (await reader.get(diff_path, params={"from": 1, "to": 2})).json()
    assert plain["overrides"] is None
    assert plain["rules"][0]["overrides"] is None
    assert {k: v for k, v in plain.items() if k != "overrides"} == {
        k: v for k, v in diff.items() if k != "overrides"
    } | {"rules": [change | {"overrides": None}]}


async def test_a_simulation_compares_agreement_with_clinicians(client: httpx.AsyncClient) -> None:
    await agreed_adults(client)
    await overridden_step_downs(client)
    await screen(client, "adult-iop-suitable")  # no decision: no part of the agreement
    await create_draft(client, stepping_down_to_php(await default_document(client)))

    simulated = (await client.post(f"{VERSIONS}/2/simulate")).json()
    unchanged = (await client.post(f"{VERSIONS}/1/simulate")).json()

    assert simulated["clinician_agreement"] == {
        "decided": 10,  # 12, 6 and 12 rounded down
        "agreed_stored": 5,
        "agreed_simulated": 10,
        "excluded_unknown_level": 0,
        "min_count": K,
        "count_granularity": 5,
        "suppressed": False,
    }
    assert unchanged["clinician_agreement"]["agreed_simulated"] == 5
    few = (await client.post(f"{VERSIONS}/2/simulate", params={"sample": 4})).json()
    assert few["clinician_agreement"] == {
        "decided": None,
        "agreed_stored": None,
        "agreed_simulated": None,
        "excluded_unknown_level": 0,
        "min_count": K,
        "count_granularity": 5,
        "suppressed": True,
    }


# --- CDS Hooks feedback ------------------------------------------------------------------------


def signed(path: str) -> str:
    now = int(time.time())
    claims = {
        "iss": EHR.issuer,
        "aud": BASE_URL + path,
        "exp": now + 300,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, EC_384_KEY, "ES384", headers={"kid": "c-1", "typ": "JWT"})


async def cds_override(ehr: httpx.AsyncClient, patient: str) -> None:
    """A card for ``patient``'s screening, then the clinician's override of it, as the EHR
    reports them."""
    response = response_for(VOCABULARY, example("adult-iop-suitable"), subject=f"Patient/{patient}")
    hook = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-lee", "patientId": patient},
        "prefetch": {"questionnaireResponse": response},
    }
    called = await ehr.post(
        SCREENING_SERVICE,
        json=hook,
        headers={"Authorization": f"Bearer {signed(SCREENING_SERVICE)}"},
    )
    assert called.status_code == 200, called.text
    [card] = called.json()["cards"]
    feedback = {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {
            "reason": {"system": VOCABULARY.code_system("variance-reason"), "code": "waitlist"}
        },
        "outcomeTimestamp": "2026-12-01T10:00:00Z",
    }
    path = SCREENING_SERVICE + "/feedback"
    sent = await ehr.post(
        path, json={"feedback": [feedback]}, headers={"Authorization": f"Bearer {signed(path)}"}
    )
    assert sent.json() == {"recorded": 1}, sent.text


async def test_cds_overrides_count_with_an_unknown_level(app: FastAPI) -> None:
    async with (
        http_client(app, None) as ehr,
        http_client(app, await new_key(app, tenant="clinic-c")) as clinic_c,
    ):
        for patient in range(1001, 1006):
            await cds_override(ehr, str(patient))
        body = await report(clinic_c)

    assert (body["decisions_considered"], body["agreed"], body["overridden"]) == (5, 0, 5)
    assert body["chosen_instead"] == [
        {"recommended_level": IOP, "chosen_level": "unknown", "count": 5, "suppressed": False}
    ]
    assert body["reasons"] == [{"reason": "waitlist", "count": 5, "suppressed": False}]


async def test_a_simulation_leaves_cds_overrides_out_and_says_how_many(app: FastAPI) -> None:
    async with (
        http_client(app, None) as ehr,
        http_client(app, await new_key(app, tenant="clinic-c")) as clinic_c,
    ):
        for patient in range(1001, 1007):
            await cds_override(ehr, str(patient))
        report_body = await report(clinic_c)
        simulated = await clinic_c.post(f"{VERSIONS}/1/simulate")

    # The report counts them as overridden to an unknown level; a simulation cannot compare
    # an unknown level with either version's, so it counts them apart.
    assert report_body["overridden"] == 5
    assert simulated.status_code == 200, simulated.text
    agreement = simulated.json()["clinician_agreement"]
    assert (agreement["decided"], agreement["excluded_unknown_level"]) == (None, 5)


# --- who is counted ----------------------------------------------------------------------------


async def test_k_counts_people_not_screenings(client: httpx.AsyncClient) -> None:
    # 12 decided screenings of 4 people: fewer than k people, so nothing is shown.
    for n in range(12):
        adult = await create(client, example("adult-iop-suitable"), person_id=f"pid-{n % 4:04d}")
        await decide(client, adult, IOP)

    assert (await report(client))["withheld"] is True
    # A fifth person, once: 13 screenings of 5 people.
    await decide(
        client, await create(client, example("adult-iop-suitable"), person_id="pid-0004"), IOP
    )
    body = await report(client)
    assert (body["withheld"], body["decisions_considered"], body["agreed"]) == (False, 10, 10)


async def test_decisions_without_a_recommendation_are_no_overrides(
    client: httpx.AsyncClient,
) -> None:
    await agreed_adults(client, 5)
    await overridden_step_downs(client, 5)
    for _ in range(5):
        unclear = await screen(client, "insufficient-information")
        assert unclear["determination"]["recommended_level"] is None
        await decide(client, unclear, "outpatient", "clinical_judgment")

    body = await report(client)

    assert (body["decisions_considered"], body["without_recommendation"]) == (15, 5)
    assert (body["agreed"], body["overridden"], body["override_rate"]) == (5, 5, 0.5)
    assert body["reasons"] == [{"reason": "clinical_judgment", "count": 5, "suppressed": False}]
    assert [row["recommended_level"] for row in body["chosen_instead"]] == [IOP]

"""The audit trail: exactly one event per audited request, written with the change it records
(or, for a failure, right after it), never holding answers; read back per tenant.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.audit.trail import audit_event_values
from app.programs.examples import EVENING_IOP
from app.screenings import service as screening_service
from app.security.actions import ACTIONS, Action
from app.security.principal import Scope
from tests.api.access_support import UNKNOWN_ID, protected
from tests.api.screenings_support import RULE_SET, stored_keys
from tests.support.apps import OPERATOR_TENANT, bearer, client_id_of, http_client, new_key
from tests.support.examples import example
from tests.support.problems import assert_problem

Json = dict[str, Any]
SENTINEL = "AUDIT-SENTINEL-5521"
PERSON = "p-audited-0001"  # a pseudonymous person id: what the person read names


async def events(schema: AsyncEngine) -> list[AuditEvent]:
    async with schema.connect() as connection:
        rows = await connection.execute(select(AuditEvent).order_by(AuditEvent.recorded_at))
        return [AuditEvent(**row._mapping) for row in rows]


async def count(schema: AsyncEngine) -> int:
    async with schema.connect() as connection:
        return int((await connection.execute(select(func.count(AuditEvent.id)))).scalar_one())


async def one_new_event(
    schema: AsyncEngine, request: Callable[[], Awaitable[httpx.Response]]
) -> tuple[httpx.Response, AuditEvent]:
    """Run ``request``; exactly one audit event must have appeared: return it."""
    before = {event.id for event in await events(schema)}
    response = await request()
    new = [event for event in await events(schema) if event.id not in before]
    assert len(new) == 1, (response.status_code, [e.action for e in new])
    return response, new[0]


async def stored_screening(client: httpx.AsyncClient) -> Json:
    response = await client.post(
        "/v1/screenings",
        json={"answers": example("adult-iop-suitable"), "external_reference": SENTINEL},
    )
    assert response.status_code == 201, response.text
    body: Json = response.json()
    return body


async def draft(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post(f"{RULE_SET}/versions", params={"copy_from": 1})
    assert response.status_code == 201, response.text
    return response


async def program_requests(
    client: httpx.AsyncClient,
) -> list[tuple[Action, str | None, Callable[[], Awaitable[httpx.Response]]]]:
    """The program directory's operations, on a program added for them."""
    added = await client.post("/v1/programs", json=EVENING_IOP)
    assert added.status_code == 201, added.text
    program = added.json()["id"]
    one = f"/v1/programs/{program}"
    return [
        (Action.PROGRAM_CREATE, None, lambda: client.post("/v1/programs", json=EVENING_IOP)),
        (Action.PROGRAM_LIST, None, lambda: client.get("/v1/programs")),
        (Action.PROGRAM_READ, program, lambda: client.get(one)),
        (
            Action.PROGRAM_UPDATE,
            program,
            lambda: client.put(one, json=EVENING_IOP, headers={"If-Match": '"1"'}),
        ),
        (
            Action.PROGRAM_RETIRE,
            program,
            lambda: client.post(f"{one}/retire", headers={"If-Match": '"2"'}),
        ),
    ]


def successful_requests(
    client: httpx.AsyncClient, screening: str, document: Json
) -> list[tuple[Action, str | None, Callable[[], Awaitable[httpx.Response]]]]:
    """(action, expected resource id, request) for every audited operation, in an order in
    which each succeeds (``None``: the id is not known in advance)."""
    decision = {"final_level": "intensive_outpatient", "decided_by": "clinician-1"}
    v = f"{RULE_SET}/versions"
    return [
        (
            Action.SCREENING_CREATE,
            None,
            lambda: client.post(
                "/v1/screenings",
                json={"answers": example("adult-iop-suitable"), "person_id": PERSON},
            ),
        ),
        (Action.SCREENING_READ, screening, lambda: client.get(f"/v1/screenings/{screening}")),
        (Action.SCREENING_LIST, None, lambda: client.get("/v1/screenings")),
        (
            Action.PERSON_SCREENINGS,
            PERSON,
            lambda: client.get(f"/v1/people/{PERSON}/screenings"),
        ),
        (
            Action.SCREENING_REPLAY,
            screening,
            lambda: client.post(f"/v1/screenings/{screening}/replay"),
        ),
        (
            Action.SCREENING_DECIDE,
            screening,
            lambda: client.post(f"/v1/screenings/{screening}/decision", json=decision),
        ),
        (Action.RULE_SET_LIST, None, lambda: client.get("/v1/rule-sets")),
        (Action.RULE_SET_VERSIONS, "shared/iop-level-of-care", lambda: client.get(v)),
        (
            Action.VERSION_CREATE,
            "shared/iop-level-of-care/3",
            lambda: client.post(v, params={"copy_from": 1}),
        ),
        (
            Action.RULE_SET_IMPORT,
            "shared/iop-level-of-care/4",
            lambda: client.post("/v1/rule-sets/shared/import", json=document),
        ),
        (Action.VERSION_READ, "shared/iop-level-of-care/3", lambda: client.get(f"{v}/3")),
        (
            Action.VERSION_UPDATE,
            "shared/iop-level-of-care/3",
            lambda: client.put(f"{v}/3", json=document, headers={"If-Match": "*"}),
        ),
        (
            Action.VERSION_VALIDATE,
            "shared/iop-level-of-care/3",
            lambda: client.post(f"{v}/3/validate"),
        ),
        (
            Action.VERSION_SIMULATE,
            "shared/iop-level-of-care/3",
            lambda: client.post(f"{v}/3/simulate"),
        ),
        (
            Action.VERSION_OVERRIDES,
            "shared/iop-level-of-care/1",
            lambda: client.get(f"{v}/1/overrides"),
        ),
        (
            Action.RULE_SET_DIFF,
            "shared/iop-level-of-care",
            lambda: client.get(f"{RULE_SET}/diff", params={"from": 1, "to": 3}),
        ),
        (
            Action.VERSION_EXPORT,
            "shared/iop-level-of-care/1",
            lambda: client.get(f"{v}/1/export"),
        ),
        (
            Action.VERSION_PUBLISH,
            "shared/iop-level-of-care/3",
            lambda: client.post(f"{v}/3/publish"),
        ),
        (
            Action.VERSION_ACTIVATE,
            "shared/iop-level-of-care/3",
            lambda: client.post(f"{v}/3/activate"),
        ),
        (
            Action.VERSION_ACTIVATE,
            "shared/iop-level-of-care/1",
            lambda: client.post(f"{v}/1/activate"),
        ),
        (
            Action.VERSION_RETIRE,
            "shared/iop-level-of-care/3",
            lambda: client.post(f"{v}/3/retire"),
        ),
        (
            Action.VERSION_DELETE,
            "shared/iop-level-of-care/4",
            lambda: client.delete(f"{v}/4", headers={"If-Match": "*"}),
        ),
        (
            Action.CLIENT_CREATE,
            None,
            lambda: client.post("/v1/clients", json={"name": "x", "scopes": ["admin"]}),
        ),
        (Action.CLIENT_LIST, None, lambda: client.get("/v1/clients")),
        (Action.AUDIT_LIST, None, lambda: client.get("/v1/audit-events")),
    ]


Requests = list[tuple[Action, str | None, Callable[[], Awaitable[httpx.Response]]]]


async def referral_requests(client: httpx.AsyncClient, screening: str) -> Requests:
    """The matching and referral operations on ``screening``, with a program to refer to."""
    created = await client.post("/v1/programs", json=EVENING_IOP)
    assert created.status_code == 201, created.text
    program = created.json()["id"]
    referrals = f"/v1/screenings/{screening}/referrals"
    recorded: dict[str, str] = {}

    async def refer() -> httpx.Response:
        response = await client.post(
            referrals, json={"program_id": program, "referred_by": "clinician-1"}
        )
        recorded["id"] = response.json()["id"]
        return response

    return [
        (
            Action.PROGRAM_MATCH,
            screening,
            lambda: client.post("/v1/program-matches", json={"screening_id": screening}),
        ),
        (Action.SCREENING_REFER, screening, refer),
        (Action.SCREENING_REFERRALS, screening, lambda: client.get(referrals)),
        (
            Action.SCREENING_REFERRAL,
            screening,
            lambda: client.get(f"{referrals}/{recorded['id']}"),
        ),
    ]


async def test_every_audited_operation_writes_exactly_one_event(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    screening = (await stored_screening(client))["id"]
    version_2 = await draft(client)
    document = version_2.json()["content"]
    me = await client_id_of(app, client)
    requests = successful_requests(client, screening, document)
    requests += await program_requests(client)
    requests += await referral_requests(client, screening)
    # Reading and revoking a client are covered below; opening a signed view link (no API key)
    # in tests/api/test_screening_view.py; the retention commands in tests/api/test_retention.py.
    covered = {action for action, _, _ in requests} | {
        Action.CLIENT_READ,
        Action.CLIENT_REVOKE,
        Action.SCREENING_VIEW,
        Action.RETENTION_SET,
        Action.RETENTION_EXPIRE,
    }
    audited = {action for action, spec in ACTIONS.items() if spec.audited}
    assert covered == audited, "every audited action needs a case here"

    for action, resource_id, request in requests:
        response, event = await one_new_event(schema, request)
        assert response.is_success, (action, response.text)
        assert event.action == action.value
        assert event.resource_type == ACTIONS[action].resource_type.value
        assert event.outcome == response.status_code
        assert (event.tenant_id, event.client_id, event.subject) == (OPERATOR_TENANT, me, None)
        assert uuid.UUID(event.request_id or "")
        assert event.request_id == response.headers["x-request-id"]
        if resource_id is not None:
            assert event.resource_id == resource_id, action
        if action is Action.SCREENING_CREATE:
            assert event.resource_id == response.json()["id"]
        if action is Action.CLIENT_CREATE:
            created = response.json()["id"]
            path = f"/v1/clients/{created}"
            _, read = await one_new_event(schema, functools.partial(client.get, path))
            _, revoked = await one_new_event(
                schema, functools.partial(client.post, f"{path}/revoke")
            )
            assert (read.action, read.resource_id) == (Action.CLIENT_READ.value, created)
            assert (revoked.action, revoked.resource_id) == (Action.CLIENT_REVOKE.value, created)


async def test_evaluation_and_the_questionnaire_leave_no_event(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    before = await count(schema)
    evaluated = await client.post(
        "/v1/screenings/evaluate", json={"answers": example("adult-iop-suitable")}
    )
    assert evaluated.status_code == 200
    assert (await client.get("/v1/questionnaire")).status_code == 200
    assert await count(schema) == before


async def test_an_idempotent_replay_is_recorded_as_such(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    body = {"answers": example("adult-iop-suitable")}
    headers = {"Idempotency-Key": "audit-replay-1"}
    first = await client.post("/v1/screenings", json=body, headers=headers)
    _, event = await one_new_event(
        schema, lambda: client.post("/v1/screenings", json=body, headers=headers)
    )
    assert (event.outcome, event.resource_id) == (201, first.json()["id"])
    assert event.details == {"replayed": True}


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("foreign screening", 404),
        ("missing scope", 403),
        ("invalid body", 422),
        ("malformed body", 400),
    ],
)
async def test_a_failed_authenticated_request_writes_one_event_with_its_status(
    app: FastAPI, client: httpx.AsyncClient, schema: AsyncEngine, name: str, status: int
) -> None:
    screening = (await stored_screening(client))["id"]
    other = await new_key(app, tenant="clinic-b", scopes={Scope.SCREENINGS_WRITE})
    async with http_client(app, other) as clinic_b:
        request = {
            "foreign screening": lambda: clinic_b.post(
                f"/v1/screenings/{screening}/decision",
                json={
                    "final_level": "outpatient",
                    "decided_by": "x",
                    "variance_reasons": ["other"],
                    "comment": "c",
                },
            ),
            "missing scope": lambda: clinic_b.get(f"/v1/screenings/{screening}"),
            "invalid body": lambda: clinic_b.post("/v1/screenings", json={"answers": {}}),
            "malformed body": lambda: clinic_b.post(
                "/v1/screenings", content=b"{not json", headers={"content-type": "application/json"}
            ),
        }[name]
        response, event = await one_new_event(schema, request)
    assert response.status_code == status
    assert (event.tenant_id, event.outcome) == ("clinic-b", status)
    if name in ("foreign screening", "missing scope"):
        assert event.resource_id == screening  # the attempt names what it tried to reach


async def test_requests_without_valid_credentials_leave_no_event(
    app: FastAPI, schema: AsyncEngine
) -> None:
    before = await count(schema)
    async with http_client(app, None) as anonymous:
        for op in protected(app):
            await anonymous.request(op.method, op.path())
    assert await count(schema) == before


async def test_a_write_that_rolls_back_leaves_only_its_failure(
    client: httpx.AsyncClient,
    schema: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The success event is written with the screening and its idempotency key, all of it or
    none (one statement on PostgreSQL, one transaction on SQLite): when its own row cannot be
    written (here: an outcome the table refuses), neither the screening nor the key remains,
    and the failure is recorded instead."""

    def unwritable(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        values = audit_event_values(*args, **kwargs)
        return None if values is None else values | {"outcome": None}  # NOT NULL

    monkeypatch.setattr(screening_service, "audit_event_values", unwritable)
    response, event = await one_new_event(
        schema,
        lambda: client.post(
            "/v1/screenings",
            json={"answers": example("adult-iop-suitable")},
            headers={"Idempotency-Key": "rolled-back-1"},
        ),
    )
    assert_problem(response, 500, "internal-error")
    assert (event.action, event.outcome, event.resource_id) == ("screening.create", 500, None)
    monkeypatch.undo()
    assert (await client.get("/v1/screenings")).json()["items"] == []
    assert await stored_keys(schema) == []


async def test_events_hold_no_answers_values_or_free_text(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    screening = (await stored_screening(client))["id"]
    decided = await client.post(
        f"/v1/screenings/{screening}/decision",
        json={
            "final_level": "outpatient",
            "variance_reasons": ["other"],
            "comment": SENTINEL,
            "decided_by": SENTINEL,
        },
    )
    assert decided.status_code == 201
    await client.get("/v1/screenings", params={"external_reference": SENTINEL})
    async with schema.connect() as connection:
        columns = {
            c["name"]
            for c in await connection.run_sync(
                lambda sync: inspect(sync).get_columns("audit_events")
            )
        }
        rows = (await connection.execute(select(AuditEvent))).all()
    assert columns == {
        "id",
        "recorded_at",
        "tenant_id",
        "client_id",
        "subject",
        "action",
        "resource_type",
        "resource_id",
        "outcome",
        "request_id",
        "source_ip",
        "details",
    }
    dumped = orjson.dumps([dict(row._mapping) for row in rows], default=str).decode()
    assert SENTINEL not in dumped
    assert "intensive_outpatient" not in dumped
    assert "phq9" not in dumped
    listed = next(r for r in rows if r.action == "screening.list")
    assert listed.details == {"filters": ["external_reference"], "returned": 1}


async def test_the_database_refuses_to_change_an_event(
    client: httpx.AsyncClient, schema: AsyncEngine
) -> None:
    await client.get("/v1/screenings")
    with pytest.raises(Exception, match="append-only"):
        async with schema.begin() as connection:
            await connection.execute(text("UPDATE audit_events SET outcome = 200"))


# --- GET /v1/audit-events ---------------------------------------------------------------------


async def test_the_trail_is_read_newest_first_with_filters_and_cursors(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    screening = (await stored_screening(client))["id"]
    for _ in range(3):
        await client.get(f"/v1/screenings/{screening}")
    await client.get(f"/v1/screenings/{UNKNOWN_ID}")  # a failure

    page = (await client.get("/v1/audit-events", params={"limit": 2})).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    seen = page["items"]
    while page["next_cursor"]:
        page = (
            await client.get("/v1/audit-events", params={"limit": 2, "cursor": page["next_cursor"]})
        ).json()
        seen.extend(page["items"])
    times = [item["recorded_at"] for item in seen]
    assert times == sorted(times, reverse=True)
    assert len({item["id"] for item in seen}) == len(seen)

    reads = await client.get(
        "/v1/audit-events", params={"action": "screening.read", "resource_id": screening}
    )
    assert [e["outcome"] for e in reads.json()["items"]] == [200, 200, 200]
    failures = (await client.get("/v1/audit-events", params={"outcome": "failure"})).json()
    assert [(e["resource_id"], e["outcome"]) for e in failures["items"]] == [(UNKNOWN_ID, 404)]
    by_status = (await client.get("/v1/audit-events", params={"status": 404})).json()
    assert by_status["items"] == failures["items"]
    me = await client_id_of(app, client)
    mine = (await client.get("/v1/audit-events", params={"client_id": me, "limit": 1000})).json()
    assert mine["items"]
    assert all(e["client_id"] == me for e in mine["items"])
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await client.get("/v1/audit-events", params={"recorded_from": later})).json()[
        "items"
    ] == []
    # Reading the trail is recorded too (the reads above, newest first).
    newest = (await client.get("/v1/audit-events", params={"limit": 1})).json()["items"][0]
    assert newest["action"] == "audit_event.list"


@pytest.mark.parametrize(
    "params",
    [
        {"action": "screening.delete"},
        {"resource_type": "patient"},
        {"outcome": "maybe"},
        {"status": 99},
        {"limit": 0},
        {"recorded_from": "2026-01-01T00:00:00"},  # no time zone
        {"recorded_to": "0.5"},  # not a Unix time either
        {"resource_id": "a\x01b"},
        {"client_id": "x" * 301},
        {"client_id": "a client <name>"},  # not a plain token
    ],
)
async def test_invalid_filters_are_422(client: httpx.AsyncClient, params: Json) -> None:
    assert_problem(await client.get("/v1/audit-events", params=params), 422)


async def test_a_bad_cursor_is_400(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/audit-events", params={"cursor": "bm9wZQ"}), 400)


async def test_page_size_is_capped(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await client.get("/v1/screenings")
    small = await client.get("/v1/audit-events", params={"limit": 1000})
    assert small.status_code == 200
    assert len(small.json()["items"]) <= 100


@pytest.mark.parametrize(
    "path",
    [
        "/v1/screenings/a%00b",
        "/v1/screenings/" + "x" * 400,
        "/v1/screenings/%E2%80%AEevil",
        "/v1/screenings/Jane%20Doe%20suicidal",
        "/v1/rule-sets/shared/iop-level-of-care/versions/Jane%20Doe",
        "/v1/rule-sets/Jane%20Doe/iop-level-of-care/versions",
    ],
)
async def test_a_failure_naming_something_else_than_an_id_is_recorded_without_it(
    client: httpx.AsyncClient, schema: AsyncEngine, path: str
) -> None:
    """The trail records ids; text a request put where an id belongs stays out of it."""
    response, event = await one_new_event(schema, lambda: client.get(path))
    assert response.status_code == 422
    assert (event.outcome, event.resource_id) == (422, None)


@pytest.mark.parametrize(
    ("host", "recorded"),
    [
        ("10.0.4.17", "10.0.4.17"),
        ("2001:db8::1", "2001:db8::1"),
        ("Jane Doe", None),
        ("x" * 80, None),
    ],
)
async def test_the_source_address_is_recorded_only_when_it_is_an_address(
    app: FastAPI, schema: AsyncEngine, host: str, recorded: str | None
) -> None:
    transport = httpx.ASGITransport(app=app, client=(host, 4321))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carelevel.test", headers=bearer(await new_key(app))
    ) as http:
        response, event = await one_new_event(schema, lambda: http.get("/v1/screenings"))
    assert response.status_code == 200
    assert event.source_ip == recorded

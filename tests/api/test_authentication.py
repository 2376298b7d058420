"""Nothing is reachable without credentials; a credential opens only what its scopes allow.

Every operation of the OpenAPI schema is checked, so an endpoint added tomorrow is covered by
these tables without a line changed here.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.security.access import GuardedRoute, action_of
from app.security.models import ApiClient
from app.security.principal import ALL_SCOPES, Scope
from tests.api.access_support import PUBLIC, Operation, assert_refused, operations, protected
from tests.support.apps import bearer, http_client, new_key
from tests.support.examples import example
from tests.support.problems import assert_problem


def test_only_the_probes_and_the_fhir_capabilities_are_public(app: FastAPI) -> None:
    # Load balancers call the probes without credentials; FHIR clients read the
    # CapabilityStatement before they authenticate (it names the security they need). None of
    # them says anything of anyone.
    unsecured = {(op.method, op.template) for op in operations(app) if not op.scopes}
    secured_without_scope = {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method, operation in methods.items()
        if operation.get("security") == [{"bearer": []}]
    }
    assert unsecured - secured_without_scope == PUBLIC
    # Any valid credential reads the questions and the terminology: no health information.
    assert secured_without_scope == {
        ("GET", "/v1/questionnaire"),
        ("GET", "/fhir/r4/Questionnaire"),
        ("GET", "/fhir/r4/Questionnaire/{questionnaire_id}"),
        ("GET", "/fhir/r4/Questionnaire/{questionnaire_id}/_history/{version_id}"),
        ("GET", "/fhir/r4/CodeSystem"),
        ("GET", "/fhir/r4/CodeSystem/{code_system_id}"),
        ("GET", "/fhir/r4/ValueSet"),
        ("GET", "/fhir/r4/ValueSet/{value_set_id}"),
        ("GET", "/fhir/r4/ValueSet/$expand"),
        ("GET", "/fhir/r4/ValueSet/{value_set_id}/$expand"),
        ("GET", "/fhir/r4/NamingSystem"),
        ("GET", "/fhir/r4/NamingSystem/{naming_system_id}"),
        ("GET", "/fhir/r4/StructureDefinition"),
        ("GET", "/fhir/r4/StructureDefinition/{structure_definition_id}"),
        ("GET", "/fhir/r4/OperationDefinition/{operation_id}"),
    }
    bearer_scheme = app.openapi()["components"]["securitySchemes"]["bearer"]
    assert (bearer_scheme["type"], bearer_scheme["scheme"]) == ("http", "bearer")


async def _call(
    http: httpx.AsyncClient, op: Operation, body: bytes = b'{"not": "valid"}', **headers: str
) -> httpx.Response:
    # A body the endpoint would reject: credentials are checked before the body is looked at.
    return await http.request(
        op.method,
        op.path(),
        content=body if op.method in ("POST", "PUT") else None,
        headers={"content-type": "application/json", **headers},
    )


@pytest.mark.parametrize(
    "body", [b'{"not": "valid"}', b"{not json", b"\xff\xfe", b"[" * 1000], ids=repr
)
async def test_every_operation_refuses_a_request_without_credentials(
    app: FastAPI, body: bytes
) -> None:
    """Whatever the body: it is not even read before the credentials are checked."""
    async with http_client(app, None) as anonymous:
        for op in protected(app):
            response = await _call(anonymous, op, body)
            assert_refused(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == 'Bearer realm="carelevel"', op


def test_every_protected_route_authorizes_before_reading_its_body(app: FastAPI) -> None:
    for route in app.routes:
        if isinstance(route, APIRoute) and action_of(route.dependant) is not None:
            assert isinstance(route, GuardedRoute), route.path


@pytest.mark.parametrize(
    ("credential", "description"),
    [
        ("clk_00000000." + "A" * 43, "The API key is not valid"),
        ("clk_zz", "neither an API key nor an accepted token"),
        ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "neither an API key nor an accepted token"),
        ("Basic-dXNlcjpwYXNz", "neither an API key nor an accepted token"),
    ],
)
async def test_every_operation_refuses_an_invalid_credential(
    app: FastAPI, credential: str, description: str
) -> None:
    async with http_client(app, None) as anonymous:
        for op in protected(app):
            response = await _call(anonymous, op, authorization=f"Bearer {credential}")
            body = assert_refused(response, 401, "unauthorized")
            assert description in body["detail"], op
            challenge = response.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="carelevel", error="invalid_token"'), op


async def test_other_authorization_schemes_are_refused(app: FastAPI) -> None:
    key = await new_key(app)
    async with http_client(app, None) as anonymous:
        for scheme in ("Basic", "Token", ""):
            response = await anonymous.get(
                "/v1/screenings", headers={"authorization": f"{scheme} {key}".strip()}
            )
            assert_problem(response, 401, "unauthorized")


async def test_a_client_without_a_scope_gets_403_on_every_operation_needing_it(
    app: FastAPI,
) -> None:
    for op in protected(app):
        if not op.scopes:
            continue
        others = ALL_SCOPES - op.scopes
        async with http_client(app, await new_key(app, scopes=others)) as lacking:
            response = await _call(lacking, op)
        body = assert_refused(response, 403, "forbidden")
        missing = sorted(op.scopes - others)
        assert " ".join(missing) in body["detail"], op
        challenge = response.headers["www-authenticate"]
        assert 'error="insufficient_scope"' in challenge, op
        assert f'scope="{" ".join(sorted(op.scopes))}"' in challenge, op


async def test_the_scopes_of_an_operation_are_enough(app: FastAPI) -> None:
    """A client holding exactly an operation's scopes gets past authorization (whatever the
    operation then says of the dummy request)."""
    for op in protected(app):
        scopes = op.scopes or {Scope.ADMIN}
        async with http_client(app, await new_key(app, scopes=scopes)) as exact:
            response = await _call(exact, op)
        assert response.status_code not in (401, 403), (str(op), response.text)


async def test_a_revoked_key_stops_working_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    key = await new_key(app, name="to be revoked")
    async with http_client(app, key) as doomed:
        assert (await doomed.get("/v1/screenings")).status_code == 200
        listed = (await client.get("/v1/clients")).json()["items"]
        target = next(c for c in listed if c["name"] == "to be revoked")

        assert (await client.post(f"/v1/clients/{target['id']}/revoke")).status_code == 200

        body = assert_problem(await doomed.get("/v1/screenings"), 401, "unauthorized")
        assert "revoked" in body["detail"]


async def test_keys_are_stored_as_their_hash_only(app: FastAPI, schema: AsyncEngine) -> None:
    key = await new_key(app, name="hashed")
    async with schema.connect() as connection:
        row = (await connection.execute(select(ApiClient).where(ApiClient.name == "hashed"))).one()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key.startswith(row.key_prefix + ".")
    assert all(key not in str(value) for value in row)  # the key itself is nowhere


async def test_a_key_with_one_character_changed_is_refused(app: FastAPI) -> None:
    key = await new_key(app)
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    async with http_client(app, None) as anonymous:
        response = await anonymous.get("/v1/screenings", headers=bearer(forged))
    assert_problem(response, 401, "unauthorized")


async def test_unauthenticated_requests_store_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    async with http_client(app, None) as anonymous:
        response = await anonymous.post(
            "/v1/screenings", json={"answers": example("adult-iop-suitable")}
        )
    assert response.status_code == 401
    assert (await client.get("/v1/screenings")).json()["items"] == []


async def test_the_public_endpoints_need_no_credentials(app: FastAPI) -> None:
    async with http_client(app, None) as anonymous:
        assert (await anonymous.get("/healthz")).status_code == 200
        assert (await anonymous.get("/fhir/r4/metadata")).status_code == 200
        assert (await anonymous.get("/openapi.json")).status_code == 200
        assert (await anonymous.get("/docs")).status_code == 200

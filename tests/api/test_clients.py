"""API clients: created with a key shown once, listed without it, revoked; the local admin
of a fresh embedded start."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from app.main import create_app
from app.security.principal import Scope
from tests.support.apps import empty_tables, http_client, new_key, running
from tests.support.problems import assert_problem, pointers

KEY_SHAPE = re.compile(r"^clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}$")


async def test_an_admin_creates_a_client_whose_key_works_with_its_scopes(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(
        "/v1/clients", json={"name": "intake web", "scopes": ["screenings:read"]}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert KEY_SHAPE.match(body["api_key"])
    assert body["api_key"].startswith(body["key_prefix"] + ".")
    assert response.headers["location"] == f"/v1/clients/{body['id']}"
    assert (body["tenant"], body["name"], body["scopes"]) == (
        "default",
        "intake web",
        ["screenings:read"],
    )
    assert body["created_by"].startswith("test admin (clk_")
    assert body["revoked_at"] is None
    shown = await client.get(f"/v1/clients/{body['id']}")
    assert "api_key" not in shown.json()
    assert {k: v for k, v in body.items() if k != "api_key"} | {
        "last_used_at": None
    } == shown.json()
    listed = (await client.get("/v1/clients")).json()["items"]
    assert all("api_key" not in item for item in listed)
    async with http_client(app, body["api_key"]) as new:
        assert (await new.get("/v1/screenings")).status_code == 200
        assert_problem(await new.get("/v1/rule-sets"), 403)
    used = (await client.get(f"/v1/clients/{body['id']}")).json()
    assert used["last_used_at"] is not None


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"name": "", "scopes": ["admin"]}, "#/name"),
        ({"name": "a\nb", "scopes": ["admin"]}, "#/name"),
        ({"name": "x" * 201, "scopes": ["admin"]}, "#/name"),
        ({"name": "x", "scopes": []}, "#/scopes"),
        ({"name": "x", "scopes": ["root"]}, "#/scopes/0"),
        ({"name": "x", "scopes": ["admin"], "tenant": "Not A Slug"}, "#/tenant"),
        ({"name": "x", "scopes": ["admin"], "key_hash": "0" * 64}, "#"),  # unknown: by its object
    ],
)
async def test_invalid_client_requests_are_422(
    client: httpx.AsyncClient, body: dict[str, object], pointer: str
) -> None:
    assert pointers(assert_problem(await client.post("/v1/clients", json=body), 422)) == [pointer]


async def test_an_admin_grants_only_the_scopes_it_holds(app: FastAPI) -> None:
    limited = await new_key(app, tenant="clinic-a", scopes={Scope.ADMIN, Scope.SCREENINGS_READ})
    async with http_client(app, limited) as admin:
        beyond = await admin.post(
            "/v1/clients", json={"name": "x", "scopes": ["screenings:read", "audit:read"]}
        )
        assert "audit:read" in assert_problem(beyond, 403, "forbidden")["detail"]
        within = await admin.post(
            "/v1/clients", json={"name": "x", "scopes": ["screenings:read", "admin"]}
        )
        assert within.status_code == 201
        clients = (await admin.get("/v1/clients")).json()["items"]
        assert len(clients) == 2  # the refused one was not created


async def test_an_admin_manages_its_own_tenant_only(app: FastAPI) -> None:
    async with (
        http_client(app, await new_key(app, tenant="clinic-a", scopes={Scope.ADMIN})) as a,
        http_client(app, await new_key(app, tenant="clinic-b", scopes={Scope.ADMIN})) as b,
    ):
        elsewhere = await a.post(
            "/v1/clients", json={"name": "x", "scopes": ["admin"], "tenant": "clinic-b"}
        )
        assert pointers(assert_problem(elsewhere, 422)) == ["#/tenant"]
        own = await a.post(
            "/v1/clients", json={"name": "x", "scopes": ["admin"], "tenant": "clinic-a"}
        )
        assert own.status_code == 201
        assert_problem(await b.get(f"/v1/clients/{own.json()['id']}"), 404)
        assert_problem(await b.post(f"/v1/clients/{own.json()['id']}/revoke"), 404)
        assert (await a.get(f"/v1/clients/{own.json()['id']}")).json()["revoked_at"] is None


async def test_revoking_is_immediate_here_and_idempotent(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = (
        await client.post("/v1/clients", json={"name": "old key", "scopes": ["screenings:read"]})
    ).json()
    async with http_client(app, created["api_key"]) as old:
        assert (await old.get("/v1/screenings")).status_code == 200  # now trusted (cached)

        first = await client.post(f"/v1/clients/{created['id']}/revoke")
        second = await client.post(f"/v1/clients/{created['id']}/revoke")

        assert first.status_code == second.status_code == 200
        assert first.json()["revoked_at"] == second.json()["revoked_at"] is not None
        assert first.json()["revoked_by"].startswith("test admin")
        assert "revoked" in assert_problem(await old.get("/v1/screenings"), 401)["detail"]


async def test_another_process_stops_trusting_a_revoked_key_within_the_cache_time(
    schema: AsyncEngine, settings: Settings
) -> None:
    quick = settings.model_copy(update={"credential_cache_seconds": 0.3})
    await empty_tables(schema)
    first, second = create_app(quick), create_app(quick)
    async with LifespanManager(first), LifespanManager(second):
        admin = await new_key(first)
        async with http_client(first, admin) as here:
            created = (
                await here.post("/v1/clients", json={"name": "k", "scopes": ["screenings:read"]})
            ).json()
            async with http_client(second, created["api_key"]) as there:
                assert (await there.get("/v1/screenings")).status_code == 200
                await here.post(f"/v1/clients/{created['id']}/revoke")
                await asyncio.sleep(0.4)
                assert_problem(await there.get("/v1/screenings"), 401)


async def test_a_fresh_embedded_start_creates_a_local_admin_and_prints_its_key_once(
    schema: AsyncEngine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrapping = settings.model_copy(update={"bootstrap_admin": True})
    await empty_tables(schema)
    async with running(bootstrapping) as application:
        printed = capsys.readouterr().err
        keys = re.findall(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}", printed)
        assert len(keys) == 1
        assert "shown this once" in printed
        async with http_client(application, keys[0]) as admin:
            clients = (await admin.get("/v1/clients")).json()["items"]
            assert [(c["name"], c["tenant"]) for c in clients] == [("local admin", "default")]
            assert set(clients[0]["scopes"]) == {scope.value for scope in Scope}
            events = (await admin.get("/v1/audit-events")).json()["items"]
            created = [e for e in events if e["action"] == "client.create"]
            assert [(e["client_id"], e["resource_id"]) for e in created] == [
                ("carelevel", clients[0]["id"])
            ]
    async with running(bootstrapping):
        assert "clk_" not in capsys.readouterr().err  # a client exists: nothing new


def test_the_local_admin_is_made_only_for_the_embedded_default_in_development() -> None:
    assert Settings(environment="development").creates_bootstrap_admin
    assert not Settings(environment="test").creates_bootstrap_admin
    postgres = "postgresql+asyncpg://db/carelevel"
    production = Settings(
        environment="production",
        database_url=postgres,
        public_url="https://carelevel.example",
        redis_url="redis://cache:6379/0",
    )
    assert not production.creates_bootstrap_admin
    assert not Settings(environment="development", database_url=postgres).creates_bootstrap_admin
    assert Settings(environment="test", bootstrap_admin=True).creates_bootstrap_admin

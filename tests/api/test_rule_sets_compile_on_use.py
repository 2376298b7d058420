"""A process compiles the shared rule sets' active versions at start-up and each tenant's own
active version only when that tenant first needs it, into a cache bounded by
``compiled_rule_sets_memory_mb``: start-up work and memory do not grow with the number of tenants,
and a version evicted from the cache is compiled again, deciding exactly as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.engine import default_rule_set
from app.kernel.settings import Settings
from app.rulesets.compiled import CompiledVersions, estimated_bytes
from tests.api.rule_sets_support import KEY, default_document
from tests.support.apps import http_client, new_key, running
from tests.support.examples import example

FORKS = 12  # tenants with an active fork of their own


@dataclass(frozen=True)
class Fork:
    tenant: str
    api_key: str
    version: int
    sha256: str


async def _activated_fork(app: FastAPI, tenant: str, document: dict[str, Any]) -> Fork:
    """``tenant``'s own version of the shared rule set (retitled, so its content is its own),
    published and active."""
    api_key = await new_key(app, tenant=tenant, name=f"{tenant} admin")
    versions = f"/v1/rule-sets/{tenant}/{KEY}/versions"
    async with http_client(app, api_key) as tenant_client:
        created = await tenant_client.post(versions, json=document | {"title": f"{tenant} rules"})
        assert created.status_code == 201, created.text
        number = created.json()["version"]
        for step in ("publish", "activate"):
            done = await tenant_client.post(f"{versions}/{number}/{step}")
            assert done.status_code == 200, done.text
    return Fork(tenant, api_key, number, created.json()["sha256"])


@pytest.fixture
async def forks(app: FastAPI, client: httpx.AsyncClient) -> list[Fork]:
    document = await default_document(client)
    return [await _activated_fork(app, f"clinic-{n:02}", document) for n in range(FORKS)]


@pytest.fixture
def compiled(monkeypatch: pytest.MonkeyPatch) -> CompiledVersions:
    """The compile cache of the applications the test starts: one that has compiled nothing
    yet (as in a process of its own)."""
    fresh = CompiledVersions()
    monkeypatch.setattr("app.main.COMPILED", fresh)
    return fresh


@pytest.fixture
async def restarted(settings: Settings, compiled: CompiledVersions) -> AsyncIterator[FastAPI]:
    async with running(settings) as application:
        yield application


async def _evaluated(app: FastAPI, fork: Fork | None, api_key: str) -> dict[str, Any]:
    async with http_client(app, api_key) as tenant_client:
        response = await tenant_client.post(
            "/v1/screenings/evaluate", json={"answers": example("adult-iop-with-barriers")}
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    if fork is not None:
        assert body["rule_set"] == {
            "owner": fork.tenant,
            "key": KEY,
            "version": fork.version,
            "sha256": fork.sha256,
        }
    return body


async def test_start_up_compiles_no_tenants_version_until_the_tenant_needs_it(
    forks: list[Fork], restarted: FastAPI, compiled: CompiledVersions
) -> None:
    # Started: every fork is known to be active, none is compiled; the shared default is.
    cache = restarted.state.rule_set_cache
    assert {owner for owner, _ in cache.active_versions()} >= {f.tenant for f in forks}
    assert len(compiled) == 1
    assert compiled.compilations == 0  # the shipped default comes compiled with the engine
    async with http_client(restarted, None) as anonymous:
        assert (await anonymous.get("/readyz")).status_code == 200

    first = await _evaluated(restarted, forks[3], forks[3].api_key)
    again = await _evaluated(restarted, forks[3], forks[3].api_key)

    assert compiled.compilations == 1  # that tenant's version, once
    assert len(compiled) == 2
    assert again["determination"] == first["determination"]


async def test_an_evicted_version_is_compiled_again_and_decides_the_same(
    forks: list[Fork], settings: Settings, compiled: CompiledVersions, app: FastAPI
) -> None:
    # Room for two compiled forks, not three (each a copy of the shipped rule set).
    one_fork = estimated_bytes(default_rule_set())
    bounded = settings.model_copy(update={"compiled_rule_sets_memory_mb": 2.5 * one_fork / 2**20})
    operator_key = await new_key(app, name="operator")
    async with running(bounded) as restarted:
        one, two, three = forks[:3]
        before = await _evaluated(restarted, one, one.api_key)
        await _evaluated(restarted, two, two.api_key)
        await _evaluated(restarted, three, three.api_key)  # evicts the least recently used
        after = await _evaluated(restarted, one, one.api_key)
        shared = await _evaluated(restarted, None, operator_key)
        async with http_client(restarted, None) as anonymous:
            ready = await anonymous.get("/readyz")

    assert compiled.compilations == 4  # the first fork twice
    assert len(compiled) == 2
    assert after["determination"] == before["determination"]
    # The shared default, evicted from the bounded cache, is still held: never compiled again.
    assert shared["rule_set"]["owner"] == "shared"
    assert ready.status_code == 200

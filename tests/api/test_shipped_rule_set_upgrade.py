"""A database created by an earlier release meets a release that ships a newer rule set.

The newer shipped version is added as a published version of the shared rule set and waits:
the version that decided until then keeps deciding until an operator has reviewed the
difference and a simulation and activates the new one (through the API or the command line),
and every stored screening keeps replaying under the version that decided it, byte for byte.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli import main
from app.engine import compile_rule_set, default_rule_set
from app.engine.compiler import canonical_json
from app.engine.determination import CURRENT_SEMANTICS, ENGINE_VERSION
from app.kernel.db import create_sessionmaker, utcnow
from app.kernel.settings import Settings, get_settings
from app.kernel.tenancy import SHARED
from app.main import create_app
from app.rulesets.models import RuleSet, RuleSetVersion, VersionStatus
from tests.api.screenings_support import RULE_SET
from tests.support.apps import empty_tables, http_client, new_key, running
from tests.support.examples import create, example
from tests.support.problems import assert_problem

LEGACY = Path(__file__).parents[1] / "unit" / "legacy" / "iop-level-of-care-2026.11.0.yaml"
VERSIONS = f"{RULE_SET}/versions"
Json = dict[str, Any]


async def database_of_an_earlier_release(schema: AsyncEngine) -> None:
    """Emptied tables holding what an earlier release seeded: 2026.11.0 as shared version 1,
    active (written as that release wrote it, since this one no longer publishes it)."""
    await empty_tables(schema)
    legacy = compile_rule_set(LEGACY.read_text("utf-8"))
    async with create_sessionmaker(schema)() as session, session.begin():
        rule_set = RuleSet(owner=SHARED, key=legacy.key, created_at=utcnow())
        session.add(rule_set)
        await session.flush()
        now = utcnow()
        session.add(
            RuleSetVersion(
                rule_set_id=rule_set.id,
                owner=SHARED,
                key=legacy.key,
                version=1,
                status=VersionStatus.ACTIVE,
                title=legacy.document.title,
                content=legacy.document.model_dump(mode="json"),
                sha256=legacy.ref.sha256,
                created_by="system",
                created_at=now,
                updated_at=now,
                published_by="system",
                published_at=now,
                activated_by="system",
                activated_at=now,
            )
        )


@pytest.fixture
async def upgraded(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """This release started on a database of the earlier one."""
    await database_of_an_earlier_release(schema)
    async with running(settings) as application:
        yield application


async def versions_of(http: httpx.AsyncClient) -> dict[int, str]:
    response = await http.get(VERSIONS)
    assert response.status_code == 200, response.text
    return {row["version"]: row["status"] for row in response.json()}


async def test_the_newer_shipped_version_waits_published_and_says_so(
    schema: AsyncEngine, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    await database_of_an_earlier_release(schema)
    caplog.set_level(logging.WARNING, logger="carelevel")
    for start in range(2):  # every start says so while it waits, and adds it only once
        caplog.clear()
        application = create_app(settings)
        async with (
            LifespanManager(application),
            http_client(application, await new_key(application)) as http,
        ):
            assert await versions_of(http) == {2: "published", 1: "active"}
            second = (await http.get(f"{VERSIONS}/2")).json()
            assert second["content"]["version"] == default_rule_set().version
            assert second["content"]["semantics"] == CURRENT_SEMANTICS
        notices = [
            r.getMessage() for r in caplog.records if "waits for activation" in r.getMessage()
        ]
        assert notices, f"start {start}: no notice"
        assert "shared version 2" in notices[0]
        assert "version 1 (2026.11.0) still decides" in notices[0]
        assert "/v1/rule-sets/shared/iop-level-of-care/diff?from=1&to=2" in notices[0]


async def test_review_then_activate_while_stored_screenings_replay_byte_for_byte(
    upgraded: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async with http_client(upgraded, await new_key(upgraded)) as http:
        # Until activated, the earlier version decides, as it always did.
        before = {
            name: await create(http, example(name))
            for name in ("adult-iop-suitable", "emergency-suicide-risk", "insufficient-information")
        }
        unsafe = example("adult-iop-suitable")
        unsafe["instruments"]["phq9"]["items"][8] = 3  # item 9 beside an all-no C-SSRS
        before["item 9"] = await create(http, unsafe)
        for screening in before.values():
            assert screening["rule_set"]["version"] == 1
            assert screening["engine_version"] == "1.0.0"
        assert before["item 9"]["determination"]["iop"]["verdict"] == "suitable"
        assert before["item 9"]["determination"]["urgency"] == "routine"

        # The operator reviews what changes.
        diff = await http.get(f"{RULE_SET}/diff", params={"from": 1, "to": 2})
        assert diff.status_code == 200, diff.text
        added = {rule["rule_id"] for rule in diff.json()["rules"] if rule["change"] == "added"}
        assert {"safety.medical-instability", "safety.suicide-screens-disagree"} <= added
        simulation = await http.post(f"{VERSIONS}/2/simulate")
        assert simulation.status_code == 200, simulation.text
        verdicts = {
            (change["before"], change["after"]): change["count"]
            for change in simulation.json()["verdict_changes"]
        }
        assert verdicts[("suitable", "pending_safety_assessment")] >= 1
        assert simulation.json()["screenings_considered"] == 4

        activated = await http.post(f"{VERSIONS}/2/activate")
        assert activated.status_code == 200, activated.text
        assert activated.json()["previous_active_version"] == 1
        assert await versions_of(http) == {2: "active", 1: "published"}

        after = await create(http, unsafe)
        assert after["rule_set"]["version"] == 2
        assert after["engine_version"] == ENGINE_VERSION
        determination = after["determination"]
        assert determination["iop"]["verdict"] == "pending_safety_assessment"
        assert determination["urgency"] == "urgent"
        assert all("references" in reason for reason in determination["iop"]["reasons"])

        # Stored screenings replay under the version that decided them, byte for byte; a
        # what-if under the new version shows what it changes.
        for screening in before.values():
            url = f"/v1/screenings/{screening['id']}/replay"
            replay = (await http.post(url)).json()
            assert replay["identical"] is True
            assert replay["determination"] == screening["determination"]
            assert "references" not in str(replay["determination"])
            stored = (await http.get(f"/v1/screenings/{screening['id']}")).json()
            assert stored["engine_version"] == "1.0.0"
        what_if = (
            await http.post(f"/v1/screenings/{before['item 9']['id']}/replay", json={"version": 2})
        ).json()
        assert what_if["what_if"] is True
        assert what_if["identical"] is False
        assert what_if["determination"]["iop"]["verdict"] == "pending_safety_assessment"

    # Once active, a start has nothing more to say.
    caplog.set_level(logging.WARNING, logger="carelevel")
    caplog.clear()
    async with running(upgraded.state.settings):
        pass
    assert not [r for r in caplog.records if "waits for activation" in r.getMessage()]


async def test_a_fresh_database_starts_with_the_shipped_version_active(app: FastAPI) -> None:
    async with http_client(app, await new_key(app)) as http:
        assert await versions_of(http) == {1: "active"}
        content = (await http.get(f"{VERSIONS}/1")).json()["content"]
    shipped = default_rule_set()
    assert content["version"] == shipped.version
    assert canonical_json(compile_rule_set(content).document) == canonical_json(shipped.document)


async def test_the_command_line_lists_compares_simulates_and_activates(
    upgraded: FastAPI,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with http_client(upgraded, await new_key(upgraded)) as http:
        await create(http, example("adult-iop-suitable"))
    monkeypatch.setenv("CARELEVEL_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:

        async def run(*args: str) -> tuple[int, str, str]:
            code = await asyncio.to_thread(main, ["rules", *args])
            captured = capsys.readouterr()
            return code, captured.out, captured.err

        code, out, _ = await run("versions")
        assert code == 0
        assert f"2  published {default_rule_set().version}" in out
        assert "1  active    2026.11.0" in out
        code, out, _ = await run("diff", "1", "2")
        assert code == 0
        assert "safety.medical-instability" in out
        code, out, _ = await run("simulate", "2")
        assert code == 0
        assert "1 most recent stored screenings re-evaluated" in out
        code, _, err = await run("activate", "7")
        assert code == 1
        assert "no version 7" in err
        code, out, _ = await run("activate", "2")
        assert code == 0, out
        assert "Version 2 of shared/iop-level-of-care is active (it replaces version 1)" in out
    finally:
        get_settings.cache_clear()
    async with http_client(upgraded, await new_key(upgraded)) as http:
        await asyncio.sleep(0.5)  # the started process sees the activation at its next refresh
        assert (await create(http, example("adult-iop-suitable")))["rule_set"]["version"] == 2
        events = (
            await http.get("/v1/audit-events", params={"action": "rule_set_version.activate"})
        ).json()
        assert [event["client_id"] for event in events["items"]] == ["cli"]


async def test_new_drafts_must_declare_the_current_semantics(client: httpx.AsyncClient) -> None:
    legacy = compile_rule_set(LEGACY.read_text("utf-8")).document.model_dump(mode="json")
    legacy["key"] = "iop-clinic-fork"
    problem = assert_problem(
        await client.post("/v1/rule-sets/default/import", json=legacy), 422, "validation-error"
    )
    assert [error["pointer"] for error in problem["errors"]] == ["#/semantics"]
    assert "semantics: 3" in problem["errors"][0]["detail"]
    # declared, but its safety rules read the concern
    current = {**legacy, "semantics": CURRENT_SEMANTICS}
    problem = assert_problem(
        await client.post("/v1/rule-sets/default/import", json=current), 422, "validation-error"
    )
    assert problem["errors"]
    assert all("evidence" in error["detail"] for error in problem["errors"])
    assert all(error["pointer"].endswith("/when") for error in problem["errors"])

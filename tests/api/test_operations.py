"""Probes and metrics, as a load balancer, an orchestrator and Prometheus see them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from alembic.script import ScriptDirectory
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.db import create_engine
from app.kernel.migrate import (
    SchemaOutdated,
    alembic_config,
    check_schema_is_current,
    head_revision,
)
from app.kernel.settings import Settings
from app.main import create_app
from app.rulesets.cache import RuleSetCache
from app.security.principal import ALL_SCOPES, Scope
from tests.support.apps import STARTUP_TIMEOUT_SECONDS, empty_tables, http_client, new_key, running
from tests.support.examples import EXAMPLES

ANSWERS = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def scrape(http: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    # The classic text format, which every Prometheus version reads.
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return samples(response.text)


@pytest.fixture
async def metrics_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus: an operator-tenant client with only ``metrics:read``."""
    key = await new_key(app, name="prometheus", scopes={Scope.METRICS_READ})
    async with http_client(app, key, "prometheus") as http:
        yield http


# --- probes ------------------------------------------------------------------------------------


async def test_liveness_and_readiness_answer_without_credentials(app: FastAPI) -> None:
    async with http_client(app, None) as anonymous:
        alive = await anonymous.get("/healthz")
        ready = await anonymous.get("/readyz")
    assert alive.status_code == 200
    assert alive.json() == {"status": "ok"}
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "migrations": "ok",
        "rule_set": "ok",
    }
    assert body["checks"]["rule_set"]["detail"] == "shared/iop-level-of-care version 1"


async def test_a_stopped_database_fails_readiness_but_not_liveness(
    app: FastAPI, settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    if settings.is_sqlite:  # a file in a directory that does not exist cannot be opened
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gone')}/missing-dir/x.db"
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/carelevel"  # nothing listens on port 1
    unreachable = create_engine(settings.model_copy(update={"database_url": url}))
    healthy, app.state.engine = app.state.engine, unreachable
    try:
        async with http_client(app, None) as anonymous:
            alive = await anonymous.get("/healthz")
            ready = await anonymous.get("/readyz")
    finally:
        app.state.engine = healthy
        await unreachable.dispose()

    assert alive.status_code == 200
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.headers["retry-after"] == "5"
    problem = ready.json()
    assert problem["type"].endswith("/not-ready")
    assert problem["detail"].startswith("Failing: database (unreachable (")
    assert problem["checks"]["database"]["status"] == "failed"
    assert problem["checks"]["migrations"]["detail"] == "unknown: the database is down"
    # The rule set is compiled in memory: it still serves once the database is back.
    assert problem["checks"]["rule_set"]["status"] == "ok"
    async with http_client(app, None) as anonymous:
        assert (await anonymous.get("/readyz")).status_code == 200  # and it recovers


async def readiness_at_revision(app: FastAPI, schema: AsyncEngine, revision: str) -> httpx.Response:
    """/readyz while the database says it is at ``revision``."""
    async with schema.begin() as connection:
        await connection.execute(
            text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
        )
    try:
        async with http_client(app, None) as anonymous:
            return await anonymous.get("/readyz")
    finally:
        async with schema.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head_revision()}
            )


async def test_a_schema_behind_the_code_fails_readiness_naming_the_migration(
    app: FastAPI, schema: AsyncEngine
) -> None:
    head = head_revision()
    older = str(ScriptDirectory.from_config(alembic_config()).get_base())
    ready = await readiness_at_revision(app, schema, older)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["migrations"] == {
        "status": "failed",
        "detail": f"at {older}, the code needs {head}: run carelevel migrate",
    }
    assert "migrations (" in ready.json()["detail"]


async def test_a_schema_a_newer_release_migrated_keeps_this_replica_ready(
    app: FastAPI, schema: AsyncEngine
) -> None:
    # During a rolling deploy the new release migrates first; replicas of the old one must
    # keep serving until they are replaced.
    ready = await readiness_at_revision(app, schema, "f00dfacef00d")
    assert ready.status_code == 200
    assert ready.json()["checks"]["migrations"]["detail"] == (
        f"at f00dfacef00d, ahead of this code's head {head_revision()} (a newer release)"
    )


async def test_a_replica_starts_on_a_schema_at_or_ahead_of_its_code_never_behind(
    schema: AsyncEngine,
) -> None:
    async def start_at(revision: str) -> None:
        async with schema.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :revision"), {"revision": revision}
            )
        await check_schema_is_current(schema)

    try:
        await start_at("f00dfacef00d")
        with pytest.raises(SchemaOutdated, match="run `carelevel migrate`"):
            await start_at(str(ScriptDirectory.from_config(alembic_config()).get_base()))
    finally:
        await start_at(str(head_revision()))


async def test_readiness_waits_for_a_compiled_active_rule_set(app: FastAPI) -> None:
    # A process that has not yet loaded the active versions (its first refresh pending).
    started, app.state.rule_set_cache = app.state.rule_set_cache, RuleSetCache()
    try:
        async with http_client(app, None) as anonymous:
            waiting = await anonymous.get("/readyz")
            async with app.state.sessions() as session:
                await app.state.rule_set_cache.refresh(session)
            loaded = await anonymous.get("/readyz")
    finally:
        app.state.rule_set_cache = started
    assert waiting.status_code == 503
    assert waiting.json()["checks"]["rule_set"] == {
        "status": "failed",
        "detail": "no active version of iop-level-of-care",
    }
    assert loaded.status_code == 200


async def test_only_a_server_process_settles_the_garbage_collector_once_started(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settled: list[bool] = []

    def settle() -> None:  # records the call instead of freezing the test process
        settled.append(bool(app.state.rule_set_cache.active_versions()))

    monkeypatch.setattr("app.main.settle_after_startup", settle)
    await empty_tables(schema)
    for server_process in (False, True):
        # Not ``running``: ``settle`` reads the application being started, so it is named first.
        app = create_app(settings, server_process=server_process)
        async with LifespanManager(app, startup_timeout=STARTUP_TIMEOUT_SECONDS):
            pass
    assert settled == [True], "once, by the server process, after the rule sets are loaded"


# --- metrics -----------------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template_and_status(
    app: FastAPI, client: httpx.AsyncClient, metrics_client: httpx.AsyncClient
) -> None:
    before = await scrape(metrics_client)
    stored = (await client.post("/v1/screenings", json={"answers": ANSWERS})).json()
    for _ in range(3):
        assert (await client.get(f"/v1/screenings/{stored['id']}")).status_code == 200
    assert (
        await client.get("/v1/screenings/0b3f2f7e-0000-4000-8000-000000000000")
    ).status_code == 404
    assert (await client.get("/no/such/path/42")).status_code == 404
    after = await scrape(metrics_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    one = "/v1/screenings/{screening_id}"
    assert grew("carelevel_http_requests_total", method="GET", route=one, status="200") == 3
    assert grew("carelevel_http_requests_total", method="GET", route=one, status="404") == 1
    assert (
        grew("carelevel_http_requests_total", method="POST", route="/v1/screenings", status="201")
        == 1
    )
    # A path no route answers is one label, never the path: no label per id or probe.
    assert grew("carelevel_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert grew("carelevel_http_request_duration_seconds_count", method="GET", route=one) == 4
    routes = {dict(labels).get("route") for (_, labels) in after}
    assert not any(stored["id"] in (route or "") for route in routes)


async def test_metrics_count_screenings_by_level_and_urgency_and_idempotent_replays(
    client: httpx.AsyncClient, metrics_client: httpx.AsyncClient
) -> None:
    before = await scrape(metrics_client)
    retry = {"Idempotency-Key": "intake-7781"}
    first = await client.post("/v1/screenings", json={"answers": ANSWERS}, headers=retry)
    again = await client.post("/v1/screenings", json={"answers": ANSWERS}, headers=retry)
    assert again.json()["id"] == first.json()["id"]
    preview = await client.post("/v1/screenings/evaluate", json={"answers": ANSWERS})
    assert preview.status_code == 200
    after = await scrape(metrics_client)

    determination = first.json()["determination"]
    level = determination["recommended_level"]["level"]
    urgency = determination["urgency"]
    labels = {"level": level, "urgency": urgency}
    assert (
        value(after, "carelevel_screenings_total", **labels)
        - value(before, "carelevel_screenings_total", **labels)
        == 1
    )  # the replay stored nothing, the preview stores nothing
    assert (
        value(after, "carelevel_idempotent_replays_total")
        - value(before, "carelevel_idempotent_replays_total")
        == 1
    )
    evaluations = value(after, "carelevel_rule_set_evaluation_seconds_count") - value(
        before, "carelevel_rule_set_evaluation_seconds_count"
    )
    # The first request, the retry and the preview: a request is evaluated before the store
    # finds its key taken (docs/architecture.md), so a replay costs one evaluation, and stores
    # nothing.
    assert evaluations == 3


async def test_metrics_show_the_active_versions_and_the_pool(
    metrics_client: httpx.AsyncClient, settings: Settings
) -> None:
    found = await scrape(metrics_client)
    version = value(
        found, "carelevel_active_rule_set_version", owner="shared", key="iop-level-of-care"
    )
    assert version == 1
    if not settings.is_sqlite:  # SQLite has no connection pool to report
        assert value(found, "carelevel_db_pool_size") == settings.db_pool_size
        in_use = value(found, "carelevel_db_pool_connections", state="in_use")
        idle = value(found, "carelevel_db_pool_connections", state="idle")
        # The pool kept the connections earlier requests used, and never more than its size.
        assert 1 <= in_use + idle <= settings.db_pool_size
    names = {name for (name, _) in found}
    assert {"carelevel_rate_limited_requests_total", "carelevel_idempotent_replays_total"} <= names


async def test_metrics_count_rate_limited_requests(schema: AsyncEngine, settings: Settings) -> None:
    await empty_tables(schema)
    limited = settings.model_copy(
        update={
            "rate_limit_requests": 2,
            "rate_limit_window_seconds": 3600,
            "rate_limit_storage": "memory",
        }
    )
    async with running(limited) as application:
        key = await new_key(application, scopes=ALL_SCOPES)
        async with http_client(application, key) as http:
            statuses = [(await http.get("/v1/questionnaire")).status_code for _ in range(4)]
        assert statuses == [200, 200, 429, 429]
        rendered = application.state.metrics.render()[0].decode()
    found = samples(rendered)
    assert value(found, "carelevel_rate_limited_requests_total") == 2
    assert (
        value(
            found,
            "carelevel_http_requests_total",
            method="GET",
            route="/v1/questionnaire",
            status="429",
        )
        == 2
    )


async def test_metrics_speak_openmetrics_to_a_scraper_that_asks(
    metrics_client: httpx.AsyncClient,
) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = await metrics_client.get("/metrics", headers={"Accept": accept})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_metrics_need_the_scope_and_the_operator_tenant(app: FastAPI) -> None:
    async with http_client(app, None) as anonymous:
        refused = await anonymous.get("/metrics")
    assert refused.status_code == 401
    assert "www-authenticate" in refused.headers

    without_scope = await new_key(app, scopes=ALL_SCOPES - {Scope.METRICS_READ})
    other_tenant = await new_key(app, tenant="clinic-a", scopes={Scope.METRICS_READ})
    for key, reason in ((without_scope, "metrics:read"), (other_tenant, "operator tenant")):
        async with http_client(app, key) as http:
            response = await http.get("/metrics")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert reason in response.json()["detail"]


@pytest.mark.parametrize("mode", ["public", "off"])
async def test_metrics_can_be_public_or_off(
    schema: AsyncEngine, settings: Settings, mode: str
) -> None:
    await empty_tables(schema)
    async with running(settings.model_copy(update={"metrics": mode})) as application:
        async with http_client(application, None) as anonymous:
            response = await anonymous.get("/metrics")
            documented = (await anonymous.get("/openapi.json")).json()["paths"]
        key = await new_key(application)
        async with http_client(application, key) as operator:
            with_key = await operator.get("/metrics")
    if mode == "public":
        assert response.status_code == 200
        assert "carelevel_http_requests_total" in response.text
        assert documented["/metrics"]["get"].get("security") is None
    else:
        assert response.status_code == with_key.status_code == 404
        assert "/metrics" not in documented


async def test_request_ids_round_trip_and_are_generated_when_absent(
    client: httpx.AsyncClient,
) -> None:
    sent = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.1"})
    assert sent.headers["x-request-id"] == "lb-7f3a.1"
    generated = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(2)}
    assert len(generated) == 2
    # Not a plausible id (too long, or characters a log line could be forged with): replaced.
    forged = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
    assert forged.headers["x-request-id"] != "x" * 200

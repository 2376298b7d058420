"""When the database cannot be reached, requests get 503 with Retry-After, never a 500."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from app.kernel.db import create_engine, create_sessionmaker
from app.kernel.settings import Settings
from app.screenings.service import ScreeningService
from tests.support.examples import EXAMPLES


@pytest.fixture
def unreachable(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    if settings.is_sqlite:
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('gone')}/missing-dir/x.db"
    else:
        url = "postgresql+asyncpg://postgres@127.0.0.1:1/carelevel"  # nothing listens on port 1
    return settings.model_copy(update={"database_url": url, "db_pool_timeout_seconds": 1.0})


async def test_requests_needing_the_database_get_503(
    app: FastAPI, client: httpx.AsyncClient, unreachable: Settings
) -> None:
    engine = create_engine(unreachable)
    healthy = app.state.sessions
    app.state.sessions = create_sessionmaker(engine)
    app.state.screening_service.sessions = app.state.sessions
    app.state.rule_set_service.sessions = app.state.sessions
    try:
        answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
        for response in (
            await client.get("/v1/screenings"),
            await client.post("/v1/screenings", json={"answers": answers}),
            await client.get("/v1/rule-sets"),
        ):
            assert response.status_code == 503
            assert response.headers["retry-after"]
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["type"].endswith("temporarily-unavailable")
    finally:
        app.state.sessions = healthy
        app.state.screening_service.sessions = healthy
        app.state.rule_set_service.sessions = healthy
        await engine.dispose()
    assert (await client.get("/v1/screenings")).status_code == 200  # and it recovers


class _ShuttingDown(Exception):
    sqlstate = "57P01"  # admin_shutdown: what Postgres answers while it stops


class _NotNull(Exception):
    sqlstate = "23502"


@pytest.mark.parametrize(("orig", "status"), [(_ShuttingDown, 503), (_NotNull, 500)])
async def test_a_database_that_is_stopping_is_503_and_a_broken_statement_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, orig: type[Exception], status: int
) -> None:
    async def failing(*args: object, **kwargs: object) -> None:
        raise DBAPIError("SELECT 1", None, orig(), connection_invalidated=False)

    monkeypatch.setattr(ScreeningService, "page", failing)
    response = await client.get("/v1/screenings")
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert ("retry-after" in response.headers) is (status == 503)

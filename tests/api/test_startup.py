"""Processes of one deployment that start at once on an empty database seed it once: one
version of the shipped rule set, active, and (when asked for) one local admin.

Each seeding transaction serialises itself, so this holds behind a pooler in transaction mode
too, where nothing may be held across transactions (`make pgbouncer` runs it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import re

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.settings import Settings
from tests.api.screenings_support import RULE_SET
from tests.support.apps import empty_tables, http_client, running

PROCESSES = 3


async def test_processes_starting_at_once_on_an_empty_database_seed_it_once(
    schema: AsyncEngine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    bootstrapping = settings.model_copy(update={"bootstrap_admin": True})
    await empty_tables(schema)
    async with contextlib.AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(stack.enter_async_context(running(bootstrapping)) for _ in range(PROCESSES))
        )
        keys = re.findall(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}", capsys.readouterr().err)
        assert len(keys) == 1, "one local admin, its key printed once"
        for application in started:
            async with http_client(application, keys[0]) as admin:
                assert (await admin.get("/readyz")).status_code == 200
                versions = (await admin.get(f"{RULE_SET}/versions")).json()
                assert [(v["version"], v["status"]) for v in versions] == [(1, "active")]
                clients = (await admin.get("/v1/clients")).json()["items"]
                assert [client["name"] for client in clients] == ["local admin"]

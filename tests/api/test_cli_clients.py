"""``carelevel clients create | list | revoke`` against the test database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.models import AuditEvent
from app.cli import main
from app.kernel.db import database_shown
from app.kernel.settings import Settings, get_settings
from tests.support.apps import empty_tables, http_client, running

KEY = re.compile(r"clk_[0-9a-f]{8}\.[A-Za-z0-9_-]{43}")


@pytest.fixture
async def cli_database(
    schema: AsyncEngine, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncEngine:
    await empty_tables(schema)
    monkeypatch.setenv("CARELEVEL_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    return schema


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    yield
    get_settings.cache_clear()


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command as from a shell (in a thread: it runs its own event loop)."""
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_create_prints_the_key_once_and_the_key_works(
    cli_database: AsyncEngine, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await run(
        capsys,
        "clients", "create", "--tenant", "clinic-a", "--name", "EHR feed",
        "--scopes", "screenings:write,screenings:read", "audit:read",
    )  # fmt: skip

    assert code == 0
    # Which database it used, as tests/unit/test_settings.py specifies the line.
    assert err == f"carelevel: using database {database_shown(settings.database_url, Path.cwd())}\n"
    keys = KEY.findall(out)
    assert len(keys) == 1
    assert "shown this once" in out
    assert "of tenant 'clinic-a'" in out
    async with running(settings) as application, http_client(application, keys[0]) as http:
        assert (await http.get("/v1/screenings")).status_code == 200
        assert (await http.get("/v1/rule-sets")).status_code == 403
        events = (await http.get("/v1/audit-events")).json()["items"]
    created = next(e for e in events if e["action"] == "client.create")
    assert created["client_id"] == "cli"


async def test_list_shows_prefixes_never_keys_and_revoke_takes_id_or_prefix(
    cli_database: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first, _ = await run(
        capsys, "clients", "create", "--tenant", "clinic-a", "--name", "one", "--scopes", "admin"
    )
    _, second, _ = await run(
        capsys, "clients", "create", "--tenant", "clinic-b", "--name", "two", "--scopes", "admin"
    )
    key_one, key_two = KEY.findall(first)[0], KEY.findall(second)[0]

    code, listing, _ = await run(capsys, "clients", "list")
    assert code == 0
    assert key_one.split(".")[0] in listing
    assert key_one not in listing
    assert key_two not in listing
    _, only_b, _ = await run(capsys, "clients", "list", "--tenant", "clinic-b")
    assert "clinic-a" not in only_b
    assert "clinic-b" in only_b

    code, out, _ = await run(capsys, "clients", "revoke", key_one.split(".")[0])
    assert code == 0
    assert "Revoked" in out
    _, listing, _ = await run(capsys, "clients", "list", "--tenant", "clinic-a")
    assert "revoked" in listing
    async with cli_database.connect() as connection:
        actions = (await connection.execute(select(AuditEvent.action))).scalars().all()
    assert sorted(actions) == ["client.create", "client.create", "client.revoke"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tenant", "shared", "--name", "x", "--scopes", "admin"], "--tenant"),
        (["--tenant", "Clinic A", "--name", "x", "--scopes", "admin"], "--tenant"),
        (["--tenant", "a", "--name", "x", "--scopes", "root"], "unknown scope 'root'"),
        (["--tenant", "a", "--name", "\x07", "--scopes", "admin"], "--name"),
    ],
)
async def test_create_refuses_bad_arguments(
    cli_database: AsyncEngine,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    code, out, err = await run(capsys, "clients", "create", *args)
    assert code == 2
    assert message in err
    assert not KEY.search(out)


async def test_revoking_an_unknown_client_fails(
    cli_database: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await run(capsys, "clients", "revoke", "clk_00000000")
    assert code == 1
    assert "no client" in err

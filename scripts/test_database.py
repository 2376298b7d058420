"""Print the database URL `make test` runs the suite against.

CARELEVEL_TEST_DATABASE_URL wins when it is set, even empty (empty: a SQLite file). Otherwise
the local PostgreSQL is used when it answers: the database ``carelevel_test`` on
CARELEVEL_TEST_POSTGRES (default ``postgres@127.0.0.1:5432``), created if missing, so that a
developer's run exercises the production storage path. Nothing answering: empty, SQLite.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

DATABASE = "carelevel_test"
SERVER = os.environ.get("CARELEVEL_TEST_POSTGRES", "postgres@127.0.0.1:5432")


async def local_postgres_url() -> str:
    try:
        connection = await asyncpg.connect(f"postgresql://{SERVER}/postgres", timeout=2)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return ""
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    except asyncpg.PostgresError as error:  # e.g. not allowed to create databases
        sys.stderr.write(f"test database: {type(error).__name__}; using SQLite\n")
        return ""
    finally:
        await connection.close()
    return f"postgresql+asyncpg://{SERVER}/{DATABASE}"


def main() -> None:
    configured = os.environ.get("CARELEVEL_TEST_DATABASE_URL")
    url = configured if configured is not None else asyncio.run(local_postgres_url())
    sys.stderr.write(f"test database: {url.split('@')[-1] if url else 'a SQLite file'}\n")
    sys.stdout.write(url + "\n")


if __name__ == "__main__":
    main()

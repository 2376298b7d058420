"""Reliability tests, run by ``make reliability``: crashes, a database outage, an exhausted
connection pool and concurrent writers, against real ``carelevel serve`` processes on a private
PostgreSQL cluster.

They stop and start their own database and kill their own servers, so they are not part of the
default ``pytest`` run: a test module here is collected only when this directory (or a file in
it) is named on the command line (``pytest tests/reliability``). Missing PostgreSQL server
programs (``initdb``, ``pg_ctl``) fail them; they never skip.

Every server, database and request is on 127.0.0.1; every load is bounded in requests and
seconds; the cluster and the servers are stopped at the end however the run ends (a watchdog
process does it if the run is killed).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.operations.metrics import MULTIPROCESS_ENV
from tests.collection import collected_only_when_named
from tests.reliability.support import (
    PrivateCluster,
    Watchdog,
    carelevel,
    create_client,
    fetch,
    interrupt_on_sigterm,
    wait_for_workers,
)
from tests.server_support import Server, free_port, running_server, server_environment

HERE = Path(__file__).resolve().parent


pytest_ignore_collect = collected_only_when_named(HERE)


@dataclass
class Fixtures:
    cluster: PrivateCluster
    watchdog: Watchdog


@pytest.fixture(scope="session")
def private() -> Iterator[Fixtures]:
    """A PostgreSQL cluster of this run's own on a free loopback port: the tests may stop it
    (the machine's shared server, which other tests and CI use, is never touched). Stopped
    and removed at the end, pass or fail; SIGTERM (``timeout``) still cleans up, and a
    watchdog does it if the run is killed outright."""
    restore = interrupt_on_sigterm()
    root = Path(tempfile.mkdtemp(prefix="carelevel-reliability-pg-"))
    cluster = PrivateCluster(root, free_port())
    watchdog = Watchdog(cluster)
    try:
        cluster.init()
        cluster.start()
        yield Fixtures(cluster, watchdog)
    finally:
        try:
            if cluster.running():
                cluster.stop("immediate")
        finally:
            watchdog.stop()
            shutil.rmtree(root, ignore_errors=True)
            restore()


@pytest.fixture(scope="session")
def cluster(private: Fixtures) -> PrivateCluster:
    return private.cluster


@pytest.fixture(scope="session")
def watchdog(private: Fixtures) -> Watchdog:
    return private.watchdog


@dataclass(frozen=True)
class Database:
    """A fresh, migrated database of the private cluster, for one test."""

    cluster: PrivateCluster
    name: str
    workdir: Path

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)

    def env(self, **settings: str) -> dict[str, str]:
        """The environment of a production ``carelevel serve`` on this database, with
        ``settings`` (``db_pool_size="2"`` → ``CARELEVEL_DB_POOL_SIZE=2``)."""
        defaults = {
            "environment": "production",
            "rate_limit_requests": "1000000",
            "rate_limit_tenant_requests": "1000000",
            "public_url": "http://carelevel.test",
            "redis_url": "redis://127.0.0.1:6379/13",  # several workers count in one place
        }
        return server_environment(self.url, **(defaults | settings))

    def fetch(self, query: str, **parameters: Any) -> list[dict[str, Any]]:
        return fetch(self.url, query, **parameters)

    def client(self, name: str, *scopes: str) -> str:
        return create_client(self.env(), self.workdir, name, *scopes)

    def waiting_for_locks(self) -> int:
        """How many sessions of this database wait for a lock (on a ``table_locked`` table)."""
        rows = self.fetch(
            "SELECT count(*) AS n FROM pg_stat_activity "
            "WHERE datname = :name AND wait_event_type = 'Lock'",
            name=self.name,
        )
        return int(str(rows[0]["n"]))


@pytest.fixture
def database(cluster: PrivateCluster, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A new database (named after the test) on the private cluster, started if a test before
    left it stopped, migrated by ``carelevel migrate``."""
    if not cluster.running():
        cluster.start()
    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    admin = cluster.url("postgres")
    fetch(admin, f'DROP DATABASE IF EXISTS "{name}"')
    fetch(admin, f'CREATE DATABASE "{name}"')
    created = Database(cluster, name, tmp_path)
    carelevel(created.env(), "migrate", cwd=tmp_path)
    return created


@pytest.fixture
def screening_writer(database: Database) -> str:
    """The key of a client that stores and reads screenings."""
    return database.client("load", "screenings:write", "screenings:read")


Serve = Callable[..., contextlib.AbstractContextManager[Server]]


@pytest.fixture
def serve(database: Database, watchdog: Watchdog) -> Serve:
    """``serve(workers, **settings)``: a production ``carelevel serve`` of the test's database
    with ``workers`` processes in a process group of its own (``kill_process_group`` crashes
    it; the watchdog kills it if the run dies), once every worker has started."""

    @contextlib.contextmanager
    def serving(workers: int = 1, **settings: str) -> Iterator[Server]:
        env = database.env(**settings)
        if workers > 1:
            # The workers' shared metrics, in the test's directory: a killed server cannot
            # remove the one it would make in /tmp itself (app/cli.py, _metrics_shared_by).
            env[MULTIPROCESS_ENV] = tempfile.mkdtemp(prefix="metrics-", dir=database.workdir)
        arguments = ("--workers", str(workers))
        with running_server(database.workdir, env, *arguments, process_group=True) as server:
            watchdog.watch(server)
            wait_for_workers(server, workers)
            yield server

    return serving

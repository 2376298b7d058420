"""A database outage under load: PostgreSQL is stopped (``fast``: every session is ended; then
``immediate``: the server is killed) while clients store and list screenings and probe the
service, then started again.

While it is down, every request that needs it is answered 503 problem+json with
``Retry-After``, quickly (within the pool timeout and a margin: no request hangs), never 500;
``/readyz`` says 503 and ``/healthz`` 200, so an orchestrator takes the replica out of rotation
without restarting it. Once it is back, the same processes serve again within seconds, and every
screening answered 201, before or between the outages, is stored.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tests.reliability.conftest import Database, Serve
from tests.reliability.support import (
    Call,
    Load,
    Outcome,
    PrivateCluster,
    assert_unavailable,
    client_of,
    send,
    wait_until,
)

ANSWERS = json.loads((Path(__file__).parents[2] / "examples/adult-iop-suitable.json").read_text())
POOL_TIMEOUT_SECONDS = 2.0
MARGIN_SECONDS = 3.0
OUTAGE_SECONDS = 3.0
RECOVERY_SECONDS = 20.0
HEALTHY_SECONDS = 1.5
WORKERS = 2


def mixed(thread: int, n: int) -> Call:
    """Store, list, probe, in turn."""
    match n % 4:
        case 0 | 1:
            key = f"outage-{thread}-{n}"
            return Call("POST", "/v1/screenings", {"answers": ANSWERS}, key=key)
        case 2:
            return Call("GET", "/v1/screenings?limit=5")
        case _:
            return Call("GET", "/readyz" if thread % 2 else "/healthz")


@dataclass(frozen=True)
class Outage:
    mode: str
    stopping: float  # pg_ctl stop is about to be run
    down: float  # the database has stopped (pg_ctl stop returned)
    up: float  # pg_ctl start is about to be run
    recovered: float  # a screening was stored again


def outage(cluster: PrivateCluster, load: Load, mode: str) -> Outage:
    stopping = time.monotonic()
    cluster.stop(mode)
    down = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    up = time.monotonic()
    cluster.start()
    started = time.monotonic()
    wait_until(
        lambda: any(o.started > started for o in load.answered(201)),
        RECOVERY_SECONDS,
        f"a screening stored after the database came back ({mode})",
    )
    recovered = time.monotonic()
    time.sleep(HEALTHY_SECONDS)
    return Outage(mode, stopping, down, up, recovered)


def summary(outcomes: list[Outcome]) -> Counter[str]:
    """How many of ``outcomes`` each operation and answer had."""
    return Counter(
        f"{o.call.method} {o.call.path.partition('?')[0]}: {o.status or o.error}" for o in outcomes
    )


def errors_logged(log: str) -> Counter[str]:
    """The server's ERROR log records (JSON lines), by message."""
    return Counter(
        json.loads(line)["message"]
        for line in log.splitlines()
        if line.startswith("{") and '"level":"ERROR"' in line.replace(" ", "")
    )


def needs_the_database(outcome: Outcome) -> bool:
    return outcome.call.path != "/healthz"


def test_a_database_outage_gets_503_quickly_and_the_service_recovers_by_itself(
    database: Database, serve: Serve, screening_writer: str, cluster: PrivateCluster
) -> None:
    with serve(WORKERS, db_pool_timeout_seconds=str(POOL_TIMEOUT_SECONDS)) as server:
        pid = server.process.pid
        load = Load(
            server.base_url,
            screening_writer,
            mixed,
            threads=6,
            max_requests=2000,
            seconds=90,
            timeout=POOL_TIMEOUT_SECONDS + 10,
            pause=0.02,
        )
        with load:
            wait_until(lambda: len(load.answered(201)) >= 20, 30, "screenings stored")
            outages = [outage(cluster, load, mode) for mode in ("fast", "immediate")]
        # The same processes served throughout: nothing restarted them.
        assert server.process.poll() is None, server.log()[-3000:]
        assert server.process.pid == pid
        log = server.log()
        assert log.count("Started server process") == WORKERS, "a worker was restarted"

    outcomes = list(load.outcomes)
    # No 500, and no request left without an answer.
    problems = [o for o in outcomes if o.status not in (200, 201, 503)]
    assert not problems, (summary(problems), errors_logged(log), problems[0].describe())
    for outcome in outcomes:
        if outcome.status == 503:
            assert_unavailable(outcome)
            assert needs_the_database(outcome), outcome.describe()
    slow = [o.describe() for o in outcomes if o.elapsed > POOL_TIMEOUT_SECONDS + MARGIN_SECONDS]
    assert not slow, slow[:10]

    for gone in outages:
        during = [o for o in outcomes if o.started >= gone.down and o.ended <= gone.up]
        assert len([o for o in during if needs_the_database(o)]) >= 20, gone
        for outcome in during:
            if needs_the_database(outcome):
                assert_unavailable(outcome)
            else:
                assert outcome.status == 200, outcome.describe()
        assert any(o.call.path == "/readyz" for o in during), gone
        assert any(o.call.path == "/healthz" for o in during), gone

    # Once a screening is stored again, every request is served (each worker's stale
    # connections were replaced at their first use), until the next outage.
    ends = [gone.stopping for gone in outages[1:]] + [math.inf]
    for gone, end in zip(outages, ends, strict=True):
        after = [o for o in outcomes if o.started >= gone.recovered + 0.2 and o.ended < end]
        assert len(after) >= 10, gone
        refused = [o.describe() for o in after if o.status not in (200, 201)]
        assert not refused, (gone.mode, refused[:5])

    # Nothing was lost: every screening answered 201 is stored.
    stored = {row["id"] for row in database.fetch("SELECT id FROM screenings")}
    created = {json.loads(o.content)["id"] for o in load.answered(201)}
    assert created <= stored
    assert "Traceback" not in log, log[-5000:]


def test_a_database_that_stops_answering_gets_503_within_the_statement_timeout(
    serve: Serve, screening_writer: str, cluster: PrivateCluster
) -> None:
    timeout = POOL_TIMEOUT_SECONDS + MARGIN_SECONDS
    with (
        serve(
            db_pool_timeout_seconds=str(POOL_TIMEOUT_SECONDS),
            db_statement_timeout_seconds=str(POOL_TIMEOUT_SECONDS),
        ) as server,
        client_of(server, screening_writer, timeout=timeout) as http,
    ):
        listing = Call("GET", "/v1/screenings")
        storing = Call("POST", "/v1/screenings", json={"answers": ANSWERS}, key="frozen-1")
        assert send(http, listing).status == 200  # pooled connections, ready
        with cluster.frozen():
            frozen = [send(http, listing), send(http, storing)]
            not_ready = send(http, Call("GET", "/readyz"))
        served_again = send(http, listing)
        retried = send(http, storing)
    assert served_again.status == 200, served_again.describe()
    assert not_ready.status == 503, not_ready.describe()
    for outcome in frozen:  # the session path and the one-statement path
        assert_unavailable(outcome)
        assert outcome.elapsed < timeout, outcome.describe()
    # whether or not the frozen attempt reached the database, its retry ends with one screening
    assert retried.status == 201, retried.describe()


def test_a_request_is_answered_at_its_deadline_however_long_its_statements_may_wait(
    serve: Serve, screening_writer: str, cluster: PrivateCluster
) -> None:
    # Statements and connections may wait a minute; the request's deadline still answers it.
    deadline = 2.0
    with (
        serve(
            db_pool_timeout_seconds="60",
            db_statement_timeout_seconds="60",
            request_deadline_seconds=str(deadline),
            request_body_timeout_seconds="1",
        ) as server,
        client_of(server, screening_writer, timeout=30) as http,
    ):
        listing = Call("GET", "/v1/screenings")
        assert send(http, listing).status == 200  # pooled connections, ready
        with cluster.frozen():
            stopped = send(http, listing)
        served_again = send(http, listing)
    assert_unavailable(stopped)
    assert json.loads(stopped.content)["type"].endswith("/deadline-exceeded"), stopped.describe()
    assert stopped.elapsed < deadline + MARGIN_SECONDS, stopped.describe()
    assert served_again.status == 200, served_again.describe()

"""An exhausted connection pool: ``carelevel serve`` with the smallest pool (2 connections) and
a 1 s pool timeout, both connections held by requests that wait on a locked table.

Another request that needs the database waits for a connection at most the pool timeout, then
gets 503 problem+json with ``Retry-After`` (never a hang, never 500); one that does not (an
evaluation: credentials trusted, rule set compiled, rate limits counted in Redis) is answered as
usual; ``/readyz`` says 503, ``/healthz`` still 200.
Once the lock goes, the held requests complete (201) and new ones are served at once.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.reliability.conftest import Database, Serve
from tests.reliability.support import (
    Call,
    Outcome,
    assert_unavailable,
    client_of,
    send,
    table_locked,
    wait_until,
)

ANSWERS = json.loads((Path(__file__).parents[2] / "examples/adult-iop-suitable.json").read_text())
POOL_SIZE = 2  # the least CARELEVEL_DB_POOL_SIZE allows (no overflow: app/kernel/db.py)
POOL_TIMEOUT_SECONDS = 1.0
MARGIN_SECONDS = 2.0
STORE = Call("POST", "/v1/screenings", {"answers": ANSWERS})


def test_an_exhausted_pool_answers_503_within_the_pool_timeout_and_recovers(
    database: Database, serve: Serve, screening_writer: str
) -> None:
    with serve(
        db_pool_size=str(POOL_SIZE), db_pool_timeout_seconds=str(POOL_TIMEOUT_SECONDS)
    ) as server:

        def held_request(_: int) -> Outcome:
            with client_of(server, screening_writer) as http:
                return send(http, STORE)

        with client_of(server, screening_writer) as http, ThreadPoolExecutor(POOL_SIZE) as pool:
            assert send(http, STORE).status == 201  # the key is checked, the rule set ready

            with table_locked(database.url, "screenings"):
                held = [pool.submit(held_request, n) for n in range(POOL_SIZE)]
                wait_until(
                    lambda: database.waiting_for_locks() >= POOL_SIZE,
                    15,
                    "every pooled connection held by a request waiting on the lock",
                )
                # No connection is left: each of these waits for one, then gives up.
                for call in (STORE, Call("GET", "/v1/screenings")):
                    refused = send(http, call)
                    assert_unavailable(refused)
                    problem = json.loads(refused.content)
                    assert problem["type"].endswith("temporarily-unavailable")
                    # It waited for a connection (the pool timeout), and no longer.
                    waited = refused.elapsed
                    assert waited >= POOL_TIMEOUT_SECONDS * 0.9, refused.describe()
                    assert waited <= POOL_TIMEOUT_SECONDS + MARGIN_SECONDS, refused.describe()
                # An evaluation needs no connection: answered as usual, at once.
                evaluate = Call("POST", "/v1/screenings/evaluate", {"answers": ANSWERS})
                evaluated = send(http, evaluate)
                assert evaluated.status == 200, evaluated.describe()
                assert evaluated.elapsed < POOL_TIMEOUT_SECONDS, evaluated.describe()
                not_ready = send(http, Call("GET", "/readyz"))
                assert_unavailable(not_ready)
                assert not_ready.elapsed <= POOL_TIMEOUT_SECONDS + MARGIN_SECONDS
                alive = send(http, Call("GET", "/healthz"))
                assert alive.status == 200, alive.describe()
                assert alive.elapsed < 1.0
                assert not any(request.done() for request in held)

            # The lock is gone: the held requests finish, and the pool serves again at once.
            for request in held:
                outcome = request.result(timeout=15)
                assert outcome.status == 201, outcome.describe()
            served = send(http, STORE)
            assert served.status == 201, served.describe()
            assert served.elapsed < POOL_TIMEOUT_SECONDS
            ready = send(http, Call("GET", "/readyz"))
            assert ready.status == 200, ready.describe()

    stored = database.fetch("SELECT count(*) AS n FROM screenings")
    assert stored[0]["n"] == 1 + POOL_SIZE + 1

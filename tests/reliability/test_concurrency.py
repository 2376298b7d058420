"""Concurrent writers against a real ``carelevel serve`` with two workers (two processes, each
with its own pool and caches), every client on a connection of its own, released together.

The in-process specifications cover the same races in one process, on PostgreSQL in CI:
tests/api/test_screenings.py::test_concurrent_requests_with_one_key_store_one_screening (20
requests, one key) and tests/api/test_rule_sets_lifecycle.py::
test_fifty_concurrent_activations_leave_exactly_one_active (50 activations). Here the
requests race across processes, as they do behind a load balancer.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.reliability.conftest import Database, Serve
from tests.reliability.support import PROBLEM_JSON, Call, Outcome, client_of, send, wait_until
from tests.server_support import Server

ANSWERS = json.loads((Path(__file__).parents[2] / "examples/adult-iop-suitable.json").read_text())
VERSIONS = "/v1/rule-sets/shared/iop-level-of-care/versions"
WORKERS = 2


def all_at_once(server: Server, api_key: str, calls: list[Call]) -> list[Outcome]:
    """Send ``calls`` at the same moment, each from a client with a connection of its own
    (opened before the start), so the two workers share them."""
    barrier = threading.Barrier(len(calls), timeout=30)

    def one(call: Call) -> Outcome:
        with client_of(server, api_key) as http:
            assert http.get("/healthz").status_code == 200  # connected
            barrier.wait()
            return send(http, call)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(one, calls, timeout=60))


def test_twenty_concurrent_requests_with_one_key_store_one_screening_across_workers(
    database: Database, serve: Serve, screening_writer: str
) -> None:
    call = Call("POST", "/v1/screenings", {"answers": ANSWERS}, key="intake-concurrent-20")
    with serve(WORKERS) as server:
        outcomes = all_at_once(server, screening_writer, [call] * 20)

        # The first request stores; each of the others waits for its commit and replays it.
        assert [o.status for o in outcomes] == [201] * 20, [o.describe() for o in outcomes]
        created = outcomes
        # The same screening every time (as JSON: a replay reads it back from a JSONB column,
        # which keeps the keys of an object in an order of its own).
        bodies = [json.loads(o.content) for o in created]
        assert all(body == bodies[0] for body in bodies), "every 201 answers the same screening"
        assert len({o.headers["location"] for o in created if o.headers}) == 1
        first = [o for o in created if o.headers and "idempotent-replayed" not in o.headers]
        assert len(first) == 1, "exactly one request stored it"
        with client_of(server, screening_writer) as http:
            retried = send(http, call)  # a later retry replays it too
        assert retried.status == 201, retried.describe()
        assert json.loads(retried.content) == bodies[0]

    rows = database.fetch("SELECT id, idempotency_key FROM screenings")
    assert [row["id"] for row in rows] == [json.loads(created[0].content)["id"]]
    keys = database.fetch("SELECT state, screening_id FROM idempotency_keys")
    assert keys == [{"state": "completed", "screening_id": rows[0]["id"]}]


def test_fifty_concurrent_activations_across_workers_leave_exactly_one_active(
    database: Database, serve: Serve
) -> None:
    admin = database.client(
        "rule-set admin", "rulesets:read", "rulesets:write", "rulesets:publish", "screenings:write"
    )
    with serve(WORKERS, rule_set_refresh_seconds="0.5") as server:
        with client_of(server, admin) as http:
            numbers = [1]
            for _ in range(4):  # four published copies of version 1, none active
                draft = http.post(VERSIONS, params={"copy_from": 1})
                assert draft.status_code == 201, draft.text
                numbers.append(draft.json()["version"])
                published = http.post(f"{VERSIONS}/{numbers[-1]}/publish")
                assert published.status_code == 200, published.text

        calls = [Call("POST", f"{VERSIONS}/{n}/activate") for _ in range(10) for n in numbers]
        outcomes = all_at_once(server, admin, calls)

        statuses = Counter(o.status for o in outcomes)
        assert set(statuses) <= {200, 409}, [o.describe() for o in outcomes if o.status != 200]
        assert statuses[200] >= 1
        for outcome in outcomes:
            if outcome.status == 409:
                assert outcome.headers is not None
                assert outcome.headers["content-type"].startswith(PROBLEM_JSON)
        active = database.fetch(
            "SELECT version FROM rule_set_versions WHERE key = 'iop-level-of-care' "
            "AND status = 'active'"
        )
        assert len(active) == 1, active
        winner = active[0]["version"]
        with client_of(server, admin) as http:
            listed = {row["version"]: row["status"] for row in http.get(VERSIONS).json()}
        assert sorted(listed.values()) == ["active"] + ["published"] * 4, listed
        assert listed[winner] == "active"

        # Every worker decides new screenings with the winner (each re-reads which version
        # is active every CARELEVEL_RULE_SET_REFRESH_SECONDS).
        def decided_by_the_winner() -> bool:
            screenings = all_at_once(
                server,
                admin,
                [Call("POST", "/v1/screenings/evaluate", {"answers": ANSWERS})] * 8,
            )
            return all(
                o.status == 200 and json.loads(o.content)["rule_set"]["version"] == winner
                for o in screenings
            )

        wait_until(decided_by_the_winner, 10, f"every worker deciding with version {winner}")

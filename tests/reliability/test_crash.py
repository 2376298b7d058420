"""A crash under load: ``carelevel serve`` (two workers) is killed with SIGKILL, supervisor and
workers at once, while eight clients store screenings; then restarted.

Every screening that was answered 201 is there, exactly as it was answered; nothing is
half-written (each screening has its audit event and its completed idempotency key, and no key
points at nothing: the three are written together or not at all); and a retry of each request
that got no answer ends with exactly one screening: the stored one if the request had
committed, a new one otherwise, at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.reliability.conftest import Database, Serve
from tests.reliability.support import (
    Call,
    Load,
    Outcome,
    client_of,
    send,
    table_locked,
    wait_until,
)
from tests.server_support import kill_process_group

EXAMPLES = Path(__file__).parents[2] / "examples"
ANSWERS = [json.loads(path.read_text()) for path in sorted(EXAMPLES.glob("*.json"))]
WORKERS = 2
THREADS = 8
STORED_BEFORE_THE_CRASH = 40


def screenings_of(round_name: str) -> Callable[[int, int], Call]:
    """POST /v1/screenings, a new Idempotency-Key each time, the examples in turn."""

    def call(thread: int, n: int) -> Call:
        key = f"crash-{round_name}-{thread}-{n}"
        body = {"answers": ANSWERS[(thread + n) % len(ANSWERS)], "external_reference": key}
        return Call("POST", "/v1/screenings", body, key=key)

    return call


def crash_under_load(
    database: Database, serve: Serve, api_key: str, round_name: str, *, mid_write: bool
) -> Load:
    """Serve, load, SIGKILL the whole server; the load's outcomes. ``mid_write``: kill it while
    the screenings table is locked, so that every request in flight is inside its transaction,
    waiting to store its screening (the window a random kill may miss)."""
    with serve(WORKERS) as server:
        load = Load(
            server.base_url,
            api_key,
            screenings_of(round_name),
            threads=THREADS,
            max_requests=500,
            seconds=60,
            stop_when_unanswered=True,
        )
        with load:
            wait_until(
                lambda: len(load.answered()) >= STORED_BEFORE_THE_CRASH,
                30,
                f"{STORED_BEFORE_THE_CRASH} screenings stored",
            )
            if mid_write:
                with table_locked(database.url, "screenings"):
                    wait_until(
                        lambda: database.waiting_for_locks() >= THREADS // 2,
                        15,
                        "requests waiting to store their screenings",
                    )
                    kill_process_group(server.process)
            else:
                kill_process_group(server.process)
    answered = load.answered()
    assert all(o.status == 201 for o in answered), [o.describe() for o in answered[:5]]
    assert len(answered) >= STORED_BEFORE_THE_CRASH
    unanswered = [o for o in load.outcomes if o.status is None]
    assert unanswered, "no request was in flight when the server was killed"
    if mid_write:
        assert len(unanswered) >= THREADS // 2
    return load


def stored_state(database: Database) -> tuple[dict[str, str], dict[str, str]]:
    """Check that nothing is half-written; the stored screenings' ids by idempotency key, and
    the state of every idempotency key."""
    screenings = database.fetch(
        "SELECT s.id, s.idempotency_key, s.level, s.determination IS NOT NULL AS determined, "
        "(SELECT count(*) FROM audit_events a WHERE a.resource_id = s.id "
        " AND a.action = 'screening.create' AND a.outcome = 201 "
        " AND NOT a.details ? 'replayed') AS events "
        "FROM screenings s"
    )
    keys = database.fetch(
        "SELECT k.key, k.state, k.screening_id, s.idempotency_key AS screening_key "
        "FROM idempotency_keys k LEFT JOIN screenings s ON s.id = k.screening_id"
    )
    for row in screenings:
        assert row["events"] == 1, f"screening without exactly one audit event: {row}"
        assert row["determined"], row
        assert row["idempotency_key"] is not None, row
    by_key: dict[str, str] = {}
    for row in screenings:
        key = str(row["idempotency_key"])
        assert key not in by_key, f"two screenings for one idempotency key: {key}"
        by_key[key] = str(row["id"])
    states: dict[str, str] = {}
    for row in keys:
        key, state = str(row["key"]), str(row["state"])
        states[key] = state
        assert state == "completed", f"a key written without its screening: {row}"
        assert row["screening_key"] == key, f"a completed key without its screening: {row}"
    for key in by_key:
        assert states.get(key) == "completed", f"a screening without its completed key: {key}"
    return by_key, states


def key_of(outcome: Outcome) -> str:
    assert outcome.call.key is not None
    return outcome.call.key


def retry(http: httpx.Client, outcome: Outcome) -> Outcome:
    return send(http, outcome.call)


def test_sigkill_under_load_loses_no_screening_and_leaves_nothing_half_written(
    database: Database, serve: Serve, screening_writer: str
) -> None:
    loads = [
        crash_under_load(database, serve, screening_writer, "anywhere", mid_write=False),
        crash_under_load(database, serve, screening_writer, "mid-write", mid_write=True),
    ]
    created = {key_of(o): o for load in loads for o in load.answered(201)}
    unanswered = [o for load in loads for o in load.outcomes if o.status is None]

    # With every process gone: what the database holds.
    by_key, states = stored_state(database)
    assert set(created) <= set(by_key), "a screening answered 201 is missing"
    for key, outcome in created.items():
        assert by_key[key] == json.loads(outcome.content)["id"]
        assert states[key] == "completed"
    # A key is written with its screening or not at all: a request killed before its commit
    # leaves nothing behind.
    assert set(by_key) == set(states)
    assert set(by_key) <= set(created) | {key_of(o) for o in unanswered}

    with serve(WORKERS) as server, client_of(server, screening_writer) as http:
        # Every 201 reads back exactly as it was answered.
        for outcome in created.values():
            answered: dict[str, Any] = json.loads(outcome.content)
            read = http.get(f"/v1/screenings/{answered['id']}")
            assert read.status_code == 200, read.text
            assert read.json() == answered

        # A retry of a request that got no answer: the screening it stored, or a new one if it
        # stored none.
        for outcome in unanswered:
            key = key_of(outcome)
            again = retry(http, outcome)
            assert again.headers is not None
            assert again.status == 201, again.describe()
            if key in by_key:
                assert again.headers["idempotent-replayed"] == "true"
                assert json.loads(again.content)["id"] == by_key[key]
            else:
                assert "idempotent-replayed" not in again.headers
                replayed = retry(http, outcome)
                assert replayed.status == 201, replayed.describe()
                assert replayed.headers is not None
                assert replayed.headers["idempotent-replayed"] == "true"
                assert json.loads(replayed.content) == json.loads(again.content)

    # In the end: one screening per request sent, each whole, every key completed.
    by_key, states = stored_state(database)
    assert set(by_key) == set(created) | {key_of(o) for o in unanswered}
    assert set(states.values()) == {"completed"}

"""The real ``carelevel serve``: JSON log lines, metrics shared by workers, graceful shutdown."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.server_support import running_server, server_environment
from tests.support.examples import EXAMPLES

ANSWERS = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())


def requests_counted(exposition: str, route: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "carelevel_http_requests_total" and sample.labels["route"] == route
    )


def test_production_style_logs_are_one_json_object_per_request(tmp_path: Path) -> None:
    env = server_environment(tmp_path / "carelevel.db", log_format="json")
    with running_server(tmp_path, env) as server:
        key = server.printed_key()
        headers = {"Authorization": f"Bearer {key}", "X-Request-ID": "intake-42"}
        created = httpx.post(
            f"{server.base_url}/v1/screenings", json={"answers": ANSWERS}, headers=headers
        )
        assert created.status_code == 201
        assert created.headers["x-request-id"] == "intake-42"
        screening = created.json()["id"]
        assert httpx.get(f"{server.base_url}/v1/screenings/{screening}", headers=headers)
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    entries = [json.loads(line) for line in lines]
    access = [entry for entry in entries if entry["logger"] == "carelevel.access"]
    requests = [entry for entry in access if entry["request_id"] == "intake-42"]
    assert [(e["method"], e["route"], e["status"]) for e in requests] == [
        ("POST", "/v1/screenings", 201),
        ("GET", "/v1/screenings/{screening_id}", 200),
    ]
    for entry in requests:
        assert entry["message"] == "request"
        assert entry["tenant"] == "default"
        assert entry["client_id"] not in ("", "-")
        assert isinstance(entry["duration_ms"], float)
    assert screening not in "\n".join(lines)  # the route template, never the path with its id
    # Every line the server writes is JSON, uvicorn's own included (except the key's banner).
    others = [line for line in server.log().splitlines() if line and not line.startswith("{")]
    assert all(key in line or not line.strip() or line.startswith(" ") for line in others), others


def test_every_worker_counts_into_one_scrape(tmp_path: Path) -> None:
    # Two workers count rate limits in one place (refused in memory).
    env = server_environment(tmp_path / "carelevel.db", redis_url="redis://127.0.0.1:6379/13")
    with running_server(tmp_path, env, "--workers", "2") as server:
        key = server.printed_key()
        sent = 40
        with httpx.Client(base_url=server.base_url) as http:
            for _ in range(sent):
                # A new connection each time, so that both workers answer some of them.
                assert httpx.get(f"{server.base_url}/readyz").status_code == 200
            scrapes = [
                http.get("/metrics", headers={"Authorization": f"Bearer {key}"}).text
                for _ in range(4)
            ]
    # Whichever worker answers the scrape, it reports every worker's requests.
    assert [requests_counted(scrape, "/readyz") for scrape in scrapes] == [sent] * 4


def test_sigterm_lets_requests_in_flight_finish_and_loses_no_screening(tmp_path: Path) -> None:
    database = tmp_path / "carelevel.db"
    env = server_environment(database, shutdown_timeout_seconds="20")
    created: list[tuple[float, str]] = []
    failures: list[str] = []

    with running_server(tmp_path, env) as server:
        key = server.printed_key()

        def intake(worker: int) -> None:
            with httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
            ) as http:
                for attempt in range(1000):
                    try:
                        response = http.post(
                            "/v1/screenings",
                            json={"answers": ANSWERS},
                            headers={"Idempotency-Key": f"shutdown-{worker}-{attempt}"},
                        )
                    except httpx.TransportError as error:  # refused once the server stopped
                        failures.append(type(error).__name__)
                        return
                    if response.status_code != 201:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                        return
                    created.append((time.monotonic(), response.json()["id"]))

        workers = [threading.Thread(target=intake, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        while len(created) < 20:
            time.sleep(0.01)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        exit_code = server.process.wait(timeout=30)
        for worker in workers:
            worker.join(timeout=30)

    # uvicorn finishes, then ends by the signal it got (so a supervisor sees it: 143 in Docker).
    assert exit_code in (0, -signal.SIGTERM), server.log()
    assert "Application shutdown complete." in server.log()
    # No request got an error status: in flight, they finished; afterwards, none was accepted.
    assert all(not failure[0].isdigit() for failure in failures), failures
    assert any(at > signalled for at, _ in created), "no request was in flight at SIGTERM"

    # Every 201 is stored whole, and nothing else is stored.
    with (
        running_server(tmp_path, server_environment(database)) as again,
        httpx.Client(base_url=again.base_url, headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        stored: set[str] = set()
        url: str | None = "/v1/screenings?limit=100"
        while url:
            page = http.get(url).json()
            stored |= {item["id"] for item in page["items"]}
            cursor = page["next_cursor"]
            url = f"/v1/screenings?limit=100&cursor={cursor}" if cursor else None
        sample = http.get(f"/v1/screenings/{created[-1][1]}").json()
    assert stored == {screening for _, screening in created}
    assert sample["determination"]["recommended_level"]["level"]

"""The log canary against the real ``carelevel serve`` (run by ``make reliability``): every
kind of request, accepted and refused, with sentinel values, and none of them in any line the
server writes at DEBUG. The in-process half is tests/api/test_log_canary.py."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.test_log_canary import (
    API_KEY,
    BAD_REQUEST_ID,
    EVALUATE,
    FHIR,
    FHIR_TYPE,
    JSON_TYPE,
    OUT_OF_RANGE_FLOAT,
    OUT_OF_RANGE_INT,
    TEXT,
    TEXT_TYPE,
    CdsSigner,
    canary_answers,
    hook_call,
    leaks,
    malformed,
    plus_item,
    questionnaire_response,
    titled,
    with_answer,
    with_item,
)
from tests.server_support import CARELEVEL, free_port, stop


def test_the_real_server_logs_no_sentinel(tmp_path: Path) -> None:
    started = time.monotonic()
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("CARELEVEL_")}
    signer = CdsSigner(base_url=f"http://127.0.0.1:{port}")
    env |= {
        "CARELEVEL_CDS_CLIENTS": json.dumps([signer.client().model_dump(mode="json")]),
        "CARELEVEL_PUBLIC_URL": signer.base_url,
        "CARELEVEL_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'canary.db'}",
        "CARELEVEL_ENVIRONMENT": "development",
        "CARELEVEL_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }
    stdout_path, stderr_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(CARELEVEL), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
    responses = 0
    created_key = ""
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            while True:
                assert process.poll() is None, stderr_path.read_text()
                assert time.monotonic() - started < 12, "the server did not start in time"
                try:
                    up = http.get("/healthz")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                responses += 1
                assert up.status_code == 200
                break
            keys = API_KEY.findall(stderr_path.read_text())
            assert len(keys) == 1, "the bootstrap admin key is printed once at the first start"
            http.headers["Authorization"] = f"Bearer {keys[0]}"
            http.headers["X-Request-ID"] = BAD_REQUEST_ID

            def call(method: str, url: str, expect: int, **kwargs: Any) -> httpx.Response:
                nonlocal responses
                response = http.request(method, url, **kwargs)
                responses += 1
                assert response.status_code == expect, (method, url, response.text[:500])
                return response

            body = {"answers": canary_answers(), "external_reference": f"{TEXT}-ref"}
            idempotent = {"Idempotency-Key": f"{TEXT}-{OUT_OF_RANGE_INT}"}
            stored = call("POST", "/v1/screenings", 201, json=body, headers=idempotent).json()
            call("POST", "/v1/screenings", 201, json=body, headers=idempotent)
            call("POST", "/v1/screenings/evaluate", 200, json=body)
            too_far = with_answer("logistics", "travel_minutes_one_way", OUT_OF_RANGE_INT)
            call("POST", "/v1/screenings", 422, json={"answers": too_far})
            heavy = with_answer("medical", "percent_healthy_body_weight", OUT_OF_RANGE_FLOAT)
            call("POST", "/v1/screenings/evaluate", 422, json={"answers": heavy, TEXT: 1})
            call("POST", "/v1/screenings", 400, content=malformed(), headers=JSON_TYPE)
            call("POST", "/v1/screenings", 415, content=json.dumps(body), headers=TEXT_TYPE)
            call("POST", "/v1/screenings", 422, json=body, headers={"Idempotency-Key": TEXT * 20})

            decision = f"/v1/screenings/{stored['id']}/decision"
            recommended = stored["determination"]["recommended_level"]
            final = (
                "outpatient"
                if recommended and recommended["level"] != "outpatient"
                else ("residential")
            )
            decided = {
                "final_level": final,
                "variance_reasons": ["other"],
                "comment": f"{TEXT} comment {OUT_OF_RANGE_FLOAT}",
                "decided_by": f"{TEXT}-clinician",
            }
            call("POST", decision, 201, json=decided)
            call("POST", decision, 422, json=decided | {"decided_by": f"{TEXT}\n"})
            call("POST", f"/v1/screenings/{TEXT}/decision", 404, json=decided)

            filters = {"external_reference": f"{TEXT}-ref", "limit": 7}
            assert len(call("GET", "/v1/screenings", 200, params=filters).json()["items"]) == 1
            call("GET", "/v1/screenings", 422, params={"level": TEXT, "limit": OUT_OF_RANGE_INT})
            call("GET", "/v1/screenings", 400, params={"cursor": TEXT})

            versions = "/v1/rule-sets/shared/iop-level-of-care/versions"
            document = call("GET", f"{versions}/1", 200).json()["content"]
            call("POST", versions, 201, json=titled(document, "served"))
            broken = copy.deepcopy(document)
            broken["stages"][0]["rules"][0]["when"] = f'"{TEXT}" &&& {OUT_OF_RANGE_INT}'
            call("POST", versions, 422, json=broken)
            call("POST", versions, 400, content=malformed(), headers=JSON_TYPE)

            client = {"name": f"{TEXT} client", "scopes": ["screenings:read"]}
            created_key = call("POST", "/v1/clients", 201, json=client).json()["api_key"]
            call("POST", "/v1/clients", 422, json=client | {"scopes": [TEXT]})
            call("GET", "/v1/questionnaire", 401, headers={"Authorization": f"Bearer {TEXT}"})
            call("GET", f"/v1/{TEXT}", 404, params={"q": TEXT})

            response = questionnaire_response()
            fhir_key = {"Idempotency-Key": f"{TEXT}-fhir-{OUT_OF_RANGE_INT}"}
            sent = json.dumps(response)
            bundle = call("POST", EVALUATE, 200, content=sent, headers=FHIR_TYPE | fhir_key)
            screening_id = bundle.json()["identifier"]["value"]
            call("GET", f"{FHIR}/ServiceRequest/{screening_id}-referral", 200)
            unknown = {"linkId": TEXT, "answer": [{"valueInteger": OUT_OF_RANGE_INT}]}
            call("POST", EVALUATE, 422, json=plus_item(response, unknown))
            heart_rate = [{"valueDecimal": OUT_OF_RANGE_FLOAT}]
            call(
                "POST",
                EVALUATE,
                422,
                json=with_item(response, "medical.heart_rate_bpm", heart_rate),
            )
            call("POST", EVALUATE, 400, content=malformed("{"), headers=FHIR_TYPE)

            screening = "/cds-services/carelevel-iop-screening"
            cards = call("POST", screening, 200, json=hook_call(), headers=signer.bearer(screening))
            overridden = {
                "card": cards.json()["cards"][0]["uuid"],
                "outcome": "overridden",
                "overrideReason": {"userComment": f"{TEXT} comment {OUT_OF_RANGE_FLOAT}"},
                "outcomeTimestamp": "2026-12-01T10:00:00Z",
            }
            feedback = {"feedback": [overridden]}
            call(
                "POST",
                f"{screening}/feedback",
                200,
                json=feedback,
                headers=signer.bearer(f"{screening}/feedback"),
            )
            missing = {key: value for key, value in hook_call().items() if key != "prefetch"}
            call("POST", screening, 412, json=missing, headers=signer.bearer(screening))
            call(
                "POST", screening, 401, json=hook_call(), headers=signer.bearer(screening, iss=TEXT)
            )
    finally:
        stop(process)
    output = stdout_path.read_text() + stderr_path.read_text()

    assert leaks(output, tuple(signer.issued)) == [], output[-4000:]
    access = [line for line in output.splitlines() if " carelevel.access method=" in line]
    assert len(access) == responses, output[-4000:]
    assert all("?" not in line for line in access)
    assert any("route=/v1/screenings/{screening_id}/decision status=201" in line for line in access)
    assert any(
        "route=/fhir/r4/QuestionnaireResponse/$evaluate status=200" in line for line in access
    )
    assert any("route=/cds-services/{service_id}/feedback status=200" in line for line in access)
    assert output.count(keys[0]) == 1
    assert output.count(keys[0].split(".")[1]) == 1
    assert created_key
    assert created_key not in output
    assert created_key.split(".")[1] not in output
    assert time.monotonic() - started < 20

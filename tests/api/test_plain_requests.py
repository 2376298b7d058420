"""The hot operations' binders (app/plain_requests.py, the screenings router's
``DIRECT_BINDERS``) answer exactly as FastAPI does.

The fast lane calls ``POST /v1/screenings/evaluate``'s and ``POST /v1/screenings``' endpoint
with their binder's arguments when a request is plainly valid, and leaves every other request
to FastAPI's own handler. Each request here is sent twice, once as it is and once with the
binders declining everything (so that FastAPI's handler answers it): the answers must be the
same, status, headers that carry meaning and body alike.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.plain_requests import plain_json_body
from app.screenings import router as screenings_router
from tests.support.examples import example

ANSWERS = example("adult-iop-suitable")
BODY = json.dumps({"answers": ANSWERS}).encode()
JSON = {"content-type": "application/json"}


def _long_number() -> bytes:
    answers = example("adult-iop-suitable")
    answers["instruments"]["phq9"]["items"][0] = 10**20
    return json.dumps({"answers": answers}).encode()


def _float_minutes() -> bytes:
    answers = example("adult-iop-suitable")
    answers["logistics"]["travel_minutes_one_way"] = 25.0
    return json.dumps({"answers": answers}).encode()


CASES: list[tuple[str, bytes, dict[str, str]]] = [
    ("plain", BODY, JSON),
    ("charset", BODY, {"content-type": "application/json; charset=utf-8"}),
    ("upper case type", BODY, {"content-type": "Application/JSON"}),
    ("vendor json type", BODY, {"content-type": "application/vnd.carelevel+json"}),
    ("text type", BODY, {"content-type": "text/plain"}),
    ("no type", BODY, {}),
    ("whitespace", b"  " + BODY + b"\n", JSON),
    ("byte order mark", b"\xef\xbb\xbf" + BODY, JSON),
    ("invalid JSON", BODY[:-1], JSON),
    ("NaN", BODY.replace(b"25", b"NaN", 1), JSON),
    ("a 20-digit number", _long_number(), JSON),
    ("an integral float", _float_minutes(), JSON),
    ("an extra field", json.dumps({"answers": ANSWERS, "x": 1}).encode(), JSON),
    ("a list", b"[]", JSON),
    ("empty", b"", JSON),
    ("a lone surrogate", BODY.replace(b'"adult"', b'"adult\\ud800"', 1), JSON),
    ("a surrogate pair", BODY.replace(b'"adult"', b'"adult\\ud83d\\ude00"', 1), JSON),
    ("an escaped value", BODY.replace(b'"adult"', b'"\\u0061dult"', 1), JSON),
    ("a repeated key", BODY.replace(b"{", b'{"answers": 1, ', 1), JSON),
    ("an exponent", BODY.replace(b": 25", b": 2.5e1", 1), JSON),
    ("an overflowing float", BODY.replace(b": 25", b": 1e400", 1), JSON),
    ("Infinity", BODY.replace(b": 25", b": Infinity", 1), JSON),
    ("a negative zero", BODY.replace(b": 25", b": -0", 1), JSON),
    ("UTF-16", BODY.decode().encode("utf-16"), JSON),
    ("invalid UTF-8", BODY.replace(b'"adult"', b'"adult\xff"', 1), JSON),
    ("a control character", BODY.replace(b'"adult"', b'"adu\x01lt"', 1), JSON),
    ("trailing data", BODY + b" {}", JSON),
    ("a comment", b"/* c */" + BODY, JSON),
]


def comparable(response: httpx.Response) -> dict[str, Any]:
    """What must not differ between the two paths (ids and times of stored screenings do)."""
    body: Any = response.json() if response.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("id", "created_at", "instance")}
    headers = {
        name: response.headers.get(name)
        for name in ("content-type", "idempotent-replayed", "retry-after", "www-authenticate")
    }
    return {"status": response.status_code, "headers": headers, "body": body}


async def both_ways(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    content: bytes,
    headers: dict[str, str],
    second_headers: dict[str, str] | None = None,
) -> tuple[httpx.Response, httpx.Response]:
    direct = await client.post(path, content=content, headers=headers)
    with monkeypatch.context() as patch:

        async def never_plain(*_args: object) -> None:
            return None

        patch.setattr(screenings_router, "plain_json_body", never_plain)
        standard = await client.post(path, content=content, headers=second_headers or headers)
    return direct, standard


@pytest.mark.parametrize(("case", "content", "headers"), CASES, ids=[c[0] for c in CASES])
async def test_evaluate_answers_as_fastapi_does(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    content: bytes,
    headers: dict[str, str],
) -> None:
    direct, standard = await both_ways(
        client, monkeypatch, "/v1/screenings/evaluate", content, headers
    )
    assert comparable(direct) == comparable(standard), case
    if direct.status_code == 200:
        assert direct.content == standard.content  # byte for byte


KEYS: list[tuple[str, list[tuple[str, str]]]] = [
    ("no key", []),
    ("a key", [("Idempotency-Key", "intake-1")]),
    ("a key of 200 characters", [("Idempotency-Key", "k" * 200)]),
    ("a key of 201 characters", [("Idempotency-Key", "k" * 201)]),
    ("a key with a space", [("Idempotency-Key", "intake 1")]),
    ("an empty key", [("Idempotency-Key", "")]),
    ("a key twice", [("Idempotency-Key", "intake-1"), ("Idempotency-Key", "intake-2")]),
]


@pytest.mark.parametrize(("case", "keys"), KEYS, ids=[k[0] for k in KEYS])
async def test_create_answers_as_fastapi_does(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    keys: list[tuple[str, str]],
) -> None:
    async def send(headers: list[tuple[str, str]], plain: bool) -> httpx.Response:
        with monkeypatch.context() as patch:
            if not plain:

                async def never_plain(*_args: object) -> None:
                    return None

                patch.setattr(screenings_router, "plain_json_body", never_plain)
            return await client.post(
                "/v1/screenings",
                content=BODY,
                headers=[("content-type", JSON["content-type"])] + headers,
            )

    # Distinct keys for the two paths (a shared one would replay), same shape.
    direct = await send(keys, plain=True)
    other_keys = [(name, value[:-1] + "Z" if value else value) for name, value in keys]
    standard = await send(other_keys, plain=False)
    assert comparable(direct) == comparable(standard), case


async def test_plain_requests_are_bound_directly(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken: list[bool] = []
    plain = plain_json_body

    async def spy(*args: Any) -> Any:
        parsed = await plain(*args)
        taken.append(parsed is not None)
        return parsed

    monkeypatch.setattr(screenings_router, "plain_json_body", spy)
    for content, headers in ((BODY, JSON), (_long_number(), JSON), (BODY, {})):
        await client.post("/v1/screenings/evaluate", content=content, headers=headers)
    assert taken == [True, False, False]


async def test_a_retry_through_either_path_replays(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = {"Idempotency-Key": "intake-both-ways", **JSON}
    first, retry = await both_ways(client, monkeypatch, "/v1/screenings", BODY, key)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json() == first.json()

"""Edge inputs that once reached the database unchecked: each is a precise 4xx, never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import orjson
import pytest

from tests.support.examples import EXAMPLES

TOO_BIG = 2**31


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"/v1/rule-sets/shared/iop-level-of-care/versions/{TOO_BIG}", None),
        ("POST", f"/v1/rule-sets/shared/iop-level-of-care/versions?copy_from={TOO_BIG}", None),
        ("GET", f"/v1/rule-sets/shared/iop-level-of-care/diff?from=1&to={TOO_BIG}", None),
        ("GET", f"/v1/screenings?rule_set_version={TOO_BIG}", None),
        ("POST", "/v1/screenings/evaluate", {"rule_set": {"version": TOO_BIG}}),
        ("GET", "/v1/screenings?created_from=0001-01-01T00:00:00%2B01:00", None),
        ("GET", "/v1/screenings?created_to=9999-12-31T23:00:00-05:00", None),
        ("GET", "/v1/screenings/a%00b", None),
    ],
)
async def test_out_of_range_and_nul_inputs_are_4xx(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, object] | None
) -> None:
    if body is not None:
        body = {"answers": json.loads((EXAMPLES / "adult-iop-suitable.json").read_text()), **body}
    response = await client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_out_of_range_cursor_is_400(client: httpx.AsyncClient) -> None:
    raw = orjson.dumps(["0001-01-01T00:00:00+05:00", "x"])
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    response = await client.get(f"/v1/screenings?cursor={cursor}")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "text",
    [
        'key: iop-level-of-care\ntitle: "bad \\0 title"\n',
        "key: iop-level-of-care\nfixtures: {a: {zz: 123456789012345678901234567890}}\n",
    ],
)
async def test_documents_with_nul_or_huge_integers_are_422(
    client: httpx.AsyncClient, text: str
) -> None:
    response = await client.post(
        "/v1/rule-sets/shared/iop-level-of-care/versions",
        content=text.encode(),
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 422, response.text

"""JWT access tokens from configured identity providers, through the HTTP API.

Two providers with inline JWK sets: ``idp-a`` puts every token in the fixed tenant
``clinic-a``; ``idp-b`` reads the tenant from the ``org`` claim, allowing ``clinic-b`` and
``clinic-c`` only. A verified token acts like an API client of its tenant (client id
``jwt:<provider>:<client claim>``, the ``sub`` recorded as the audit subject); a token that
fails any check is a 401 with an RFC 6750 ``invalid_token`` challenge and changes nothing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.kernel.issuers import IdentityProvider
from app.kernel.settings import Settings
from app.security.principal import Scope
from tests.api.screenings_support import all_screenings
from tests.support.apps import http_client, new_key, reset, running, started_app
from tests.support.examples import Json, example
from tests.support.problems import assert_problem
from tests.support.tokens import (
    EC_KEY,
    OTHER_RSA_KEY,
    RSA_KEY,
    b64,
    b64json,
    compact,
    public_jwk,
)
from tests.support.tokens import hs256_with_public_key as confusion_attack

ISSUER_A = "https://idp-a.example.test/"
ISSUER_B = "https://idp-b.example.test/"
AUDIENCE = "api://carelevel"
SCREENING_SCOPES = "screenings:write screenings:read"


JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1", use="sig"), public_jwk(EC_KEY, "ec-1", use="sig")]}

PROVIDER_A = IdentityProvider(
    name="idp-a", issuer=ISSUER_A, audience=AUDIENCE, jwks=JWKS, tenant="clinic-a"
)
PROVIDER_B = IdentityProvider(
    name="idp-b",
    issuer=ISSUER_B,
    audience=AUDIENCE,
    jwks=JWKS,
    tenant_claim="org",
    tenants=("clinic-b", "clinic-c"),
)


def claims(**overrides: Any) -> Json:
    now = int(time.time())
    payload: Json = {
        "iss": ISSUER_A,
        "aud": AUDIENCE,
        "sub": "nurse-7",
        "client_id": "intake-portal",
        "iat": now,
        "exp": now + 600,
        "scope": SCREENING_SCOPES,
    }
    payload.update(overrides)
    return payload


def token(
    *,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = RSA_KEY,
    alg: str = "RS256",
    kid: str = "rsa-1",
    **overrides: Any,
) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


def unsigned(signature: bytes) -> str:
    return compact({"alg": "none", "typ": "JWT"}, claims(), signature)


def hs256_with_public_key() -> str:
    """The classic confusion attack: HMAC keyed with the RSA public key's PEM."""
    return confusion_attack(RSA_KEY, {"typ": "JWT", "kid": "rsa-1"}, claims())


def tampered() -> str:
    """A valid token whose payload was swapped for one granting more (signature kept)."""
    header, _, signature = token(scope="screenings:read").split(".")
    return f"{header}.{b64json(claims(scope=SCREENING_SCOPES + ' admin'))}.{signature}"


@contextlib.asynccontextmanager
async def started(
    schema: AsyncEngine, settings: Settings, providers: list[IdentityProvider]
) -> AsyncIterator[FastAPI]:
    trusting = settings.model_copy(update={"identity_providers": providers})
    async with started_app(schema, trusting) as application:
        yield application


@pytest.fixture(scope="module")
async def trusting_app(schema: AsyncEngine, settings: Settings) -> AsyncIterator[FastAPI]:
    """The application trusting both identity providers, started once for this module."""
    trusting = settings.model_copy(update={"identity_providers": [PROVIDER_A, PROVIDER_B]})
    async with running(trusting) as application:
        yield application


@pytest.fixture
async def app(trusting_app: FastAPI, schema: AsyncEngine) -> FastAPI:
    """The trusting application, reset for this test (replaces conftest's ``app``)."""
    await reset(trusting_app, schema)
    return trusting_app


async def screen(app: FastAPI, credential: str) -> httpx.Response:
    async with http_client(app, credential) as http:
        return await http.post("/v1/screenings", json={"answers": example("adult-iop-suitable")})


async def stored_in(app: FastAPI, tenant: str) -> list[Json]:
    """The screenings GET /v1/screenings lists to a fresh API client of ``tenant``."""
    async with http_client(app, await new_key(app, tenant=tenant)) as http:
        return await all_screenings(http)


async def screening_rows(schema: AsyncEngine) -> int:
    async with schema.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM screenings"))).scalar_one())


def assert_invalid_token(response: httpx.Response) -> None:
    assert_problem(response, 401, "unauthorized")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="carelevel"'), challenge
    assert 'error="invalid_token"' in challenge, challenge


# accepted tokens


async def test_token_stores_and_reads_screenings_in_its_providers_tenant(app: FastAPI) -> None:
    access_token = token(sub="nurse-7", client_id="intake-portal")
    async with http_client(app, access_token) as http:
        created = await http.post("/v1/screenings", json={"answers": example("adult-iop-suitable")})
        assert created.status_code == 201, created.text
        screening_id = created.json()["id"]
        read = await http.get(f"/v1/screenings/{screening_id}")
        assert read.status_code == 200, read.text
        assert read.json()["id"] == screening_id
        assert [item["id"] for item in await all_screenings(http)] == [screening_id]

    async with http_client(app, await new_key(app, tenant="other")) as other:
        assert_problem(await other.get(f"/v1/screenings/{screening_id}"), 404, "not-found")
        assert await all_screenings(other) == []
    assert [item["id"] for item in await stored_in(app, "clinic-a")] == [screening_id]

    auditor = await new_key(app, tenant="clinic-a", scopes={Scope.AUDIT_READ})
    async with http_client(app, auditor) as http:
        trail = await http.get("/v1/audit-events", params={"action": "screening.create"})
    assert trail.status_code == 200, trail.text
    [event] = trail.json()["items"]
    assert event["tenant"] == "clinic-a"
    assert event["client_id"] == "jwt:idp-a:intake-portal"
    assert event["subject"] == "nurse-7"
    assert event["resource_id"] == screening_id
    assert event["outcome"] == 201


async def test_ec_token_lands_in_the_tenant_its_org_claim_names(app: FastAPI) -> None:
    access_token = token(key=EC_KEY, alg="ES256", kid="ec-1", iss=ISSUER_B, org="clinic-c")
    created = await screen(app, access_token)
    assert created.status_code == 201, created.text

    assert [item["id"] for item in await stored_in(app, "clinic-c")] == [created.json()["id"]]
    assert await stored_in(app, "clinic-b") == []
    assert await stored_in(app, "clinic-a") == []


async def test_token_lacking_the_scope_is_403_insufficient_scope(
    app: FastAPI, schema: AsyncEngine
) -> None:
    response = await screen(app, token(scope="screenings:read"))

    assert_problem(response, 403, "forbidden")
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge, challenge
    assert 'scope="screenings:write"' in challenge, challenge
    assert await stored_in(app, "clinic-a") == []
    assert await screening_rows(schema) == 0


# rejected tokens

REJECTED: dict[str, tuple[Callable[[], str], str]] = {
    # case: (the token, the tenant it would have written to)
    "expired": (
        lambda: token(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "clinic-a",
    ),
    "wrong audience": (lambda: token(aud="api://another-service"), "clinic-a"),
    "unknown issuer": (lambda: token(iss="https://idp-evil.example.test/"), "clinic-a"),
    "unknown kid": (lambda: token(key=OTHER_RSA_KEY, kid="rsa-rotated-away"), "clinic-a"),
    "known kid, other key": (lambda: token(key=OTHER_RSA_KEY, kid="rsa-1"), "clinic-a"),
    "alg none, no signature": (lambda: unsigned(b""), "clinic-a"),
    "alg none, with signature": (lambda: unsigned(b"not a signature"), "clinic-a"),
    "HS256 keyed with the RSA public key": (hs256_with_public_key, "clinic-a"),
    "tampered payload": (tampered, "clinic-a"),
    "tenant claim outside the allow-list": (
        lambda: token(iss=ISSUER_B, org="clinic-z"),
        "clinic-z",
    ),
    "tenant of another provider": (lambda: token(iss=ISSUER_B, org="clinic-a"), "clinic-a"),
    "no tenant claim": (lambda: token(iss=ISSUER_B), "clinic-b"),
    "garbage shaped like a JWT": (lambda: "abc.def.ghi", "clinic-a"),
    "base64 garbage shaped like a JWT": (
        lambda: f"{b64(b'{not json')}.{b64(b'[1, 2]')}.{b64(b'x' * 64)}",
        "clinic-a",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
async def test_unacceptable_token_is_401_invalid_token_and_stores_nothing(
    app: FastAPI, schema: AsyncEngine, case: str
) -> None:
    make, tenant = REJECTED[case]

    response = await screen(app, make())

    assert_invalid_token(response)
    assert await stored_in(app, tenant) == []
    assert await screening_rows(schema) == 0


async def test_every_rejected_token_also_fails_reads(app: FastAPI) -> None:
    """Rejection does not depend on the operation: a read is refused the same way."""
    for case, (make, _) in REJECTED.items():
        async with http_client(app, make()) as http:
            response = await http.get("/v1/screenings")
        assert response.status_code == 401, case
        assert_invalid_token(response)


async def test_jwt_is_401_when_no_identity_provider_is_configured(
    schema: AsyncEngine, settings: Settings
) -> None:
    assert settings.identity_providers == []
    async with started(schema, settings, []) as application:
        response = await screen(application, token())
        assert_invalid_token(response)
        assert await stored_in(application, "clinic-a") == []


async def test_unreachable_jwks_url_is_503_with_retry_after(
    schema: AsyncEngine, settings: Settings
) -> None:
    provider = IdentityProvider(
        name="idp-a",
        issuer=ISSUER_A,
        audience=AUDIENCE,
        jwks_url="http://127.0.0.1:9/jwks",  # nothing listens on the discard port
        tenant="clinic-a",
    )
    async with started(schema, settings, [provider]) as application:
        for _ in range(2):  # a second attempt is not a 500 either
            response = await screen(application, token())
            assert_problem(response, 503, "temporarily-unavailable")
            assert int(response.headers["retry-after"]) >= 1
        assert await stored_in(application, "clinic-a") == []

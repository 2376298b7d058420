"""JWT bearer-token verification against configured identity providers."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from app.kernel.issuers import SIGNING_ALGORITHMS, IdentityProvider
from app.security.jwt import (
    JWKS_FAILURE_BACKOFF_SECONDS,
    IdentityProviderUnavailable,
    JwtVerifier,
    TokenRejected,
    VerifiedToken,
)
from tests.support.tokens import (
    EC_384_KEY,
    EC_KEY,
    ED_KEY,
    OTHER_RSA_KEY,
    RSA_KEY,
    SigningKey,
    b64,
    b64json,
    compact,
    hs256_with_public_key,
    public_jwk,
)

NOW = 1_800_000_000
ISS = "https://login.example.test/acme/v2.0"
OTHER_ISS = "https://other-idp.example.test/"
AUD = "api://carelevel"
JWKS_URL = "https://login.example.test/acme/keys"
KNOWN_SCOPES = frozenset({"screenings:read", "screenings:write", "rulesets:read", "admin"})
SAFE_MESSAGE = re.compile(r"[A-Za-z0-9 .-]+")


RSA_JWK = public_jwk(RSA_KEY, "rsa-1", use="sig")
OTHER_RSA_JWK = public_jwk(OTHER_RSA_KEY, "rsa-2")
EC_JWK = public_jwk(EC_KEY, "ec-1")
EC_384_JWK = public_jwk(EC_384_KEY, "ec-384")
ED_JWK = public_jwk(ED_KEY, "ed-1")


def claims(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-42",
        "client_id": "portal",
        "exp": NOW + 600,
        "iat": NOW,
        "jti": "tok-1",
        "scope": "screenings:read",
    }
    payload.update(overrides)
    return payload


def make_token(
    *,
    key: SigningKey = RSA_KEY,
    alg: str = "RS256",
    kid: str | None = "rsa-1",
    headers: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **overrides: Any,
) -> str:
    payload = claims(**overrides)
    for name in drop:
        del payload[name]
    all_headers = dict(headers or {})
    if kid is not None:
        all_headers["kid"] = kid
    return jwt.encode(payload, key, algorithm=alg, headers=all_headers)


def idp(**overrides: Any) -> IdentityProvider:
    fields: dict[str, Any] = {
        "name": "corp",
        "issuer": ISS,
        "audience": AUD,
        "jwks": {"keys": [RSA_JWK, EC_JWK, ED_JWK]},
        "algorithms": ("RS256", "PS256", "ES256", "EdDSA"),
        "tenant": "acme",
    }
    fields.update(overrides)
    return IdentityProvider.model_validate(fields)


def url_idp(**overrides: Any) -> IdentityProvider:
    return idp(**{"jwks": None, "jwks_url": JWKS_URL, **overrides})


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def make_verifier(
    *providers: IdentityProvider,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    cache_size: int = 10_000,
) -> JwtVerifier:
    return JwtVerifier(
        list(providers) or [idp()],
        KNOWN_SCOPES,
        http=http,
        clock=clock or Clock(),
        cache_size=cache_size,
    )


async def rejection(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        await verifier.verify(token)
    message = str(info.value)
    # It goes into a WWW-Authenticate header: short, plain, never token contents.
    assert SAFE_MESSAGE.fullmatch(message), message
    assert len(message) <= 80
    return message


class JwksServer:
    """An identity provider's JWKS endpoint behind httpx.MockTransport."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys
        self.requests: list[httpx.Request] = []
        self.status = 200
        self.body: bytes | None = None
        self.headers: dict[str, str] = {}
        self.error: Exception | None = None

    @property
    def fetches(self) -> int:
        return len(self.requests)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        await asyncio.sleep(0)  # let concurrent verifications pile up behind the fetch
        if self.error is not None:
            raise self.error
        if self.body is not None:
            return httpx.Response(self.status, content=self.body, headers=self.headers)
        return httpx.Response(self.status, json={"keys": self.keys}, headers=self.headers)


@pytest.fixture
def server() -> JwksServer:
    return JwksServer([RSA_JWK])


@pytest.fixture
async def http(server: JwksServer) -> AsyncIterator[httpx.AsyncClient]:
    # follow_redirects=True here proves the verifier turns redirects off per request
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(server.handle), follow_redirects=True
    ) as client:
        yield client


# valid tokens


async def test_valid_rs256_token() -> None:
    result = await make_verifier().verify(make_token())
    assert result == VerifiedToken(
        provider="corp",
        subject="user-42",
        client_id="jwt:corp:portal",
        tenant="acme",
        scopes=frozenset({"screenings:read"}),
        expires_at=float(NOW + 600),
        token_id="tok-1",
    )


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [
        (EC_KEY, "ES256", "ec-1"),
        (ED_KEY, "EdDSA", "ed-1"),
        (RSA_KEY, "PS256", "rsa-1"),
    ],
)
async def test_valid_tokens_of_other_algorithms(key: SigningKey, alg: str, kid: str) -> None:
    result = await make_verifier().verify(make_token(key=key, alg=alg, kid=kid))
    assert result.subject == "user-42"
    assert result.client_id == "jwt:corp:portal"


async def test_audience_list_containing_ours_is_accepted() -> None:
    result = await make_verifier().verify(make_token(aud=["https://other.test", AUD]))
    assert result.subject == "user-42"


@pytest.mark.parametrize(
    ("drop", "expected"),
    [((), "jwt:corp:portal"), (("client_id",), "jwt:corp:spa"), (("client_id", "azp"), None)],
)
async def test_client_id_from_the_first_present_claim(
    drop: tuple[str, ...], expected: str | None
) -> None:
    result = await make_verifier().verify(make_token(azp="spa", drop=drop))
    assert result.client_id == (expected or "jwt:corp:user-42")


async def test_token_without_kid_uses_the_only_key_for_its_algorithm() -> None:
    verifier = make_verifier(idp(jwks={"keys": [public_jwk(RSA_KEY, None), EC_JWK]}))
    result = await verifier.verify(make_token(kid=None))
    assert result.subject == "user-42"


async def test_jwk_declaring_matching_alg_use_and_key_ops_is_accepted() -> None:
    jwk = {**RSA_JWK, "alg": "RS256", "use": "sig", "key_ops": ["verify"]}
    result = await make_verifier(idp(jwks={"keys": [jwk]})).verify(make_token())
    assert result.subject == "user-42"


async def test_token_without_jti_has_no_token_id() -> None:
    result = await make_verifier().verify(make_token(drop=("jti",)))
    assert result.token_id is None


# malformed tokens and headers


JWE = ".".join(
    [b64json({"alg": "RSA-OAEP", "enc": "A256GCM"}), b64(b"k" * 32), b64(b"iv"), b64(b"c"), "dGFn"]
)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "the token is not a signed JWT"),
        ("garbage", "the token is not a signed JWT"),
        ("a.b", "the token is not a signed JWT"),
        (JWE, "the token is not a signed JWT"),
        ("ey!.eyJ.c2ln", "the token is not a signed JWT"),
        ("eyJ.eyJ.c2ln\n", "the token is not a signed JWT"),
        ("eyJ.eyJ.\ud800", "the token is not a signed JWT"),
        (f"{b64(b'not json')}.{b64json(claims())}.c2ln", "the token header is malformed"),
        (f"{b64json(['RS256'])}.{b64json(claims())}.c2ln", "the token header is malformed"),
        (f"{b64json({'alg': 'RS256'})}.{b64(b'{')}.c2ln", "the token payload is malformed"),
        (f"{b64json({'alg': 'RS256'})}.{b64json([1])}.c2ln", "the token payload is malformed"),
        ("a" * 20_000, "the token is too large"),
    ],
)
async def test_malformed_tokens_are_rejected(token: str, message: str) -> None:
    assert await rejection(make_verifier(), token) == message


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"typ": "JWT"}, "the token header has no valid algorithm"),
        ({"alg": 256}, "the token header has no valid algorithm"),
        ({"alg": "none"}, "unsigned tokens are not accepted"),
        ({"alg": "None"}, "unsigned tokens are not accepted"),
        ({"alg": "HS512"}, "symmetric algorithms are not accepted"),
        ({"alg": "ES256K"}, "the token algorithm is not supported"),
        ({"alg": "RSA-OAEP"}, "the token algorithm is not supported"),
        ({"alg": "RS256", "kid": 7}, "the token key id is invalid"),
        ({"alg": "RS256", "kid": ""}, "the token key id is invalid"),
        ({"alg": "RS256", "kid": "k" * 256}, "the token key id is invalid"),
    ],
)
async def test_header_rules(header: dict[str, Any], message: str) -> None:
    token = compact(header, claims(), b"signature")
    assert await rejection(make_verifier(), token) == message


async def test_unsigned_token_is_rejected() -> None:
    token = compact({"alg": "none", "typ": "JWT"}, claims())
    assert token.endswith(".")
    assert await rejection(make_verifier(), token) == "unsigned tokens are not accepted"


async def test_hs256_signed_with_the_rsa_public_key_is_rejected() -> None:
    # The key-confusion attack: the public key, as HMAC secret, forges a "valid" MAC.
    token = hs256_with_public_key(RSA_KEY, {"typ": "JWT", "kid": "rsa-1"}, claims())
    assert await rejection(make_verifier(), token) == "symmetric algorithms are not accepted"


async def test_algorithm_outside_the_providers_allow_list_is_rejected() -> None:
    verifier = make_verifier(idp(algorithms=("RS256",)))
    token = make_token(key=EC_KEY, alg="ES256", kid="ec-1")
    assert await rejection(verifier, token) == "the token algorithm is not allowed for this issuer"


async def test_crit_header_is_rejected() -> None:
    token = make_token(headers={"crit": ["exp"], "exp": NOW + 600})
    assert await rejection(make_verifier(), token) == "critical header parameters are not supported"


@pytest.mark.parametrize("kid", ["rsa-1", None])
async def test_embedded_jwk_header_with_attacker_key_is_rejected(kid: str | None) -> None:
    attacker = public_jwk(OTHER_RSA_KEY, kid)
    token = make_token(key=OTHER_RSA_KEY, kid=kid, headers={"jwk": attacker})
    verifier = make_verifier(idp(jwks={"keys": [RSA_JWK]}))
    assert await rejection(verifier, token) == "the token signature is invalid"


async def test_embedded_jwk_header_naming_its_own_kid_is_rejected() -> None:
    attacker = public_jwk(OTHER_RSA_KEY, "evil")
    token = make_token(key=OTHER_RSA_KEY, kid="evil", headers={"jwk": attacker})
    assert await rejection(make_verifier(), token) == "the token signing key is unknown"


async def test_key_urls_in_the_token_are_never_fetched(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    attacker = "https://attacker.test/keys"
    headers = {"jku": attacker, "x5u": attacker, "x5c": ["MIIB"], "jwk": OTHER_RSA_JWK}
    token = make_token(key=OTHER_RSA_KEY, headers=headers)
    verifier = make_verifier(url_idp(), http=http)
    assert await rejection(verifier, token) == "the token signature is invalid"
    assert [str(request.url) for request in server.requests] == [JWKS_URL]


async def test_tampered_payload_is_rejected() -> None:
    header, _, signature = make_token().split(".")
    token = f"{header}.{b64json(claims(sub='admin'))}.{signature}"
    assert await rejection(make_verifier(), token) == "the token signature is invalid"


async def test_empty_signature_is_rejected() -> None:
    header, payload, _ = make_token().split(".")
    assert await rejection(make_verifier(), f"{header}.{payload}.") == (
        "the token signature is invalid"
    )


# issuers and keys


async def test_unknown_issuer_is_rejected() -> None:
    token = make_token(iss=ISS + "/")
    assert await rejection(make_verifier(), token) == "unknown issuer"


@pytest.mark.parametrize("issuer", [None, 42])
async def test_missing_or_non_string_issuer_is_rejected(issuer: object) -> None:
    payload = claims(iss=issuer)
    if issuer is None:
        del payload["iss"]
    token = compact({"alg": "RS256", "kid": "rsa-1"}, payload, b"signature")
    assert await rejection(make_verifier(), token) == "the token has no issuer"


async def test_no_providers_means_disabled_and_every_issuer_unknown() -> None:
    verifier = JwtVerifier([], KNOWN_SCOPES)
    assert not verifier.enabled
    assert make_verifier().enabled
    assert await rejection(verifier, make_token()) == "unknown issuer"


async def test_a_token_is_verified_with_its_issuers_keys_only() -> None:
    # Signed by provider A's key, claiming provider B as issuer.
    other = idp(name="other", issuer=OTHER_ISS, jwks={"keys": [OTHER_RSA_JWK]})
    verifier = make_verifier(idp(), other)
    assert await rejection(verifier, make_token(iss=OTHER_ISS)) == (
        "the token signing key is unknown"
    )
    forged = make_token(iss=OTHER_ISS, kid="rsa-2")
    assert await rejection(verifier, forged) == "the token signature is invalid"
    result = await verifier.verify(make_token(iss=OTHER_ISS, key=OTHER_RSA_KEY, kid="rsa-2"))
    assert result.provider == "other"
    assert result.client_id == "jwt:other:portal"


async def test_unknown_kid_is_rejected() -> None:
    assert await rejection(make_verifier(), make_token(kid="rsa-9")) == (
        "the token signing key is unknown"
    )


async def test_token_without_kid_is_rejected_when_several_keys_fit() -> None:
    verifier = make_verifier(idp(jwks={"keys": [RSA_JWK, OTHER_RSA_JWK]}))
    assert await rejection(verifier, make_token(kid=None)) == "the token has no key id"


async def test_token_without_kid_is_rejected_when_no_key_fits() -> None:
    verifier = make_verifier(idp(jwks={"keys": [EC_JWK]}))
    assert await rejection(verifier, make_token(kid=None)) == (
        "no signing key matches the token algorithm"
    )


@pytest.mark.parametrize(
    ("key", "alg", "kid"),
    [
        (EC_KEY, "ES256", "rsa-1"),  # EC token, RSA key
        (RSA_KEY, "RS256", "ec-1"),  # RSA token, EC key
        (EC_KEY, "ES256", "ec-384"),  # ES256 needs P-256
        (ED_KEY, "EdDSA", "ec-1"),  # EdDSA needs OKP
    ],
)
async def test_key_type_must_fit_the_algorithm(key: SigningKey, alg: str, kid: str) -> None:
    verifier = make_verifier(idp(jwks={"keys": [RSA_JWK, EC_JWK, EC_384_JWK, ED_JWK]}))
    token = make_token(key=key, alg=alg, kid=kid)
    assert await rejection(verifier, token) == "the signing key type does not match the algorithm"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"alg": "RS384"}, "the signing key is bound to another algorithm"),
        ({"use": "enc"}, "the signing key is not a signature key"),
        ({"key_ops": ["encrypt"]}, "the signing key does not permit verification"),
        ({"key_ops": "verify"}, "the signing key does not permit verification"),
    ],
)
async def test_jwk_metadata_must_allow_the_signature(extra: dict[str, Any], message: str) -> None:
    verifier = make_verifier(idp(jwks={"keys": [{**RSA_JWK, **extra}]}))
    assert await rejection(verifier, make_token()) == message


async def test_unusable_jwk_is_rejected() -> None:
    broken = {"kty": "RSA", "kid": "rsa-1", "n": "AQAB"}  # no exponent
    verifier = make_verifier(idp(jwks={"keys": [broken]}))
    assert await rejection(verifier, make_token()) == "the signing key is unusable"


async def test_rsa_key_under_2048_bits_is_rejected() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    verifier = make_verifier(idp(jwks={"keys": [public_jwk(weak, "weak")]}))
    with pytest.warns(jwt.InsecureKeyLengthWarning):
        token = make_token(key=weak, kid="weak")
    assert await rejection(verifier, token) == "the signing key is too weak"


# claims


async def test_expiry_honours_the_clock_and_leeway() -> None:
    clock = Clock()
    clock.now = NOW + 600 + 59
    assert (await make_verifier(clock=clock).verify(make_token())).subject == "user-42"
    clock.now = NOW + 600 + 60
    assert await rejection(make_verifier(clock=clock), make_token()) == "the token has expired"


async def test_expiry_without_leeway() -> None:
    clock = Clock()
    clock.now = NOW + 600
    verifier = make_verifier(idp(leeway_seconds=0), clock=clock)
    assert await rejection(verifier, make_token()) == "the token has expired"


async def test_not_yet_valid_token_is_rejected_and_the_rejection_is_not_cached() -> None:
    clock = Clock()
    verifier = make_verifier(clock=clock)
    token = make_token(nbf=NOW + 61)
    assert await rejection(verifier, token) == "the token is not yet valid"
    clock.now += 1
    assert (await verifier.verify(token)).subject == "user-42"


async def test_token_issued_in_the_future_is_rejected() -> None:
    token = make_token(iat=NOW + 61)
    assert await rejection(make_verifier(), token) == "the token was issued in the future"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"exp": "soon"}, "the token expiry is invalid"),
        ({"exp": True}, "the token expiry is invalid"),
        ({"exp": 10**30}, "the token expiry is invalid"),
        ({"nbf": "now"}, "the token not-before time is invalid"),
        ({"iat": [NOW]}, "the token issue time is invalid"),
        ({"iat": -1}, "the token issue time is invalid"),
    ],
)
async def test_time_claims_must_be_numbers(overrides: dict[str, Any], message: str) -> None:
    assert await rejection(make_verifier(), make_token(**overrides)) == message


@pytest.mark.parametrize("claim", ["exp", "sub", "aud"])
async def test_required_claims(claim: str) -> None:
    token = make_token(drop=(claim,))
    assert await rejection(make_verifier(), token) == f"the token has no {claim} claim"


@pytest.mark.parametrize("aud", ["api://someone-else", ["a", "b"]])
async def test_wrong_audience_is_rejected(aud: object) -> None:
    token = make_token(aud=aud)
    assert await rejection(make_verifier(), token) == "the token audience is not accepted"


@pytest.mark.parametrize("sub", ["", 42, "x" * 256, "user\n42", "\ud800x"])
async def test_subject_must_be_a_short_plain_string(sub: object) -> None:
    token = make_token(sub=sub)
    assert await rejection(make_verifier(), token) == "the token subject is invalid"


@pytest.mark.parametrize("client", ["", 7, "c" * 256, "portal\x00", "portal\x7f", "\udfff"])
async def test_client_id_must_be_a_short_plain_string(client: object) -> None:
    token = make_token(client_id=client)
    assert await rejection(make_verifier(), token) == "the token client id is invalid"


async def test_a_client_id_too_long_to_record_is_rejected() -> None:
    """``jwt:<provider>:<client>`` must fit the 300 characters the records hold."""
    verifier = make_verifier(idp(name="p" * 63))
    assert await rejection(verifier, make_token(client_id="c" * 233)) == (
        "the token client id is invalid"
    )
    assert (await verifier.verify(make_token(client_id="c" * 232))).client_id.endswith("c")


async def test_token_without_any_client_id_claim_is_rejected() -> None:
    verifier = make_verifier(idp(client_id_claims=("client_id", "azp")))
    assert await rejection(verifier, make_token(drop=("client_id",))) == (
        "the token has no client id"
    )


@pytest.mark.parametrize("jti", [17, "j" * 256])
async def test_token_id_must_be_a_short_string(jti: object) -> None:
    assert await rejection(make_verifier(), make_token(jti=jti)) == "the token id is invalid"


async def test_max_lifetime() -> None:
    verifier = make_verifier(idp(max_lifetime_seconds=600))
    assert (await verifier.verify(make_token(exp=NOW + 600))).subject == "user-42"
    too_long = make_token(exp=NOW + 601, jti="tok-2")
    assert await rejection(verifier, too_long) == "the token lifetime is too long"
    no_iat = make_token(drop=("iat",), jti="tok-3")
    assert await rejection(verifier, no_iat) == "the token has no iat claim"


async def test_iat_is_optional_without_max_lifetime() -> None:
    assert (await make_verifier().verify(make_token(drop=("iat",)))).subject == "user-42"


# tenants


async def test_fixed_tenant_ignores_tenant_claims() -> None:
    result = await make_verifier(idp(tenant="acme")).verify(make_token(tid="globex"))
    assert result.tenant == "acme"


def tenant_claim_idp() -> IdentityProvider:
    return idp(tenant=None, tenant_claim="tid", tenants=("acme", "globex"))


async def test_tenant_from_the_tenant_claim() -> None:
    result = await make_verifier(tenant_claim_idp()).verify(make_token(tid="globex"))
    assert result.tenant == "globex"


@pytest.mark.parametrize("tid", ["initech", "ACME", ["acme"], 1, "shared", None])
async def test_tenant_claim_outside_the_allow_list_is_rejected(tid: object) -> None:
    token = make_token(tid=tid) if tid is not None else make_token()
    assert await rejection(make_verifier(tenant_claim_idp()), token) == "tenant not allowed"


# scopes


async def test_scope_string_is_space_separated() -> None:
    token = make_token(scope="screenings:read  rulesets:read")
    result = await make_verifier().verify(token)
    assert result.scopes == {"screenings:read", "rulesets:read"}


async def test_scope_list_claim() -> None:
    verifier = make_verifier(idp(scope_claim="scp"))
    result = await verifier.verify(make_token(drop=("scope",), scp=["admin", "rulesets:read"]))
    assert result.scopes == {"admin", "rulesets:read"}


async def test_unknown_scopes_are_dropped() -> None:
    result = await make_verifier().verify(make_token(scope="screenings:read openid email"))
    assert result.scopes == {"screenings:read"}


async def test_allowed_scopes_cap_what_a_provider_can_grant() -> None:
    verifier = make_verifier(idp(allowed_scopes=("screenings:read", "openid")))
    result = await verifier.verify(make_token(scope="screenings:read admin openid"))
    assert result.scopes == {"screenings:read"}


@pytest.mark.parametrize("drop", [("scope",), ()])
async def test_token_without_usable_scopes_is_still_valid(drop: tuple[str, ...]) -> None:
    token = make_token(drop=drop) if drop else make_token(scope="openid profile")
    assert (await make_verifier().verify(token)).scopes == frozenset()


@pytest.mark.parametrize("scope", [42, ["admin", 3], {"admin": True}])
async def test_malformed_scope_claim_is_rejected(scope: object) -> None:
    token = make_token(scope=scope)
    assert await rejection(make_verifier(), token) == "the token scope claim is invalid"


class Perm(StrEnum):
    READ = "screenings:read"
    ADMIN = "admin"


async def test_scopes_are_the_known_scope_objects() -> None:
    verifier = JwtVerifier([idp()], list(Perm), clock=Clock())
    result = await verifier.verify(make_token(scope="admin screenings:read"))
    assert result.scopes == {Perm.READ, Perm.ADMIN}
    assert all(isinstance(scope, Perm) for scope in result.scopes)


# JWKS fetching


async def test_jwks_is_fetched_once_and_cached(server: JwksServer, http: httpx.AsyncClient) -> None:
    clock = Clock()
    verifier = make_verifier(url_idp(), http=http, clock=clock)
    await verifier.verify(make_token(jti="a"))
    clock.now += 299
    await verifier.verify(make_token(jti="b"))
    assert server.fetches == 1
    request = server.requests[0]
    assert str(request.url) == JWKS_URL
    assert request.headers["accept"] == "application/json"
    clock.now += 1  # jwks_cache_seconds (300) elapsed
    await verifier.verify(make_token(jti="c"))
    assert server.fetches == 2


async def test_key_rotation_refetches_at_most_every_30_seconds(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    verifier = make_verifier(url_idp(), http=http, clock=clock)
    await verifier.verify(make_token())
    server.keys = [RSA_JWK, OTHER_RSA_JWK]  # the provider rotates in a new key
    rotated = make_token(key=OTHER_RSA_KEY, kid="rsa-2")

    clock.now += 29
    assert await rejection(verifier, rotated) == "the token signing key is unknown"
    assert server.fetches == 1
    clock.now += 1
    assert (await verifier.verify(rotated)).subject == "user-42"
    assert server.fetches == 2

    clock.now += 10
    assert await rejection(verifier, make_token(kid="random")) == (
        "the token signing key is unknown"
    )
    assert server.fetches == 2
    clock.now += 20
    assert await rejection(verifier, make_token(kid="random")) == (
        "the token signing key is unknown"
    )
    assert server.fetches == 3


async def test_a_flood_of_unknown_kids_causes_one_fetch(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    verifier = make_verifier(url_idp(), http=http, clock=clock)
    await verifier.verify(make_token())
    clock.now += 30
    tokens = [make_token(kid=f"random-{n}") for n in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(result, TokenRejected) for result in results)
    assert server.fetches == 2


async def test_concurrent_verifications_share_one_fetch(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    verifier = make_verifier(url_idp(), http=http)
    tokens = [make_token(jti=f"tok-{n}") for n in range(10)]
    results = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert [result.token_id for result in results] == [f"tok-{n}" for n in range(10)]
    assert server.fetches == 1


async def test_symmetric_keys_in_a_fetched_jwks_are_ignored(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    server.keys = [{"kty": "oct", "kid": "hmac", "k": b64(b"s" * 32)}, RSA_JWK]
    verifier = make_verifier(url_idp(), http=http)
    assert (await verifier.verify(make_token())).subject == "user-42"
    assert await rejection(verifier, make_token(kid="hmac")) == "the token signing key is unknown"


def _fail_status(server: JwksServer) -> None:
    server.status = 500


def _fail_connect(server: JwksServer) -> None:
    server.error = httpx.ConnectError("connection refused")


def _fail_timeout(server: JwksServer) -> None:
    server.error = httpx.ReadTimeout("timed out")


def _fail_not_json(server: JwksServer) -> None:
    server.body = b"<html>oops</html>"


def _fail_not_a_jwks(server: JwksServer) -> None:
    server.body = b'{"keys": "none"}'


def _fail_only_symmetric(server: JwksServer) -> None:
    server.keys = [{"kty": "oct", "k": "c2VjcmV0"}]


def _fail_redirect(server: JwksServer) -> None:
    server.status = 302
    server.body = b""
    server.headers = {"location": "https://attacker.test/keys"}


@pytest.mark.parametrize(
    "break_server",
    [
        _fail_status,
        _fail_connect,
        _fail_timeout,
        _fail_not_json,
        _fail_not_a_jwks,
        _fail_only_symmetric,
        _fail_redirect,
    ],
)
async def test_unavailable_provider_without_cached_keys(
    server: JwksServer,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    break_server: Any,
) -> None:
    break_server(server)
    verifier = make_verifier(url_idp(), http=http)
    with (
        caplog.at_level(logging.WARNING, logger="carelevel.jwt"),
        pytest.raises(IdentityProviderUnavailable) as info,
    ):
        await verifier.verify(make_token())
    assert str(info.value) == "the identity provider keys are unavailable"
    assert server.fetches == 1  # redirects are not followed
    assert len(caplog.records) == 1
    logged = caplog.records[0].getMessage()
    assert "corp" in logged
    assert JWKS_URL not in logged


async def test_without_cached_keys_a_failed_fetch_is_retried_after_a_short_pause(
    server: JwksServer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    server.status = 503
    verifier = make_verifier(url_idp(), http=http, clock=clock)
    with pytest.raises(IdentityProviderUnavailable):
        await verifier.verify(make_token())
    server.status = 200
    clock.now += JWKS_FAILURE_BACKOFF_SECONDS - 1
    with pytest.raises(IdentityProviderUnavailable):  # at once, without asking again
        await verifier.verify(make_token())
    assert server.fetches == 1
    clock.now += 1
    assert (await verifier.verify(make_token())).subject == "user-42"
    assert server.fetches == 2


async def test_cached_keys_outlive_a_failing_provider(
    server: JwksServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    verifier = make_verifier(url_idp(), http=http, clock=clock)
    await verifier.verify(make_token(jti="a"))
    server.status = 503
    clock.now += 300
    with caplog.at_level(logging.WARNING, logger="carelevel.jwt"):
        assert (await verifier.verify(make_token(jti="b"))).token_id == "b"
    assert server.fetches == 2
    logged = caplog.records[0].getMessage()
    assert "corp" in logged
    assert "UnexpectedStatus" in logged
    assert "cached" in logged
    # the retry waits 30 s instead of hitting the failing provider on every request
    clock.now += 29
    await verifier.verify(make_token(jti="c"))
    assert server.fetches == 2
    server.status = 200
    clock.now += 1
    await verifier.verify(make_token(jti="d"))
    assert server.fetches == 3
    clock.now += 299
    await verifier.verify(make_token(jti="e"))
    assert server.fetches == 3


async def test_verifier_owns_and_closes_the_client_it_creates(
    server: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_client = httpx.AsyncClient
    created: list[tuple[httpx.AsyncClient, dict[str, Any]]] = []

    def make_client(**kwargs: Any) -> httpx.AsyncClient:
        client = real_client(transport=httpx.MockTransport(server.handle), **kwargs)
        created.append((client, kwargs))
        return client

    verifier = make_verifier(url_idp())
    await verifier.aclose()  # nothing created yet
    monkeypatch.setattr(httpx, "AsyncClient", make_client)
    await verifier.verify(make_token())
    [(client, kwargs)] = created
    assert kwargs == {"timeout": 5.0, "follow_redirects": False}
    await verifier.aclose()
    assert client.is_closed


async def test_verifier_leaves_an_injected_client_open(http: httpx.AsyncClient) -> None:
    verifier = make_verifier(url_idp(), http=http)
    await verifier.verify(make_token())
    await verifier.aclose()
    assert not http.is_closed


# verification cache


async def test_successful_verification_is_cached_until_exp() -> None:
    clock = Clock()
    verifier = make_verifier(clock=clock)
    token = make_token()
    first = await verifier.verify(token)
    clock.now = NOW + 599
    assert await verifier.verify(token) is first
    clock.now = NOW + 601  # past exp: verified again (still within the leeway)
    again = await verifier.verify(token)
    assert again == first
    assert again is not first
    clock.now = NOW + 660
    assert await rejection(verifier, token) == "the token has expired"


async def test_cache_is_a_bounded_lru() -> None:
    verifier = make_verifier(cache_size=2)
    a, b, c = (make_token(jti=name) for name in "abc")
    first_a = await verifier.verify(a)
    first_b = await verifier.verify(b)
    assert await verifier.verify(a) is first_a  # a is now the most recently used
    await verifier.verify(c)  # evicts b
    assert await verifier.verify(a) is first_a
    assert await verifier.verify(b) is not first_b


async def test_cache_size_zero_disables_the_cache() -> None:
    verifier = make_verifier(cache_size=0)
    token = make_token()
    assert await verifier.verify(token) is not await verifier.verify(token)


# looks_like_jwt


def test_looks_like_jwt() -> None:
    assert JwtVerifier.looks_like_jwt(make_token())
    assert not JwtVerifier.looks_like_jwt("clk_0123abcd.c2VjcmV0")
    assert not JwtVerifier.looks_like_jwt("a.b.")
    assert not JwtVerifier.looks_like_jwt(JWE)
    assert not JwtVerifier.looks_like_jwt("a.b.c d")
    assert not JwtVerifier.looks_like_jwt("a.b." + "c" * 20_000)


# settings


def test_provider_defaults() -> None:
    provider = idp()
    assert provider.scope_claim == "scope"
    assert provider.client_id_claims == ("client_id", "azp", "sub")
    assert provider.leeway_seconds == 60
    assert provider.jwks_cache_seconds == 300.0
    assert IdentityProvider(
        name="p", issuer=ISS, audience=AUD, jwks_url=JWKS_URL, tenant="acme"
    ).algorithms == ("RS256", "ES256")
    assert set(SIGNING_ALGORITHMS) == {
        *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
        *("ES256", "ES384", "ES512", "EdDSA"),
    }


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/keys", "http://127.0.0.1/keys", "http://[::1]:9000/keys"]
)
def test_http_jwks_url_is_allowed_for_loopback_hosts(url: str) -> None:
    assert url_idp(jwks_url=url).jwks_url == url


def test_provider_is_frozen() -> None:
    provider = idp()
    with pytest.raises(ValidationError, match="frozen"):
        provider.audience = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"jwks_url": JWKS_URL}, "exactly one of jwks_url and jwks"),
        ({"jwks": None}, "exactly one of jwks_url and jwks"),
        ({"jwks": None, "jwks_url": "http://idp.example.test/keys"}, "jwks_url must be an"),
        ({"jwks": None, "jwks_url": "ftp://idp.example.test/keys"}, "jwks_url must be an"),
        ({"jwks": None, "jwks_url": "https:///keys"}, "jwks_url must be an"),
        ({"jwks": None, "jwks_url": "https://[::1/keys"}, "jwks_url is not a valid URL"),
        ({"jwks": {"kids": []}}, "jwks must be a JWK set"),
        ({"jwks": {"keys": []}}, "jwks must be a JWK set"),
        ({"jwks": {"keys": RSA_JWK}}, "jwks must be a JWK set"),
        ({"jwks": {"keys": [RSA_JWK, {"n": "x"}]}}, "jwks key 1 must be an object with a kty"),
        ({"jwks": {"keys": ["RSA"]}}, "jwks key 0 must be an object with a kty"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks key 0 is a symmetric"),
        ({"tenant": None}, "exactly one of tenant and tenant_claim"),
        ({"tenant_claim": "tid", "tenants": ("acme",)}, "exactly one of tenant and tenant_claim"),
        ({"tenant": None, "tenant_claim": "tid"}, "tenants must list"),
        ({"tenants": ("acme",)}, "tenants is only used with tenant_claim"),
        ({"tenant": "Acme"}, "tenant and tenants must be lowercase slugs"),
        ({"tenant": "shared"}, "tenant and tenants must be lowercase slugs"),
        ({"tenant": "acme\n"}, "tenant and tenants must be lowercase slugs"),
        (
            {"tenant": None, "tenant_claim": "tid", "tenants": ("acme", "shared")},
            "tenant and tenants must be lowercase slugs",
        ),
        ({"algorithms": ()}, "algorithms"),
        ({"algorithms": ("RS256", "HS256")}, "algorithms"),
        ({"algorithms": ("none",)}, "algorithms"),
        ({"name": "Corp"}, "name"),
        ({"name": "c" * 64}, "name"),
        ({"issuer": ""}, "issuer"),
        ({"audience": "a" * 501}, "audience"),
        ({"leeway_seconds": 301}, "leeway_seconds"),
        ({"leeway_seconds": -1}, "leeway_seconds"),
        ({"jwks_cache_seconds": 5}, "jwks_cache_seconds"),
        ({"jwks_cache_seconds": 86401}, "jwks_cache_seconds"),
        ({"max_lifetime_seconds": 0}, "max_lifetime_seconds"),
        ({"client_id_claims": ()}, "client_id_claims"),
        ({"client_id_claims": ("client_id", "")}, "client_id_claims must not contain empty"),
        ({"audiences": [AUD]}, "audiences"),
    ],
)
def test_provider_validation(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        idp(**overrides)


def test_verifier_rejects_ambiguous_configuration() -> None:
    with pytest.raises(ValueError, match="issuers must be unique"):
        JwtVerifier([idp(), idp(name="copy")], KNOWN_SCOPES)
    with pytest.raises(ValueError, match="names must be unique"):
        JwtVerifier([idp(), idp(issuer=OTHER_ISS)], KNOWN_SCOPES)
    with pytest.raises(ValueError, match="cache_size"):
        JwtVerifier([idp()], KNOWN_SCOPES, cache_size=-1)

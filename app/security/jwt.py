"""OAuth2 bearer tokens: JWT access tokens verified against configured identity providers.

A token names its issuer (``iss``); the issuer picks the provider, and only that provider's
keys (an inline JWKS, or one fetched from its ``jwks_url``) can verify it. Keys a token names
itself (``jku``, ``x5u``, ``jwk``, ``x5c`` headers) are never fetched or trusted, symmetric
algorithms are never accepted, and every check that fails raises :class:`TokenRejected` with a
short generic message that is safe to send back in a ``WWW-Authenticate`` header: it never
repeats token contents or claim values.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import jwt
from jwt.exceptions import InvalidJTIError, InvalidSubjectError
from jwt.types import Options

from app.kernel.issuers import SIGNING_ALGORITHMS, CdsClient, IdentityProvider
from app.security.principal import PATIENT_ID, PatientContext

logger = logging.getLogger("carelevel.jwt")

MAX_TOKEN_LENGTH = 16 * 1024  # far above any real access token; bounds parsing work
JWKS_REFETCH_FLOOR_SECONDS = 30.0
# With no keys at all, a failed fetch is not retried for this long: a burst of tokens while the
# provider is unreachable gets 503 at once instead of each waiting for its own timeout.
JWKS_FAILURE_BACKOFF_SECONDS = 5.0
JWKS_FETCH_TIMEOUT_SECONDS = 5.0
_MAX_JWKS_BYTES = 512 * 1024
_MAX_ID_LENGTH = 255
MAX_CLIENT_ID = 300  # what the tables that record a client id hold
_MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z

_B64URL = r"[A-Za-z0-9_-]"
_SEGMENT = re.compile(rf"{_B64URL}+")
_COMPACT_JWS = re.compile(rf"{_B64URL}+\.{_B64URL}+\.{_B64URL}+")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# kty, and the curves allowed (None: no curve), for each algorithm.
_KEY_TYPES: Final[dict[str, tuple[str, frozenset[str] | None]]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

# PyJWT reads the wall clock for exp/nbf/iat; those are checked here against the injected clock.
_REQUIRED: Final[Options] = {
    "require": ["exp", "iss", "aud", "sub"],
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "enforce_minimum_key_length": True,
}
_CDS_REQUIRED: Final[Options] = _REQUIRED | {"require": ["exp", "iss", "aud", "iat", "jti"]}
_REQUIRED_CLAIMS = frozenset({"exp", "iss", "aud", "sub", "iat", "jti"})


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """The facts a verified access token establishes."""

    provider: str
    subject: str
    client_id: str
    tenant: str
    scopes: frozenset[str]
    expires_at: float
    token_id: str | None
    patient: PatientContext | None = None


class TokenRejected(Exception):
    """The token is not acceptable (→ 401). ``str(error)`` is a short, generic, safe
    description."""


class IdentityProviderUnavailable(Exception):
    """The provider's keys could not be fetched (→ 503): the token may be fine."""


class _JwksError(Exception):
    """A JWKS response that cannot be used; the argument is a fixed, log-safe kind."""


@dataclass(slots=True)
class _KeySet:
    keys: tuple[dict[str, Any], ...]
    fetched_at: float
    # PyJWK objects built on first use, per (key index, algorithm)
    built: dict[tuple[int, str], jwt.PyJWK] = field(default_factory=dict)


@dataclass(slots=True)
class _ProviderState:
    provider: IdentityProvider
    keyset: _KeySet | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_attempt: float = -math.inf
    attempts: int = 0  # completed fetches, so waiters on the lock can tell one happened


class JwtVerifier:
    """Verifies bearer JWTs from the configured identity providers.

    Scopes a token grants are intersected with ``known_scopes`` (the returned set holds the
    objects given there, so enum members stay enum members) and the provider's
    ``allowed_scopes``. Successful verifications are cached until the token's ``exp``.
    """

    def __init__(
        self,
        providers: Sequence[IdentityProvider],
        known_scopes: Iterable[str],
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        if cache_size < 0:
            raise ValueError("cache_size must not be negative")
        self._states: dict[str, _ProviderState] = {}
        names: set[str] = set()
        for provider in providers:
            if provider.name in names:
                raise ValueError("identity provider names must be unique")
            if provider.issuer in self._states:
                raise ValueError("identity provider issuers must be unique")
            names.add(provider.name)
            inline = None
            if provider.jwks is not None:
                inline = _KeySet(keys=tuple(provider.jwks["keys"]), fetched_at=math.inf)
            self._states[provider.issuer] = _ProviderState(provider=provider, keyset=inline)
        self._known_scopes = frozenset(known_scopes)
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._cache_size = cache_size
        self._cache: OrderedDict[bytes, VerifiedToken] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether any identity provider is configured."""
        return bool(self._states)

    @staticmethod
    def looks_like_jwt(token: str) -> bool:
        """Whether ``token`` has the shape of a compact JWS (three base64url segments)."""
        return len(token) <= MAX_TOKEN_LENGTH and _COMPACT_JWS.fullmatch(token) is not None

    async def verify_request(self, token: str, audience: str | list[str]) -> VerifiedToken:
        """Verify a CDS client's per-call JWT addressed to ``audience`` (the exact URL called).

        ``jti`` and ``iat`` are required and the header must say ``typ: JWT`` with a ``kid``;
        the caller keeps each ``token_id`` until ``expires_at`` to refuse replays. Never cached:
        every call brings a new token.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("the token is too large")
        header, unverified = _parse(token)
        alg = _check_header(header)
        if header.get("typ") != "JWT":
            raise TokenRejected("the token header must say typ JWT")
        if not isinstance(header.get("kid"), str):
            raise TokenRejected("the token has no key id")
        issuer = unverified.get("iss")
        state = self._states.get(issuer) if isinstance(issuer, str) else None
        if state is None or not isinstance(state.provider, CdsClient):
            raise TokenRejected("unknown issuer")
        provider = state.provider
        if alg not in provider.algorithms:
            raise TokenRejected("the token algorithm is not allowed for this issuer")
        key = await self._signing_key(state, header.get("kid"), alg)
        claims = _decode(token, key, alg, provider, audience, _CDS_REQUIRED)
        if not _is_identifier(claims["jti"]):
            raise TokenRejected("the token id is invalid")
        return self._establish(claims, provider, subject_claim="iss")

    async def verify(self, token: str) -> VerifiedToken:
        """Verify ``token`` and return what it establishes.

        Raises TokenRejected when the token is not acceptable, IdentityProviderUnavailable
        when the issuer's keys cannot be fetched.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenRejected("the token is too large")
        digest = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        cached = self._cache.get(digest)
        if cached is not None:
            if cached.expires_at > self._clock():
                self._cache.move_to_end(digest)
                return cached
            del self._cache[digest]

        header, unverified = _parse(token)
        alg = _check_header(header)
        issuer = unverified.get("iss")
        if not isinstance(issuer, str):
            raise TokenRejected("the token has no issuer")
        state = self._states.get(issuer)
        if state is None or isinstance(state.provider, CdsClient):
            raise TokenRejected("unknown issuer")
        provider = state.provider
        if alg not in provider.algorithms:
            raise TokenRejected("the token algorithm is not allowed for this issuer")

        key = await self._signing_key(state, header.get("kid"), alg)
        claims = _decode(token, key, alg, provider, provider.audience, _REQUIRED)
        result = self._establish(claims, provider)
        if self._cache_size and result.expires_at > self._clock():
            self._cache[digest] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    async def aclose(self) -> None:
        """Close the HTTP client if this verifier created it."""
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    # keys

    async def _signing_key(self, state: _ProviderState, kid: object, alg: str) -> jwt.PyJWK:
        if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > _MAX_ID_LENGTH):
            raise TokenRejected("the token key id is invalid")
        keyset = await self._current_keys(state)
        found = _find_key(keyset, kid, alg)
        if (
            found is None
            and state.provider.jwks_url is not None
            and self._clock() - state.last_attempt >= JWKS_REFETCH_FLOOR_SECONDS
        ):
            # The provider may have rotated its keys since the last fetch.
            await self._refresh(state)
            if state.keyset is not None and state.keyset is not keyset:
                keyset = state.keyset
                found = _find_key(keyset, kid, alg)
        if found is None:
            if kid is None:
                raise TokenRejected("no signing key matches the token algorithm")
            raise TokenRejected("the token signing key is unknown")
        index, jwk = found
        built = keyset.built.get((index, alg))
        if built is None:
            try:
                built = jwt.PyJWK(jwk, algorithm=alg)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                raise TokenRejected("the signing key is unusable") from None
            keyset.built[(index, alg)] = built
        return built

    async def _current_keys(self, state: _ProviderState) -> _KeySet:
        provider = state.provider
        keyset = state.keyset
        if provider.jwks_url is None and keyset is not None:
            return keyset
        now = self._clock()
        if keyset is None:
            if state.attempts and now - state.last_attempt < JWKS_FAILURE_BACKOFF_SECONDS:
                raise IdentityProviderUnavailable("the identity provider keys are unavailable")
            await self._refresh(state)
        elif now - keyset.fetched_at >= provider.jwks_cache_seconds:
            # After a failed refresh, stale keys stay in use and the retry waits a while.
            backoff = min(provider.jwks_cache_seconds, JWKS_REFETCH_FLOOR_SECONDS)
            if now - state.last_attempt >= backoff:
                await self._refresh(state)
        if state.keyset is None:
            raise IdentityProviderUnavailable("the identity provider keys are unavailable")
        return state.keyset

    async def _refresh(self, state: _ProviderState) -> None:
        """Fetch the provider's JWKS; concurrent callers share one fetch."""
        seen = state.attempts
        async with state.lock:
            if state.attempts != seen:
                return  # another caller fetched while this one waited
            provider = state.provider
            state.last_attempt = self._clock()
            try:
                keys = await self._fetch(provider)
            except _JwksError as error:
                state.attempts += 1
                logger.warning(
                    "could not fetch the JWKS of identity provider %s (%s)%s",
                    provider.name,
                    error.args[0],
                    "; keeping the cached keys" if state.keyset is not None else "",
                )
                return
            state.attempts += 1
            state.keyset = _KeySet(keys=keys, fetched_at=self._clock())

    async def _fetch(self, provider: IdentityProvider) -> tuple[dict[str, Any], ...]:
        assert provider.jwks_url is not None
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=JWKS_FETCH_TIMEOUT_SECONDS, follow_redirects=False
            )
        try:
            response = await self._http.get(
                provider.jwks_url,
                headers={"Accept": "application/json"},
                timeout=JWKS_FETCH_TIMEOUT_SECONDS,
                follow_redirects=False,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise _JwksError(type(error).__name__) from error
        if response.status_code != 200:
            raise _JwksError("UnexpectedStatus")
        if len(response.content) > _MAX_JWKS_BYTES:
            raise _JwksError("InvalidJwks")
        try:
            body = json.loads(response.content)
        except (ValueError, RecursionError):
            raise _JwksError("InvalidJwks") from None
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise _JwksError("InvalidJwks")
        # Keys this verifier can never use (symmetric, malformed) are skipped, not fatal.
        usable = tuple(
            key
            for key in keys
            if isinstance(key, dict) and isinstance(key.get("kty"), str) and key["kty"] != "oct"
        )
        if not usable:
            raise _JwksError("InvalidJwks")
        return usable

    # claims

    def _establish(
        self, claims: dict[str, Any], provider: IdentityProvider, subject_claim: str = "sub"
    ) -> VerifiedToken:
        """The identity a token with a verified signature, audience and issuer establishes.
        Its other claims are checked here, in a fixed order: times, subject, client id,
        token id, tenant, scopes."""
        _check_times(claims, provider, self._clock())
        subject = claims[subject_claim]
        if not _is_identifier(subject):
            raise TokenRejected("the token subject is invalid")
        client_id = _client_id(claims, provider)
        token_id = claims.get("jti")
        if token_id is not None and not _is_identifier(token_id):
            raise TokenRejected("the token id is invalid")
        tenant = _tenant(claims, provider)
        scopes = self._scopes(claims, provider)
        patient = None if isinstance(provider, CdsClient) else _patient(claims, provider)
        return VerifiedToken(
            provider=provider.name,
            subject=subject,
            client_id=client_id,
            tenant=tenant,
            scopes=scopes,
            expires_at=float(claims["exp"]),
            token_id=token_id,
            patient=patient,
        )

    def _scopes(self, claims: dict[str, Any], provider: IdentityProvider) -> frozenset[str]:
        """A CDS client's calls get the scopes configured for it; other tokens, the scopes
        they claim that the provider allows."""
        if isinstance(provider, CdsClient):
            return frozenset(s for s in self._known_scopes if s in provider.scopes)
        return self._granted_scopes(claims.get(provider.scope_claim), provider)

    def _granted_scopes(self, value: object, provider: IdentityProvider) -> frozenset[str]:
        if value is None:
            return frozenset()
        if isinstance(value, str):
            requested = set(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            requested = set(value)
        else:
            raise TokenRejected("the token scope claim is invalid")
        allowed = provider.allowed_scopes
        return frozenset(
            scope
            for scope in self._known_scopes
            if scope in requested and (allowed is None or scope in allowed)
        )


def _check_times(claims: dict[str, Any], provider: IdentityProvider, now: float) -> None:
    """Not expired, already valid and not issued in the future, with the provider's leeway; no
    longer-lived than the provider allows."""
    leeway = provider.leeway_seconds
    exp = claims["exp"]
    if not _is_time(exp):
        raise TokenRejected("the token expiry is invalid")
    if exp <= now - leeway:
        raise TokenRejected("the token has expired")
    _check_not_after(
        claims.get("nbf"),
        now + leeway,
        "the token not-before time is invalid",
        "the token is not yet valid",
    )
    iat = claims.get("iat")
    _check_not_after(
        iat, now + leeway, "the token issue time is invalid", "the token was issued in the future"
    )
    if provider.max_lifetime_seconds is not None:
        if iat is None:
            raise TokenRejected("the token has no iat claim")
        if exp - iat > provider.max_lifetime_seconds:
            raise TokenRejected("the token lifetime is too long")


def _check_not_after(value: Any, latest: float, invalid: str, too_late: str) -> None:
    """An optional time claim, when present, is a valid time no later than ``latest``."""
    if value is None:
        return
    if not _is_time(value):
        raise TokenRejected(invalid)
    if value > latest:
        raise TokenRejected(too_late)


def _client_id(claims: dict[str, Any], provider: IdentityProvider) -> str:
    """``jwt:<provider>:<client>``, the client named by the first of the provider's client-id
    claims the token has."""
    client = next(
        (claims[name] for name in provider.client_id_claims if claims.get(name) is not None),
        None,
    )
    if client is None:
        raise TokenRejected("the token has no client id")
    if not _is_identifier(client) or len(f"jwt:{provider.name}:{client}") > MAX_CLIENT_ID:
        raise TokenRejected("the token client id is invalid")
    return f"jwt:{provider.name}:{client}"


def _patient(claims: dict[str, Any], provider: IdentityProvider) -> PatientContext | None:
    """The patient the token is bound to, when it carries the provider's patient claim: its
    id, and the token's issuer and audiences as the bases of absolute references to it."""
    name = provider.patient_claim
    if name is None or name not in claims:
        return None
    patient = claims[name]
    if not isinstance(patient, str) or not PATIENT_ID.fullmatch(patient):
        raise TokenRejected("the token patient claim is invalid")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    bases = (
        value.rstrip("/")
        for value in (claims["iss"], *audiences)
        if isinstance(value, str) and value.startswith(("https://", "http://"))
    )
    return PatientContext(id=patient, bases=tuple(dict.fromkeys(bases)))


def _tenant(claims: dict[str, Any], provider: IdentityProvider) -> str:
    """The provider's tenant, or else the one the token claims, if the provider allows it."""
    if provider.tenant is not None:
        return provider.tenant
    assert provider.tenant_claim is not None
    claimed = claims.get(provider.tenant_claim)
    if not isinstance(claimed, str) or claimed not in provider.tenants:
        raise TokenRejected("tenant not allowed")
    return claimed


def _parse(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The unverified header and claims of a compact JWS."""
    segments = token.split(".")
    if len(segments) != 3:
        raise TokenRejected("the token is not a signed JWT")
    header_segment, payload_segment, signature_segment = segments
    # An empty signature is let through so that unsigned tokens get their own message.
    if not (
        _is_b64url(header_segment, allow_empty=False)
        and _is_b64url(payload_segment, allow_empty=False)
        and _is_b64url(signature_segment, allow_empty=True)
    ):
        raise TokenRejected("the token is not a signed JWT")
    header = _json_object(header_segment)
    if header is None:
        raise TokenRejected("the token header is malformed")
    claims = _json_object(payload_segment)
    if claims is None:
        raise TokenRejected("the token payload is malformed")
    return header, claims


def _check_header(header: dict[str, Any]) -> str:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenRejected("the token header has no valid algorithm")
    if alg.lower() == "none":
        raise TokenRejected("unsigned tokens are not accepted")
    if alg.upper().startswith("HS"):
        raise TokenRejected("symmetric algorithms are not accepted")
    if alg not in SIGNING_ALGORITHMS:
        raise TokenRejected("the token algorithm is not supported")
    if "crit" in header:
        raise TokenRejected("critical header parameters are not supported")
    return alg


def _find_key(keyset: _KeySet, kid: str | None, alg: str) -> tuple[int, dict[str, Any]] | None:
    """The key that verifies ``alg`` tokens with ``kid`` (any kid when None); None if absent."""
    if kid is None:
        fitting = [
            (index, key) for index, key in enumerate(keyset.keys) if _key_misfit(key, alg) is None
        ]
        if len(fitting) > 1:
            raise TokenRejected("the token has no key id")
        return fitting[0] if fitting else None
    named = [(index, key) for index, key in enumerate(keyset.keys) if key.get("kid") == kid]
    if not named:
        return None
    for index, key in named:
        if _key_misfit(key, alg) is None:
            return index, key
    misfit = _key_misfit(named[0][1], alg)
    assert misfit is not None
    raise TokenRejected(misfit)


def _key_misfit(key: dict[str, Any], alg: str) -> str | None:
    """Why ``key`` cannot verify ``alg`` signatures, or None if it can."""
    kty, curves = _KEY_TYPES[alg]
    if key.get("kty") != kty or (curves is not None and key.get("crv") not in curves):
        return "the signing key type does not match the algorithm"
    if "alg" in key and key["alg"] != alg:
        return "the signing key is bound to another algorithm"
    if "use" in key and key["use"] != "sig":
        return "the signing key is not a signature key"
    if "key_ops" in key and (
        not isinstance(key["key_ops"], list) or "verify" not in key["key_ops"]
    ):
        return "the signing key does not permit verification"
    return None


def _decode(
    token: str,
    key: jwt.PyJWK,
    alg: str,
    provider: IdentityProvider,
    audience: str | list[str] | None,
    required: Options,
) -> dict[str, Any]:
    if audience is None:  # a configuration error; refuse rather than accept any audience
        raise TokenRejected("the token audience is not accepted")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=provider.issuer,
            leeway=provider.leeway_seconds,
            options=required,
        )
    except jwt.PyJWTError as error:
        raise TokenRejected(_rejection(error)) from None
    return claims


# PyJWT's errors with the reason a client is given; the first that matches applies, so a
# subclass comes before its base (InvalidSignatureError is a DecodeError).
_REJECTIONS: Final[tuple[tuple[type[jwt.PyJWTError], str], ...]] = (
    (jwt.InvalidSignatureError, "the token signature is invalid"),
    (jwt.InvalidAudienceError, "the token audience is not accepted"),
    (jwt.InvalidIssuerError, "the token issuer does not match"),
    (InvalidSubjectError, "the token subject is invalid"),
    (InvalidJTIError, "the token id is invalid"),
    (jwt.DecodeError, "the token is malformed"),
    # enforce_minimum_key_length: e.g. an RSA key under 2048 bits
    (jwt.InvalidKeyError, "the signing key is too weak"),
)


def _rejection(error: jwt.PyJWTError) -> str:
    """Why PyJWT refused the token, in words that reveal nothing of it."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        claim = error.claim if error.claim in _REQUIRED_CLAIMS else "required"
        return f"the token has no {claim} claim"
    return next(
        (reason for kind, reason in _REJECTIONS if isinstance(error, kind)),
        "the token is invalid",
    )


def _is_b64url(segment: str, *, allow_empty: bool) -> bool:
    if not segment:
        return allow_empty
    return _SEGMENT.fullmatch(segment) is not None and len(segment) % 4 != 1


def _json_object(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError, binascii.Error):
        return None
    return value if isinstance(value, dict) else None


def _is_time(value: object) -> bool:
    # Bounded so float() and arithmetic on it cannot overflow (a JSON integer can be huge).
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= _MAX_TIMESTAMP
    )


def _is_identifier(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= _MAX_ID_LENGTH
        and _CONTROL_CHARS.search(value) is None
        and _encodable(value)
    )


def _encodable(value: str) -> bool:
    """No lone surrogates (JSON escapes can carry them; no database can store them)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

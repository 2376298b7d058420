"""Trusted token issuers as the settings configure them: the identity providers whose JWT
access tokens the API accepts, and the CDS Hooks clients (EHRs) that sign a JWT for every call.
Checked when the settings are read; app/security/jwt.py verifies tokens against them."""

from __future__ import annotations

from typing import Any, Final, Literal, Self, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.engine.determination import LevelOfCare
from app.kernel.tenancy import SHARED, is_tenant_id

SigningAlgorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
SIGNING_ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = get_args(SigningAlgorithm)

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class IdentityProvider(BaseModel):
    """An OAuth2 authorization server whose JWT access tokens the service accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    issuer: str = Field(min_length=1, max_length=500)
    # None only for a CdsClient, whose audience is the URL of each endpoint it calls.
    audience: str | None = Field(default=None, min_length=1, max_length=500)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    algorithms: tuple[SigningAlgorithm, ...] = Field(default=("RS256", "ES256"), min_length=1)
    tenant: str | None = None
    tenant_claim: str | None = Field(default=None, min_length=1)
    tenants: tuple[str, ...] = ()
    scope_claim: str = Field(default="scope", min_length=1)
    client_id_claims: tuple[str, ...] = Field(default=("client_id", "azp", "sub"), min_length=1)
    # SMART App Launch's patient context: a token carrying this claim (a bare Patient id) only
    # reaches that patient's data. None: the provider's tokens are never patient-bound.
    # Not read from a CdsClient's per-call JWTs.
    patient_claim: str | None = Field(default="patient", min_length=1, max_length=100)
    allowed_scopes: tuple[str, ...] | None = None
    leeway_seconds: int = Field(default=60, ge=0, le=300)
    max_lifetime_seconds: int | None = Field(default=None, gt=0)
    jwks_cache_seconds: float = Field(default=300.0, ge=10, le=86400)

    @model_validator(mode="after")
    def _check_keys(self) -> Self:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("exactly one of jwks_url and jwks must be set")
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if self.jwks is not None:
            _check_inline_jwks(self.jwks)
        return self

    @model_validator(mode="after")
    def _check_tenancy(self) -> Self:
        if (self.tenant is None) == (self.tenant_claim is None):
            raise ValueError("exactly one of tenant and tenant_claim must be set")
        if self.tenant_claim is not None and not self.tenants:
            raise ValueError("tenants must list the allowed tenants when tenant_claim is set")
        if self.tenant_claim is None and self.tenants:
            raise ValueError("tenants is only used with tenant_claim")
        for tenant in (self.tenant, *self.tenants):
            if tenant is not None and not is_tenant_id(tenant):
                raise ValueError(
                    "tenant and tenants must be lowercase slugs (a-z, 0-9, -; at most 63) "
                    f"other than {SHARED}"
                )
        if any(not claim for claim in self.client_id_claims):
            raise ValueError("client_id_claims must not contain empty names")
        return self


class CdsClient(IdentityProvider):
    """A CDS Hooks client (an EHR): it signs a JWT for every call (CDS Hooks 2.0, "Trusting CDS
    Clients") with ``iss``, ``aud`` (the exact endpoint called), ``exp``, ``iat`` and ``jti``;
    ``tenant`` names the organisation when ``tenant_claim`` is used. Its calls get ``scopes``."""

    algorithms: tuple[SigningAlgorithm, ...] = Field(default=("ES384", "RS384"), min_length=1)
    client_id_claims: tuple[str, ...] = Field(default=("iss",), min_length=1)
    # CDS Hooks: a token per call, "5 minutes or less"; a longer-lived one is refused.
    max_lifetime_seconds: int | None = Field(default=300, gt=0, le=3600)
    scopes: tuple[str, ...] = ("screenings:write", "screenings:read")
    # The EHR's own order codes for referrals, "system|code" → a carelevel level of care, for
    # the order-select check (standard codes are known without this).
    local_codes: dict[str, LevelOfCare] = Field(default_factory=dict, max_length=1000)
    # The FHIR server bases (the calls' fhirServer) carelevel may query with the call's
    # fhirAuthorization when the prefetch is missing; none: carelevel never queries.
    fhir_servers: tuple[str, ...] = Field(default=(), max_length=20)

    @model_validator(mode="after")
    def _check_local_codes_and_servers(self) -> Self:
        for key in self.local_codes:
            system, bar, code = key.partition("|")
            if not bar or not system.strip() or not code.strip() or "|" in code:
                raise ValueError(f"local_codes key {key!r} must be 'system|code'")
        for server in self.fhir_servers:
            _check_fhir_server(server)
        return self


def _check_jwks_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise ValueError("jwks_url is not a valid URL") from None
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS:
        return
    raise ValueError("jwks_url must be an https:// URL (http:// only for localhost)")


def _check_fhir_server(url: str) -> None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise ValueError("fhir_servers: not a valid URL") from None
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        raise ValueError("fhir_servers: a FHIR base has no credentials, query or fragment")
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host in _LOOPBACK_HOSTS:
        return
    raise ValueError("fhir_servers must be https:// URLs (http:// only for localhost)")


def _check_inline_jwks(jwks: dict[str, Any]) -> None:
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ValueError("jwks must be a JWK set: an object with a non-empty keys list")
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            raise ValueError(f"jwks key {index} must be an object with a kty member")
        if key["kty"] == "oct":
            raise ValueError(f"jwks key {index} is a symmetric (oct) key: only public keys")

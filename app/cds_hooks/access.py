"""Authenticating a CDS client (an EHR) on every call: a JWT it signs with a key of its JWKS,
addressed to the exact endpoint called, used once.

This trust path is separate from the API's: API keys and OAuth access tokens are not accepted
under ``/cds-services``, and CDS client JWTs are accepted nowhere else. A verified client acts
as a principal of its configured tenant, like an API client, with the scopes its configuration
grants; its calls are rate-limited and audited the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import IntegrityError

from app.kernel.errors import Forbidden, ServiceUnavailable, Unauthorized
from app.security.access import Guard, source_address
from app.security.actions import ACTIONS, Action, resource_id_from_path
from app.security.caller import Caller
from app.security.jwt import IdentityProviderUnavailable, JwtVerifier, TokenRejected
from app.security.models import TokenUse
from app.security.principal import Principal, Scope

cds_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="cdsClient",
    bearerFormat="JWT",
    description="CDS Hooks 2.0: a JWT the EHR signs for each call (iss, aud = the endpoint "
    "URL, exp, iat, jti), verified against the JWKS configured for that issuer.",
)


def endpoint_url(request: Request) -> str:
    """The URL the client called, as it should name it in ``aud``: the configured public
    address (required with CDS clients), never the request's Host header."""
    base: str | None = request.app.state.settings.public_url
    assert base is not None  # settings refuse CDS clients without it
    return f"{base}{request.url.path}"


async def _remember(request: Request, provider: str, token_id: str, expires: float) -> None:
    """Record a token id until its expiry; Unauthorized when it was seen: a replay."""
    sessions = request.app.state.sessions
    try:
        async with sessions() as session, session.begin():
            session.add(
                TokenUse(
                    issuer=provider,
                    jti=token_id,
                    expires_at=datetime.fromtimestamp(expires, UTC) + timedelta(minutes=5),
                )
            )
    except IntegrityError:
        raise Unauthorized("The token was already used: each call needs a new jti.") from None


async def cds_authorize(request: Request, action: Action) -> Caller:
    """The Caller of a CDS client's call (401, 429, 403, 503 otherwise)."""
    existing: Caller | None = getattr(request.state, "caller", None)
    if existing is not None:
        return existing
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the signed JWT: Authorization: Bearer <JWT>.", error=None)
    if not request.app.state.settings.cds_clients:
        raise Unauthorized("No CDS client is configured to call this service.", error=None)
    verifier: JwtVerifier = request.app.state.cds_verifier
    audiences = [endpoint_url(request)]
    if audiences[0].endswith("/feedback"):  # some clients name the service, not its feedback
        audiences.append(audiences[0].removesuffix("/feedback"))
    try:
        verified = await verifier.verify_request(token.strip(), audiences)
    except TokenRejected as error:
        raise Unauthorized(f"The CDS client token is not accepted: {error}.") from None
    except IdentityProviderUnavailable:
        raise ServiceUnavailable(
            "The CDS client's signing keys cannot be fetched; retry shortly.",
            headers={"Retry-After": "5"},
        ) from None
    assert verified.token_id is not None  # required for CDS clients
    await _remember(request, verified.provider, verified.token_id, verified.expires_at)
    principal = Principal(
        tenant=verified.tenant,
        client_id=f"cds:{verified.provider}",
        scopes=frozenset(Scope(s) for s in verified.scopes),
        label=f"{verified.provider} (CDS client)",
        subject=verified.subject,
    )
    request.state.principal = principal
    guard: Guard = request.app.state.guard
    await guard.count(request, principal)
    caller = Caller(
        principal=principal,
        action=action,
        request_id=getattr(request.state, "request_id", None),
        source_ip=source_address(request),
        resource_id=resource_id_from_path(request.path_params),
    )
    request.state.caller = caller
    missing = principal.missing(ACTIONS[action].scopes)
    if missing:
        raise Forbidden(f"This CDS client is not granted: {' '.join(sorted(missing))}.")
    return caller


class _CdsAccess:
    def __init__(self, action: Action) -> None:
        self.action = action

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(cds_bearer)],
    ) -> Caller:
        return await cds_authorize(request, self.action)


def cds_access(action: Action) -> Any:
    """The dependency of a CDS Hooks route (documents the JWT scheme in OpenAPI)."""
    return Security(_CdsAccess(action), scopes=sorted(ACTIONS[action].scopes))

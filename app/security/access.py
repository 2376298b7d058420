"""The dependency every protected route declares: ``caller: Annotated[Caller, access(ACTION)]``.

In order, for each request: authenticate the bearer credential (401; 429 for an address with
too many failed authentications), count it against the client's and the tenant's rate limits
(429), check the action's scopes (403), and hand the route a ``Caller``
that services use to scope every query to the caller's tenant and to write the audit event.
Routes of a ``GuardedRoute`` router run it before the body is even read, so an unauthenticated
request learns nothing about the shape of what it sent.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Response, Security
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.kernel.errors import Forbidden, TooManyRequests, Unauthorized
from app.security.actions import ACTIONS, Action, resource_id_from_path
from app.security.authentication import Authenticator
from app.security.caller import Caller
from app.security.patients import PatientRule, admit_patient
from app.security.principal import Principal
from app.security.rate_limit import FailedAuthentications, RateLimiter

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="API key (clk_…) or JWT",
    description="An API key (`carelevel clients create`, or the key printed at the first start "
    "of the embedded default), or an access token from a configured identity provider. Each "
    "operation lists the scopes it needs.",
)


@dataclass(slots=True)
class Guard:
    """What the access dependency needs, built once per application."""

    authenticator: Authenticator
    rate_limiter: RateLimiter
    failures: FailedAuthentications

    async def authenticate(self, token: str, address: str | None) -> Principal:
        """The principal of ``token`` (401 otherwise). An address with too many failed
        authentications in the window gets 429 for credentials not already trusted, before
        they are checked; a failure is counted against its address."""
        wait = self.failures.refused_for(address)
        if wait is not None and not self.authenticator.trusts(token):
            raise TooManyRequests(
                f"Too many failed authentications from this address; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
        try:
            return await self.authenticator.authenticate(token)
        except Unauthorized:
            await self.failures.failed(address)
            raise

    async def count(self, request: Request, principal: Principal) -> None:
        """Count the request against its client's and tenant's limits (429 when one is
        spent); the quotas are kept for the response's RateLimit fields."""
        quotas = await self.rate_limiter.hit(principal.client_id, principal.tenant)
        request.scope.setdefault("state", {})["quota"] = quotas
        spent = quotas.spent
        if spent is not None:
            whose = "client" if spent.policy == "client" else "client's tenant"
            raise TooManyRequests(
                f"This {whose} made more than {spent.limit} requests in the current window; "
                f"retry in {spent.reset_seconds} s.",
                headers={"Retry-After": str(spent.reset_seconds)},
            )


def _credentials(request: Request) -> str | None:
    """The bearer credential of ``request`` (RFC 6750: the scheme is case-insensitive), from
    the first Authorization header, read from the raw ASGI list without building Starlette's
    ``Headers``."""
    headers: list[tuple[bytes, bytes]] = request.scope["headers"]
    value = next((value for name, value in headers if name == b"authorization"), b"")
    scheme, _, credential = value.decode("latin-1").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


def source_address(request: Request) -> str | None:
    """The client's address, only when it is one (behind a trusted proxy it comes from a
    header, and the trail must not store whatever text that header held)."""
    client = request.scope.get("client")
    return _address(client[0]) if client and client[0] else None


@functools.lru_cache(maxsize=4096)
def _address(host: str) -> str | None:
    """``host`` as a normalised IP address, None if it is not one (remembered: clients come
    back from the same few addresses, and parsing one costs more than the lookup)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def authorize(
    request: Request, action: Action, patient_rule: PatientRule | None = None
) -> Caller:
    """Authenticate, rate-limit and check the scopes of ``action`` for ``request``, and for a
    principal bound to a patient the route's ``patient_rule``: the ``Caller`` (401, 429, 403
    otherwise). Done once per request."""
    # The request state's own dictionary: what request.state reads and writes, without the
    # attribute protocol (a missing attribute costs an exception).
    state: dict[str, Any] = request.scope.setdefault("state", {})
    existing: Caller | None = state.get("caller")
    if existing is not None:
        return existing
    guard: Guard = request.app.state.guard
    token = _credentials(request)
    if token is None:
        raise Unauthorized(
            "Send credentials: Authorization: Bearer <API key or access token>.", error=None
        )
    address = source_address(request)
    principal = await guard.authenticate(token, address)
    state["principal"] = principal
    await guard.count(request, principal)
    path_params = request.scope.get("path_params")
    caller = Caller(
        principal=principal,
        action=action,
        request_id=state.get("request_id"),
        source_ip=address,
        resource_id=resource_id_from_path(path_params) if path_params else None,
    )
    state["caller"] = caller  # failed requests are audited from the error handlers
    required = ACTIONS[action].scopes
    if not required <= principal.scopes:
        missing = principal.missing(required)
        raise Forbidden(
            f"This client lacks the scope this operation needs: {' '.join(sorted(missing))}.",
            headers={
                "WWW-Authenticate": f'Bearer realm="carelevel", error="insufficient_scope", '
                f'scope="{" ".join(sorted(required))}"'
            },
        )
    if principal.patient is not None:
        await admit_patient(request, principal.patient, ACTIONS[action], patient_rule)
    return caller


class _Access:
    def __init__(self, action: Action, patient: PatientRule | None) -> None:
        self.action = action
        self.patient = patient

    async def __call__(
        self,
        request: Request,
        # Declared for the OpenAPI security scheme; the header is read by ``authorize``.
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        return await authorize(request, self.action, self.patient)


def access(action: Action, patient: PatientRule | None = None) -> Any:
    """The dependency that authorizes ``action`` (and documents its scopes in OpenAPI);
    ``patient``: how a token bound to a patient may use the route (app/security/patients.py;
    None: only if the action is about no one's data)."""
    return Security(_Access(action, patient), scopes=sorted(ACTIONS[action].scopes))


def _access_of(dependant: Dependant) -> _Access | None:
    """The access dependency of a route's dependency tree, if any."""
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, _Access):
            return dependency.call
        found = _access_of(dependency)
        if found is not None:
            return found
    return None


def action_of(dependant: Dependant) -> Action | None:
    """The action a route's dependency tree authorizes, if any."""
    found = _access_of(dependant)
    return None if found is None else found.action


class GuardedRoute(APIRoute):
    """A route that authorizes its action before FastAPI parses the body, so that a request
    without valid credentials learns nothing from how its body is parsed (401 first, even for
    a body that is not JSON) and a failure of an authenticated one is audited.

    The body's bytes are read first, as they arrive: FastAPI's body limit refuses a body over
    it (413) as it is read, so an oversized body is refused before anything else is done for
    it, credentials or not."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = _access_of(self.dependant)
        if declared is None:
            return handler
        action, patient_rule = declared.action, declared.patient

        async def guarded(request: Request) -> Response:
            await request.body()  # kept on the request, where FastAPI's handler reads it
            await authorize(request, action, patient_rule)
            return await handler(request)

        return guarded

"""The dependency every protected route declares: ``caller: Annotated[Caller, access(ACTION)]``.

In order, for each request: authenticate the bearer credential (401), count it against the
client's rate limit (429), check the action's scopes (403), and hand the route a ``Caller``
that services use to scope every query to the caller's tenant and to write the audit event.
It runs before the body is validated, so an unauthenticated request learns nothing about the
shape of what it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.audit.actions import ACTIONS, Action, resource_id_from_path
from app.audit.trail import Caller
from app.errors import Forbidden, TooManyRequests, Unauthorized
from app.security.authentication import Authenticator
from app.security.rate_limit import RateLimiter

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


class _Access:
    def __init__(self, action: Action) -> None:
        self.action = action
        self.required = ACTIONS[action].scopes

    async def __call__(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        guard: Guard = request.app.state.guard
        if credentials is None:
            raise Unauthorized(
                "Send credentials: Authorization: Bearer <API key or access token>.", error=None
            )
        principal = await guard.authenticator.authenticate(credentials.credentials)
        request.state.principal = principal
        quota = await guard.rate_limiter.hit(principal.client_id)
        request.state.quota = quota
        if not quota.allowed:
            raise TooManyRequests(
                f"This client made more than {quota.limit} requests in the current window; "
                f"retry in {quota.reset_seconds} s.",
                headers={"Retry-After": str(quota.reset_seconds)},
            )
        caller = Caller(
            principal=principal,
            action=self.action,
            request_id=getattr(request.state, "request_id", None),
            source_ip=request.client.host if request.client else None,
            resource_id=resource_id_from_path(request.path_params),
        )
        request.state.caller = caller  # failed requests are audited from the error handlers
        missing = principal.missing(self.required)
        if missing:
            needed = " ".join(sorted(missing))
            raise Forbidden(
                f"This client lacks the scope this operation needs: {needed}.",
                headers={
                    "WWW-Authenticate": f'Bearer realm="carelevel", error="insufficient_scope", '
                    f'scope="{" ".join(sorted(self.required))}"'
                },
            )
        return caller


def access(action: Action) -> Any:
    """The dependency that authorizes ``action`` (and documents its scopes in OpenAPI)."""
    return Security(_Access(action), scopes=sorted(ACTIONS[action].scopes))

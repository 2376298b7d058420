"""CORS: which browser origins may call which area of the service, answered by Starlette's
``CORSMiddleware`` (one instance per area; nothing here speaks the protocol itself).

- The CDS Hooks services (``/cds-services``) answer any origin by default
  (``CARELEVEL_CDS_CORS_ORIGINS``): the specification expects browser-based CDS clients, and
  every call carries a JWT the EHR signs for it, never a cookie.
- Everything else (``/v1``, ``/fhir/r4``, ...) answers the origins listed in
  ``CARELEVEL_CORS_ORIGINS`` only; none by default.

No area allows credentials: callers authenticate with ``Authorization``, never with cookies.

A preflight its area refuses gets 403 ``cors-refused`` in the area's representation (an
OperationOutcome under /fhir/), naming the setting to change and never the submitted origin,
where ``CORSMiddleware`` alone would answer a bare 400 text. Any other request passes whatever
its origin: only an allowed origin gets ``Access-Control-Allow-Origin``, and the browser keeps
the answer from the page of any other.

``Cors`` wraps the request's deadline, the compression and the fast lane (app/main.py): their
answers carry the headers too, the deadline's 503 included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Response
from starlette._utils import get_route_path
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from app.kernel.errors import Forbidden
from app.runtime.deadline import EdgeProblem

CDS_SERVICES = "/cds-services"
API_SETTING = "CARELEVEL_CORS_ORIGINS"
CDS_SETTING = "CARELEVEL_CDS_CORS_ORIGINS"

ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
# What clients send beyond the CORS-safelisted headers (Accept and Content-Type are safelisted
# only for some values, so they are listed too).
ALLOWED_HEADERS = (
    "Accept",
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "Prefer",
    "X-Request-ID",
)
# What a page may read of an answer beyond the CORS-safelisted response headers.
EXPOSED_HEADERS = (
    "Content-Disposition",
    "Content-Location",
    "ETag",
    "Idempotent-Replayed",
    "Location",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "WWW-Authenticate",
    "X-Request-ID",
)
# Chromium keeps a preflight at most 2 hours. Keeping it long is safe: the answer itself must
# still carry Access-Control-Allow-Origin, so an origin removed from the list loses access to
# the answers at once.
MAX_AGE_SECONDS = 7200


class CorsRefused(Forbidden):
    """A preflight from an origin (or asking for a method or header) the area does not allow."""

    slug, title = "cors-refused", "Cross-origin request refused"


@dataclass(frozen=True, slots=True)
class Area:
    """One CORS policy: its middleware, around the rest of the application, and its setting."""

    middleware: CORSMiddleware
    setting: str
    open: bool  # some origin is allowed: answers depend on the Origin

    def refusal(self, origin_allowed: bool) -> CorsRefused:
        """Why a preflight is refused, naming what an operator would change (never the
        submitted origin, method or headers)."""
        if not self.open:
            return CorsRefused(
                f"No browser origin may call this service across origins: the operator lists "
                f"the allowed origins in {self.setting}."
            )
        if not origin_allowed:
            return CorsRefused(
                f"This origin may not call this service: the operator lists the browser origins "
                f"allowed in {self.setting}."
            )
        return CorsRefused(
            "The preflight asks for a method or header this service does not accept: methods "
            f"{', '.join(ALLOWED_METHODS)}; headers {', '.join(ALLOWED_HEADERS)}."
        )


def area(app: ASGIApp, origins: Sequence[str], setting: str) -> Area:
    middleware = CORSMiddleware(
        app,
        allow_origins=tuple(origins),
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        max_age=MAX_AGE_SECONDS,
    )
    return Area(middleware, setting, open=bool(origins))


def is_cds_path(path: str) -> bool:
    return path == CDS_SERVICES or path.startswith(CDS_SERVICES + "/")


class Cors:
    """Answer preflights and add the CORS headers to answers, by the policy of the request's
    area; a preflight refused is a problem (``edge_problem``) naming the area's setting."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_origins: Sequence[str],
        cds_origins: Sequence[str],
        edge_problem: EdgeProblem,
    ) -> None:
        self.app = app
        self.api = area(app, api_origins, API_SETTING)
        self.cds = area(app, cds_origins, CDS_SETTING)
        self.edge_problem = edge_problem

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = get_route_path(scope)
        policy = self.cds if is_cds_path(path) else self.api
        if scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                await self._preflight(policy, headers, path)(scope, receive, send)
                return
        if policy.open:
            await policy.middleware(scope, receive, send)
        else:  # no origin is allowed: the answer is the same whatever the Origin
            await self.app(scope, receive, send)

    def _preflight(self, policy: Area, headers: Headers, path: str) -> Response:
        answer = policy.middleware.preflight_response(request_headers=headers)
        if answer.status_code < 400:
            return answer
        origin_allowed = policy.middleware.is_allowed_origin(headers["origin"])
        return self.edge_problem(path, policy.refusal(origin_allowed))

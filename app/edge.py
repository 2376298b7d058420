"""The outermost layer of every request: a request id, security headers, one access-log line.

The access line names the method, the route *template* (``/v1/screenings/{screening_id}``,
never the path with its values or the query string), the status, the duration, the request id
and the client and tenant once known. Bodies, headers and query strings are never logged: they
carry health information and credentials.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from app.operations.metrics import Metrics

logger = logging.getLogger("carelevel.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Pages a browser renders (the API explorer); everything else is API data.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DOCS_ASSETS = "/docs/assets/"

_EVERYWHERE = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_API_ONLY = (
    # API responses carry health information: no cache (browser, proxy) may keep them.
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
)
# The docs pages load nothing from elsewhere: their scripts, styles and images are served here
# (the pages' own inline bootstrap script and styles excepted; ReDoc searches in a worker).
_DOCS_ONLY = (
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
        b"style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
)
_ASSETS_ONLY = ((b"cache-control", b"public, max-age=86400"),)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is a plausible id, else a new UUID."""
    for name, value in headers:
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
            break
    return str(uuid.uuid4())


class Edge:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        is_asset = scope["path"].startswith(DOCS_ASSETS)
        is_docs = is_asset or scope["path"] in DOCS_PATHS
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                extra = (_DOCS_ONLY + _ASSETS_ONLY) if is_asset else _DOCS_ONLY
                for name, value in _EVERYWHERE + (extra if is_docs else _API_ONLY):
                    if name.decode() not in headers:
                        headers.raw.append((name, value))
                if scope.get("scheme") == "https":
                    headers.raw.append(_HSTS)
                quota = state.get("quota")
                if quota is not None:
                    for name, value in quota.headers().items():
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:  # already answered 500 and logged by type by the error handler
            status = 500
        finally:
            self._log(scope, state, status, time.perf_counter() - started)

    def _log(self, scope: Scope, state: dict[str, Any], status: int, seconds: float) -> None:
        route: str | None = getattr(scope.get("route"), "path", None)
        principal = state.get("principal")
        fields = {
            "method": scope["method"],
            "route": route or "-",
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": state["request_id"],
            "client_id": principal.client_id if principal else "-",
            "tenant": principal.tenant if principal else "-",
        }
        logger.info(
            "method=%s route=%s status=%d duration_ms=%.1f request_id=%s client_id=%s tenant=%s",
            *fields.values(),
            extra={"access": fields},  # the JSON log format writes these as its fields
        )
        if self.metrics is not None:
            self.metrics.request(scope["method"], route, status, seconds)

"""The outermost layer of every request: a request id, security headers, one access-log line.

The access line names the method, the route *template* (``/v1/screenings/{screening_id}``,
never the path with its values or the query string), the status, the duration, the request id
and the client and tenant once known. Bodies, headers and query strings are never logged: they
carry health information and credentials.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel.ids import random_uuid

if TYPE_CHECKING:
    from app.operations.metrics import Metrics
    from app.security.rate_limit import Quotas

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
    return random_uuid()


_API_DEFAULTS = _EVERYWHERE + _API_ONLY
_DOCS_DEFAULTS = _EVERYWHERE + _DOCS_ONLY
_ASSETS_DEFAULTS = _EVERYWHERE + _DOCS_ONLY + _ASSETS_ONLY
_ACCESS_FORMAT = (
    "method=%s route=%s status=%d duration_ms=%.1f request_id=%s client_id=%s tenant=%s"
)


class Edge:
    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self._unwritten: list[_AccessEntry] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope["headers"])
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        path: str = scope["path"]
        defaults: tuple[tuple[bytes, bytes], ...]
        if path.startswith(DOCS_ASSETS):
            defaults = _ASSETS_DEFAULTS
        else:
            defaults = _DOCS_DEFAULTS if path in DOCS_PATHS else _API_DEFAULTS
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _with_edge_headers(
                    message.get("headers", ()), request_id, defaults, scope, state.get("quota")
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:  # already answered 500 and logged by type by the error handler
            status = 500
        finally:
            seconds = time.perf_counter() - started
            route: str | None = getattr(scope.get("route"), "path", None)
            if self.metrics is not None:
                self.metrics.request(scope["method"], route, status, seconds)
            self._log_later((scope["method"], route, status, seconds, request_id, state))

    def _log_later(self, entry: _AccessEntry) -> None:
        """Write the access line once the event loop's current turn is over, with the lines
        of every other request that ended in it. Under load many requests end in one turn, and
        writing their lines back to back costs a fraction of writing each between two
        requests' work (see docs/performance.md); alone, a request's line follows at once."""
        if not self._unwritten:
            asyncio.get_running_loop().call_soon(self._write_access_lines)
        self._unwritten.append(entry)

    def _write_access_lines(self) -> None:
        entries, self._unwritten = self._unwritten, []
        if not logger.isEnabledFor(logging.INFO):
            return
        for method, route, status, seconds, request_id, state in entries:
            principal = state.get("principal")
            fields = {
                "method": method,
                "route": route or "-",
                "status": status,
                "duration_ms": round(seconds * 1000, 1),
                "request_id": request_id,
                "client_id": principal.client_id if principal else "-",
                "tenant": principal.tenant if principal else "-",
            }
            # logger.info() would first walk the stack for the caller's file and line, which
            # no formatter here prints: the record is made and handled directly instead.
            record = logger.makeRecord(
                logger.name,
                logging.INFO,
                __file__,
                0,
                _ACCESS_FORMAT,
                tuple(fields.values()),
                None,
                extra={"access": fields},  # the JSON log format writes these as its fields
            )
            logger.handle(record)


# method, route template, status, seconds, request id, request state (its principal)
_AccessEntry = tuple[str, str | None, int, float, str, dict[str, Any]]


def _with_edge_headers(
    headers: Iterable[tuple[bytes, bytes]],
    request_id: str,
    defaults: tuple[tuple[bytes, bytes], ...],
    scope: Scope,
    quota: Quotas | None,
) -> list[tuple[bytes, bytes]]:
    """The response's headers with the request id, the security defaults it does not set
    itself, HSTS over HTTPS and the rate-limit fields (replacing any of the same name)."""
    replaced = {b"x-request-id"}
    added = [(b"x-request-id", request_id.encode("latin-1"))]
    if quota is not None:
        for name, value in quota.raw_headers():
            replaced.add(name)
            added.append((name, value))
    kept = [(name, value) for name, value in headers if name.lower() not in replaced]
    present = {name.lower() for name, _ in kept}
    kept += [header for header in defaults if header[0] not in present]
    if scope.get("scheme") == "https":
        kept.append(_HSTS)
    return kept + added

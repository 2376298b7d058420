"""GZip for large responses, when the client accepts it (``Accept-Encoding: gzip``): the OpenAPI
document and the docs pages' assets (about 2.5 MB, under 0.6 MB gzipped), the questionnaire, a
determination with its trace, long pages of screenings or audit events, rule-set exports.

One layer, just inside the edge and outside the fast lane, so a screening answered by the lane
and one answered by FastAPI's stack go out the same way. Responses below ``LARGE`` go out as they
are: compressing the few kilobytes of a default determination costs the hot path about 0.1 ms
of CPU for little gain between services. A client that does not accept gzip never meets
Starlette's middleware at all (it would otherwise wrap every response's ``send``).
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# A default determination is 5-10 KB; with its trace, 15-25 KB; the questionnaire about 65 KB.
LARGE = 16 * 1024
# zlib's default: within a few percent of level 9 on JSON and JavaScript, several times faster.
COMPRESS_LEVEL = 6


def accepts_gzip(scope: Scope) -> bool:
    """Whether an ``Accept-Encoding`` header names gzip with a weight above 0 (RFC 9110
    §12.5.3; Starlette's middleware compresses only for a named gzip)."""
    for name, value in scope["headers"]:
        if name != b"accept-encoding":
            continue
        for coding in value.lower().split(b","):
            token, _, parameters = coding.partition(b";")
            if token.strip() == b"gzip" and not _refused(parameters):
                return True
    return False


_ZERO_WEIGHTS = frozenset({b"0", b"0.", b"0.0", b"0.00", b"0.000"})


def _refused(parameters: bytes) -> bool:
    """Whether ``;q=…`` gives the weight 0."""
    name, _, weight = parameters.partition(b"=")
    return name.strip() == b"q" and weight.strip() in _ZERO_WEIGHTS


class Compression:
    """Starlette's GZipMiddleware for the requests that accept gzip, responses of ``LARGE`` or
    more; every other request passes through untouched. Bodies of 128 KiB or more are
    compressed in a worker thread (Starlette's own rule), off the event loop."""

    def __init__(self, app: ASGIApp, minimum_size: int = LARGE) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=COMPRESS_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and accepts_gzip(scope):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)

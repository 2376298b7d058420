"""GZip for the documents a browser downloads to show the API docs, when it accepts it
(``Accept-Encoding: gzip``): the OpenAPI document and the Swagger UI and ReDoc assets. /docs
loads about 2.5 MB of them, under 0.6 MB gzipped.

API responses are sent as they are. The screening operations are answered two ways, by the fast
lane and by FastAPI's stack, which must give the same bytes and headers; compressing a response
of a few kilobytes costs the hot path more time than it saves between services.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# Below this, compression saves less than it costs (Starlette's default is 500 bytes).
MINIMUM_SIZE = 1024
# zlib's default: within a few percent of level 9 on JSON and JavaScript, several times faster.
COMPRESS_LEVEL = 6


class CompressedDocuments:
    """Starlette's GZipMiddleware for the requests whose path starts with one of ``prefixes``;
    every other request passes through untouched."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = prefixes
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=COMPRESS_LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefixes):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)

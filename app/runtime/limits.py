"""Request-body cap, enforced before anything parses the body (chunked bodies included)."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import FHIR_JSON, PROBLEM_BASE, PROBLEM_JSON
from app.fhir.outcome import operation_outcome


class BodySizeLimit:
    """Reject bodies over ``max_bytes`` with 413 problem+json.

    The body is read (at most ``max_bytes`` + one chunk) before the application sees it, so an
    oversized chunked body is refused as surely as one with a large Content-Length.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: tuple[tuple[str, int], ...] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger  # (path prefix, limit) pairs for routes that take documents

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = next(
            (size for prefix, size in self.larger if scope["path"].startswith(prefix)),
            self.max_bytes,
        )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit, scope["path"])
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; let the application see the disconnect
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, limit, scope["path"])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, limit: int, path: str) -> None:
        detail = f"The request body exceeds the limit of {limit} bytes."
        if path.startswith("/fhir/"):
            media_type = FHIR_JSON
            body: dict[str, object] = operation_outcome(413, detail)
        else:
            media_type = PROBLEM_JSON
            body = {
                "type": PROBLEM_BASE + "request-too-large",
                "title": "The request body is too large",
                "status": 413,
                "detail": detail,
            }
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", media_type.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

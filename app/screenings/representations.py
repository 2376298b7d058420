"""The media types a screening's determination is answered in: JSON, the default, or as people
read it (``app/screenings/readable.py``) as an HTML page, Markdown or plain text.

``negotiated`` picks one from the request's ``Accept`` (406 when none fits); every answer of a
negotiating operation says ``Vary: Accept``, so that no cache hands one representation to a
client that asked for another. The HTML page brings its own Content-Security-Policy: the API's
(nothing loads, nothing frames it) with its one inline stylesheet allowed by hash.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import Request, Response

from app.kernel.errors import NotAcceptable, problem, problem_example
from app.kernel.negotiation import accept_header, preferred
from app.kernel.responses import JSON
from app.screenings.readable import STYLE_SOURCE, Readable, html_page, markdown, plain_text

HTML: Final = "text/html"
MARKDOWN: Final = "text/markdown"
PLAIN: Final = "text/plain"
OFFERED: Final = (JSON, HTML, MARKDOWN, PLAIN)
VARY: Final = {"Vary": "Accept"}
PAGE_POLICY: Final = (
    f"default-src 'none'; style-src {STYLE_SOURCE}; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def negotiated(request: Request) -> str:
    """The offered media type the request's ``Accept`` prefers (JSON without one)."""
    chosen = preferred(accept_header(request.scope["headers"]), OFFERED)
    if chosen is None:
        raise NotAcceptable(
            f"The Accept header allows none of the media types offered: {', '.join(OFFERED)}.",
            headers=VARY,
            extra={"available": list(OFFERED)},
        )
    return chosen


def readable_response(media_type: str, readable: Readable) -> Response:
    """``readable`` as ``media_type`` (HTML, Markdown or plain text), varying by Accept."""
    if media_type == HTML:
        page = html_page(readable)
        return Response(page, media_type=HTML, headers=VARY | page_headers())
    text = markdown(readable) if media_type == MARKDOWN else plain_text(readable)
    return Response(text, media_type=media_type, headers=VARY)


def page_headers() -> dict[str, str]:
    """What a page of the readable view sends: its policy, and nothing cached or referred."""
    return {
        "Content-Security-Policy": PAGE_POLICY,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }


def readable_openapi(what: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of an operation that negotiates: its 200 in every offered
    media type (JSON's schema comes from the route's response model), and its 406."""
    text = {"schema": {"type": "string"}}
    return {
        200: {
            "description": f"{what} JSON by default (`Accept: application/json`, `*/*` or no "
            "Accept); `text/html` gives a page to read and print (accessible, self-contained), "
            "`text/markdown` and `text/plain` the same content as text. The readable forms "
            "show the summary first, the safety alerts before anything else, and never the "
            "trace.",
            "content": {HTML: text, MARKDOWN: text, PLAIN: text},
        },
        406: problem(
            "The Accept header allows none of the media types offered (listed in `available`).",
            problem_example(
                NotAcceptable,
                f"The Accept header allows none of the media types offered: {', '.join(OFFERED)}.",
                available=list(OFFERED),
            ),
        ),
    }

"""The clinician's view of a stored screening: the readable page, opened from a short-lived
signed link without an API key (the links CDS Hooks cards carry; ``app/security/links.py``).

The link is the authority: it names the screening, its tenant and the client it was made for,
and only a genuine, unexpired one is answered. Every opening is recorded in the audit trail as
``screening.view``, on behalf of that client. A tampered link is refused 403 and an expired one
410, as a page for a browser and as problem+json otherwise. Not an operation of the API (it is
left out of the OpenAPI document): a page for people.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request, Response

from app.kernel.errors import PROBLEM_JSON, AppError, Forbidden, Gone
from app.kernel.negotiation import accept_header, preferred
from app.screenings.bodies import screening_readable
from app.screenings.readable import error_page, html_page
from app.screenings.representations import HTML, page_headers
from app.screenings.service import ScreeningService
from app.security.access import source_address
from app.security.actions import Action
from app.security.caller import Caller
from app.security.links import LinkExpired, LinkRefused, LinkSigner, ViewGrant
from app.security.principal import Principal

router = APIRouter(tags=["screenings"], include_in_schema=False)

VIEW_PATH = "/v1/screenings/{screening_id}/view"


def view_url(base_url: str, screening_id: str, query: dict[str, str]) -> str:
    """The address of a screening's view with a link's query (``LinkSigner.sign``)."""
    return f"{base_url}{VIEW_PATH.format(screening_id=screening_id)}?{urlencode(query)}"


@router.get(VIEW_PATH)
async def view_screening(
    request: Request,
    screening_id: Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9-]+$")],
) -> Response:
    signer: LinkSigner = request.app.state.link_signer
    try:
        grant = signer.verify(screening_id, request.query_params, time.time())
    except LinkExpired:
        return _refused(
            request,
            Gone("This link has expired: open the screening again from the chart for a new one."),
        )
    except LinkRefused:
        return _refused(request, Forbidden("This link is not valid: it was changed or cut short."))
    caller = _caller_of(request, grant)
    service: ScreeningService = request.app.state.screening_service
    body, _ = await service.get(caller, grant.screening_id, asking=False)
    return Response(html_page(screening_readable(body)), media_type=HTML, headers=page_headers())


def _caller_of(request: Request, grant: ViewGrant) -> Caller:
    """The caller of an opening: the client the link was made for, acting through it (no
    scope: the link is what allows the reading). Kept on the request, so that the access line
    names it and a failure is recorded."""
    principal = Principal(
        tenant=grant.tenant,
        client_id=grant.client_id,
        scopes=frozenset(),
        label=f"{grant.client_id} (signed view link)",
    )
    request.state.principal = principal
    caller = Caller(
        principal=principal,
        action=Action.SCREENING_VIEW,
        request_id=getattr(request.state, "request_id", None),
        source_ip=source_address(request),
        resource_id=grant.screening_id,
    )
    request.state.caller = caller
    return caller


def _refused(request: Request, error: AppError) -> Response:
    """A refused link: a page for a browser, the problem for anything else."""
    wanted = preferred(accept_header(request.scope["headers"]), (PROBLEM_JSON, HTML))
    if wanted != HTML:
        raise error
    page = error_page(error.title, error.detail)
    return Response(page, error.status, headers=page_headers(), media_type=HTML)

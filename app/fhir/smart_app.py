"""The SMART App Launch intake app (SMART App Launch 2.x): an EHR opens ``/smart/launch``
with its FHIR base (``iss``) and a ``launch`` context, or a clinician opens it on its own (the
first configured EHR). The browser discovers the EHR's endpoints, signs in with the
authorization code flow and PKCE (a public client), reads the patient's chart, has carelevel
pre-fill its Questionnaire (``$populate``), evaluates the answers (``$evaluate``) and files the
result back in the EHR when the granted scopes allow it.

The pages and their scripts are static (app/static/smart); this module serves them with a
Content-Security-Policy that lets them talk to carelevel and to the configured EHRs alone, the
configuration they read (``GET /smart/config``), and the refusal of a launch from an EHR not
configured in ``CARELEVEL_SMART_APPS`` (the app never sends anyone to an authorization server
it does not know).
"""

from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from app.fhir.chart import CHART_QUERIES
from app.fhir.terminology import Vocabulary
from app.kernel.settings import Settings
from app.kernel.smart_apps import SmartApp

ASSETS_DIRECTORY: Final = Path(__file__).parents[1] / "static" / "smart"
ASSETS_PATH: Final = "/smart/assets"
LAUNCH_PATH: Final = "/smart/launch"
APP_PATH: Final = "/smart/app"
CONFIG_PATH: Final = "/smart/config"
# An opaque launch context as EHRs send it; anything longer or with controls is not one.
LAUNCH_PATTERN: Final = re.compile(r"^[\x21-\x7e]{1,1000}$")

router = APIRouter(include_in_schema=False)


def page_policy(apps: list[SmartApp]) -> str:
    """The Content-Security-Policy of the app's pages: its own scripts and styles only, and
    requests to carelevel and to the configured EHRs' FHIR and authorization servers."""
    origins = dict.fromkeys(origin for app in apps for origin in app.origins)
    connect = " ".join(("'self'", *origins))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def app_config(apps: list[SmartApp], vocabulary: Vocabulary) -> dict[str, Any]:
    """What the pages need: each EHR's client registration, the redirect path, the chart
    searches (relative to the EHR's FHIR base, ``{{context.patientId}}`` to fill in) and the
    extension ``$populate`` marks the answers it took from the chart with."""
    return {
        "apps": [
            {
                "iss": app.iss,
                "client_id": app.client_id,
                "scope": app.scope,
                "origins": list(app.origins),
            }
            for app in apps
        ],
        "redirect_path": APP_PATH,
        "chart_queries": dict(CHART_QUERIES),
        "populated_from": vocabulary.answer_source,
    }


def launch_refusal(apps: list[SmartApp], iss: str | None, launch: str | None) -> str | None:
    """Why a launch cannot start, or None when it can. Never repeats what was sent."""
    if not apps:
        return "No EHR is configured for this app: ask the administrator to set it up."
    if launch is not None and not LAUNCH_PATTERN.fullmatch(launch):
        return "The launch context the EHR sent is not one: launch the app from the EHR again."
    if iss is not None and iss.rstrip("/") not in {app.iss for app in apps}:
        return (
            "This app was launched by an EHR it is not configured for, so it will not sign "
            "in there. Ask the administrator to add the EHR's FHIR address."
        )
    if iss is None and launch is not None:
        return "An EHR launch must name the EHR's FHIR address (iss)."
    return None


def repeated_refusal(parameters: list[tuple[str, str]]) -> str | None:
    """Why a launch naming its EHR or its context more than once cannot start: which of the
    values counts is the reader's guess, and the page and the server must not guess apart."""
    names = [name for name, _ in parameters]
    if names.count("iss") > 1 or names.count("launch") > 1:
        return "The launch names its EHR or its context more than once: launch the app again."
    return None


def _page(name: str) -> str:
    return (ASSETS_DIRECTORY / name).read_text(encoding="utf-8")


LAUNCH_PAGE: Final = _page("launch.html")
APP_PAGE: Final = _page("app.html")
ERROR_PAGE: Final = _page("error.html")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Security-Policy": page_policy(settings.smart_apps),
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
    }


@router.get(LAUNCH_PATH)
async def launch(
    request: Request,
    iss: Annotated[str | None, Query()] = None,
    launch: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    """The launch page, or a page saying why the launch is refused."""
    settings = _settings(request)
    refusal = repeated_refusal(request.query_params.multi_items()) or launch_refusal(
        settings.smart_apps, iss, launch
    )
    if refusal is not None:
        page = ERROR_PAGE.replace("{{message}}", escape(refusal))
        return HTMLResponse(page, status_code=400, headers=_headers(settings))
    return HTMLResponse(LAUNCH_PAGE, headers=_headers(settings))


@router.get(APP_PATH)
async def smart_app(request: Request) -> HTMLResponse:
    """The redirect target of the sign-in, and the app itself."""
    return HTMLResponse(APP_PAGE, headers=_headers(_settings(request)))


@router.get(CONFIG_PATH)
async def config(request: Request) -> JSONResponse:
    """The configured EHRs as the pages need them (public: client ids of public clients)."""
    settings = _settings(request)
    return JSONResponse(app_config(settings.smart_apps, Vocabulary(settings.canonical_base)))


def install_smart_app(app: FastAPI) -> None:
    """Serve the SMART app's pages, configuration and assets."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="smart-assets")
    app.include_router(router)

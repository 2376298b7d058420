"""The API explorer (/docs, Swagger UI) and reference (/redoc, ReDoc), served entirely by the
service: their JavaScript and CSS are vendored under app/static/docs (VENDORED.json names the
releases and checksums), so the pages work on networks with no access to public CDNs."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIRECTORY = Path(__file__).parents[1] / "static" / "docs"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
OPENAPI_PATH = "/openapi.json"
OAUTH2_REDIRECT_PATH = "/docs/oauth2-redirect"

SWAGGER_UI_PARAMETERS = {
    "dom_id": "#swagger-ui",
    "layout": "BaseLayout",
    "deepLinking": True,
    "displayRequestDuration": True,
    "defaultModelsExpandDepth": 0,
    "docExpansion": "list",
    "filter": True,
    # The key typed into Authorize stays in the page, not in the browser's storage.
    "persistAuthorization": False,
    "tryItOutEnabled": False,
    "validatorUrl": None,
}


# What a server bound to every interface is reached at from the machine it runs on.
_LOOPBACK_OF_WILDCARD = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


def docs_address(host: str, port: int) -> str:
    """The URL of the API explorer of a server bound to ``host`` and ``port``, as a browser on
    the same machine opens it."""
    host = _LOOPBACK_OF_WILDCARD.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{port}{DOCS_PATH}"


def install_docs_pages(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (the app is built with docs_url=None), and send a
    visitor of / to /docs."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="docs-assets")
    title = f"{app.title} {app.version}"

    # Not an operation of the API (left out of the OpenAPI document, like the pages): a
    # browser pointed at the bare address lands on the explorer. Temporary (307), so that no
    # browser keeps it should / ever serve something else.
    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(DOCS_PATH, status_code=307)

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title}: API explorer",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_PATH,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(OAUTH2_REDIRECT_PATH, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title}: API reference",
            redoc_js_url=f"{ASSETS_PATH}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS_PATH}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )

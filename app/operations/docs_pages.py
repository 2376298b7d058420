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
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_DIRECTORY = Path(__file__).parents[1] / "static" / "docs"
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


def install_docs_pages(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (the app is built with docs_url=None)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="docs-assets")
    title = f"{app.title} {app.version}"

    @app.get("/docs", include_in_schema=False)
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

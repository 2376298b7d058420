"""/docs and /redoc are served whole by the service: they work on a network with no CDN; / leads
to /docs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.operations.docs_pages import ASSETS_DIRECTORY, docs_address
from tests.support.apps import http_client

VENDORED = json.loads((ASSETS_DIRECTORY / "VENDORED.json").read_text())
# src= and href= attributes, and url(...) in inline styles.
REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(["']?([^"')]+)""")


def vendored_files() -> list[tuple[str, str, str]]:
    return [
        (directory, name, digest)
        for directory, release in VENDORED.items()
        for name, digest in release["files"].items()
    ]


@pytest.mark.parametrize(("directory", "name", "digest"), vendored_files())
def test_the_vendored_assets_are_the_pinned_releases(
    directory: str, name: str, digest: str
) -> None:
    path: Path = ASSETS_DIRECTORY / directory / name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, (
        f"{path} is not the file of {VENDORED[directory]['package']} "
        f"{VENDORED[directory]['version']}: run make docs-assets"
    )


def test_each_vendored_release_ships_its_licence() -> None:
    for directory, release in VENDORED.items():
        assert "LICENSE" in release["files"], directory
        assert set(release["files"]) == {p.name for p in (ASSETS_DIRECTORY / directory).iterdir()}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_pages_reference_only_the_services_own_assets(
    client: httpx.AsyncClient, page: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    references = [a or b for a, b in REFERENCE.findall(html)]
    assert references, "the page loads its script"
    for reference in references:
        assert reference.startswith("/"), f"{page} loads {reference} from elsewhere"
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
    assert "http://" not in html
    assert "https://" not in html
    assert "/openapi.json" in html


async def test_assets_are_cached_by_browsers_and_the_pages_are_not(
    client: httpx.AsyncClient,
) -> None:
    asset = await client.get("/docs/assets/redoc/redoc.standalone.js")
    assert asset.status_code == 200
    assert asset.headers["cache-control"] == "public, max-age=86400"
    assert asset.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    missing = await client.get("/docs/assets/swagger-ui/../../../settings.py")
    assert missing.status_code == 404


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_the_bare_address_leads_to_the_api_explorer(
    app: FastAPI, client: httpx.AsyncClient, method: str
) -> None:
    async with http_client(app, None) as anonymous:
        response = await anonymous.request(method, "/")
        assert response.status_code == 307
        assert response.headers["location"] == "/docs"
        assert response.content == b""
        explorer = await anonymous.get(response.headers["location"])
    assert explorer.status_code == 200
    assert explorer.headers["content-type"].startswith("text/html")
    # A page, like /docs itself, not an operation of the API.
    assert "/" not in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.parametrize(
    ("host", "port", "address"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000/docs"),
        ("localhost", 8080, "http://localhost:8080/docs"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000/docs"),  # every interface: this machine's
        ("::", 9000, "http://[::1]:9000/docs"),
        ("::1", 9000, "http://[::1]:9000/docs"),
        ("10.1.2.3", 80, "http://10.1.2.3:80/docs"),
    ],
)
def test_serve_names_the_explorer_at_the_address_it_binds(
    host: str, port: int, address: str
) -> None:
    assert docs_address(host, port) == address

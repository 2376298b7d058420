"""Cross-origin calls as a real browser makes them: a page served from another origin (a second
local HTTP server) calls carelevel's /v1, /fhir/r4/metadata and CDS Hooks discovery with
fetch(). The origin listed in CARELEVEL_CORS_ORIGINS reads every answer; another origin is
blocked by the browser from /v1 and /fhir/r4, and still reads the CDS services (any origin by
default, each call carrying its own JWT).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import BrowserContext, Page, Route

from tests.browser.conftest import HOST, REPORTS
from tests.server_support import running_server, server_environment
from tests.support.examples import example
from tests.support.tokens import public_jwk

EHR_KEY = ec.generate_private_key(ec.SECP384R1())
EHR_ISSUER = "https://ehr.example.test"
EHR_CLIENT = {
    "name": "browser-ehr",
    "issuer": EHR_ISSUER,
    "jwks": {"keys": [public_jwk(EHR_KEY, "ehr-1", use="sig")]},
    "tenant": "default",
}
# The address the EHR calls carelevel at, as configured: the audience of its JWTs.
PUBLIC_URL = "https://carelevel.example"

# The page's script: each call's status and the request id the page could read, or the
# browser's refusal (fetch rejects with a TypeError: the page learns nothing more).
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Intake</title></head><body>
<script>
async function attempt(url, init) {
  try {
    const response = await fetch(url, init);
    await response.text();
    return {status: response.status, requestId: response.headers.get("X-Request-ID")};
  } catch (error) {
    return {blocked: error.name};
  }
}
window.callCarelevel = async ({base, apiKey, cdsToken, answers}) => ({
  evaluate: await attempt(base + "/v1/screenings/evaluate", {
    method: "POST",
    headers: {"Authorization": "Bearer " + apiKey, "Content-Type": "application/json"},
    body: JSON.stringify({answers}),
  }),
  metadata: await attempt(base + "/fhir/r4/metadata", {
    headers: {"Accept": "application/fhir+json"},
  }),
  discovery: await attempt(base + "/cds-services", {
    headers: {"Authorization": "Bearer " + cdsToken},
  }),
});
</script></body></html>
"""


class PageHandler(BaseHTTPRequestHandler):
    """Serves the page at every path; logs nothing."""

    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def page_server() -> Iterator[str]:
    """A server of the page on a free loopback port, for the block; yields its origin."""
    server = ThreadingHTTPServer((HOST, 0), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Carelevel:
    base_url: str
    api_key: str
    allowed_origin: str
    refused_origin: str


@pytest.fixture(scope="module")
def carelevel() -> Iterator[Carelevel]:
    """Two page origins, and ``carelevel serve`` allowing the first (CARELEVEL_CORS_ORIGINS)
    with one CDS client configured; all stopped at the end. Its log goes to reports/browser/."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="carelevel-cors-"))
    key = ""
    try:
        with page_server() as allowed, page_server() as refused:
            env = server_environment(
                work / "carelevel.db",
                cors_origins=json.dumps([allowed]),
                cds_clients=json.dumps([EHR_CLIENT]),
                public_url=PUBLIC_URL,
            )
            with running_server(work, env) as server:
                key = server.printed_key()
                yield Carelevel(server.base_url, key, allowed, refused)
    finally:
        for log in work.glob("server-*.log"):
            text = log.read_text()
            redacted = text.replace(key, "clk_…(redacted)") if key else text
            (REPORTS / "cors-server.log").write_text(redacted)
        shutil.rmtree(work, ignore_errors=True)


def cds_token(audience: str) -> str:
    """The JWT the EHR signs for one call (CDS Hooks 2.0: aud is the endpoint called)."""
    now = int(time.time())
    claims = {"iss": EHR_ISSUER, "aud": audience, "exp": now + 300, "iat": now}
    claims["jti"] = str(uuid.uuid4())
    return jwt.encode(claims, EHR_KEY, "ES384", headers={"kid": "ehr-1", "typ": "JWT"})


def offline(route: Route) -> None:
    """Requests to anywhere but this machine fail, as with no internet."""
    if urlsplit(route.request.url).hostname == HOST:
        route.continue_()
    else:
        route.abort("internetdisconnected")


def calls_from(context: BrowserContext, origin: str, service: Carelevel) -> dict[str, Any]:
    """What the page served from ``origin`` gets when it calls carelevel."""
    context.route("**/*", offline)
    page: Page = context.new_page()
    loaded = page.goto(origin + "/intake")
    assert loaded is not None
    assert loaded.status == 200
    arguments = {
        "base": service.base_url,
        "apiKey": service.api_key,
        "cdsToken": cds_token(PUBLIC_URL + "/cds-services"),
        "answers": example("adult-iop-suitable"),
    }
    results: dict[str, Any] = page.evaluate("(arguments) => callCarelevel(arguments)", arguments)
    return results


def test_the_configured_origin_reads_every_answer(
    context: BrowserContext, carelevel: Carelevel
) -> None:
    results = calls_from(context, carelevel.allowed_origin, carelevel)
    for name in ("evaluate", "metadata", "discovery"):
        assert results[name]["status"] == 200, (name, results)
        assert results[name]["requestId"], name  # an exposed header the page can read


def test_another_origin_is_blocked_by_the_browser_except_from_the_cds_services(
    context: BrowserContext, carelevel: Carelevel
) -> None:
    results = calls_from(context, carelevel.refused_origin, carelevel)
    assert results["evaluate"] == {"blocked": "TypeError"}, results
    assert results["metadata"] == {"blocked": "TypeError"}, results
    assert results["discovery"]["status"] == 200, results

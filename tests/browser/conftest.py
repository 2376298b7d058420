"""Browser tests of the API explorer (/docs) and reference (/redoc), run by ``make browser``.

They start a real ``carelevel serve`` and drive the system Chromium through Playwright, so
they are not part of the default ``pytest`` run: a test module here is collected only when
this directory (or a file in it) is named on the command line (``pytest tests/browser``).
A missing Chromium fails them; it never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from tests.collection import collected_only_when_named
from tests.server_support import running_server, server_environment

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REPORTS = ROOT / "reports" / "browser"
HOST = "127.0.0.1"
# How long any one step may take (starting the browser, loading a page, an element appearing,
# a response arriving), on a loaded machine too: every step waits for its condition and goes on
# the moment it holds, so this bound costs nothing when all is well.
PAGE_TIMEOUT_MS = 30_000
# Collects Content-Security-Policy violations as the page reports them to itself.
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI}`);
});
"""


pytest_ignore_collect = collected_only_when_named(HERE)


@dataclass(frozen=True)
class Service:
    base_url: str
    api_key: str
    log: Path


@pytest.fixture(scope="session")
def service() -> Iterator[Service]:
    """``carelevel serve`` on a free loopback port with a fresh SQLite file, as a newcomer
    starts it: development mode, so the first start creates the local admin and prints its
    key, which the tests then use. The server is stopped at the end, pass or fail; its log
    (the key redacted) is kept in reports/browser/server.log."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="carelevel-browser-"))
    key = ""
    try:
        env = server_environment(work / "carelevel.db", log_level="INFO")
        with running_server(work, env) as server:
            key = server.printed_key()
            yield Service(base_url=server.base_url, api_key=key, log=server.stderr)
    finally:
        for log in work.glob("server-*.log"):  # one: the server's stderr
            text = log.read_text()
            redacted = text.replace(key, "clk_…(redacted)") if key else text
            (REPORTS / "server.log").write_text(redacted)
        shutil.rmtree(work, ignore_errors=True)


def chromium_executable() -> str:
    """The system Chromium (Debian's ``chromium``); CARELEVEL_CHROMIUM names another."""
    configured = os.environ.get("CARELEVEL_CHROMIUM")
    found = configured or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found or not os.access(found, os.X_OK):
        pytest.fail(
            "no Chromium: install Debian's `chromium` (apt-get install -y chromium) or set "
            f"CARELEVEL_CHROMIUM to its path (looked for: {configured or 'chromium on PATH'})"
        )
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    # The assertions (expect) wait as long as every other step, not their own default 5 s.
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(
        executable_path=chromium_executable(),
        headless=True,
        timeout=PAGE_TIMEOUT_MS,
        args=["--no-proxy-server", "--disable-dev-shm-usage"],
    )
    yield chromium
    chromium.close()


@dataclass
class Watch:
    """What went wrong on a page: requests to anywhere but the service (aborted, so the test
    runs as if there were no internet), failed requests, error responses, console errors and
    uncaught exceptions."""

    base_url: str
    offsite: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        if urlsplit(route.request.url).hostname == HOST:
            route.continue_()
        else:
            self.offsite.append(route.request.url)
            route.abort("internetdisconnected")

    def request_failed(self, request: Request) -> None:
        self.failed.append(f"{request.method} {request.url}: {request.failure}")

    def response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.request.method} {response.url}: {response.status}")

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")

    def problems(self, page: Page) -> list[str]:
        csp: list[str] = page.evaluate("window.__cspViolations || []")
        return (
            [f"off-host request (blocked by the test): {url}" for url in self.offsite]
            + [f"failed: {failure}" for failure in self.failed]
            + self.errors
            + [f"CSP violation: {violation}" for violation in csp]
        )


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context(
        viewport={"width": 1280, "height": 900}, service_workers="block", locale="en-US"
    )
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    opened.set_default_navigation_timeout(PAGE_TIMEOUT_MS)
    yield opened
    opened.close()


@pytest.fixture
def watch(service: Service) -> Watch:
    return Watch(base_url=service.base_url)


@pytest.fixture
def page(context: BrowserContext, watch: Watch) -> Page:
    context.route("**/*", watch.route)
    context.add_init_script(CSP_LISTENER)
    opened = context.new_page()
    opened.on("requestfailed", watch.request_failed)
    opened.on("response", watch.response)
    opened.on("console", watch.console)
    opened.on("pageerror", watch.page_error)
    return opened


AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def wcag_21_aa_check(page: Page) -> dict[str, Any]:
    """axe-core's WCAG 2.1 A and AA rules on the page as it is now: fails on any violation or
    when nothing was checked; returns axe's results. axe is evaluated in the page through the
    browser's protocol, which the page's Content-Security-Policy does not govern."""
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make browser` (npm ci in tests/browser)")
    page.evaluate(AXE.read_text())
    page.wait_for_function("() => typeof window.axe === 'object'")
    results: dict[str, Any] = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_21_AA
    )
    violations = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
    ]
    assert violations == [], json.dumps(violations, indent=2)
    assert results["passes"], "axe checked nothing"
    return results

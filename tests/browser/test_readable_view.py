"""The readable view of a stored screening, as a clinician's browser shows it: the page renders
under its own Content-Security-Policy with nothing loaded and nothing blocked, the safety
alerts come first, and axe-core (tests/browser/package.json, installed by ``make browser``)
finds no WCAG 2.1 A or AA violation. The screenshot is written to reports/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import PAGE_TIMEOUT_MS, REPORTS, Service, Watch, wcag_21_aa_check
from tests.support.examples import example


@pytest.fixture(scope="module")
def stored(service: Service) -> dict[str, Any]:
    """A stored screening whose page has a safety alert: the most marked part of a page."""
    headers = {"Authorization": f"Bearer {service.api_key}"}
    body = {"answers": example("emergency-suicide-risk"), "external_reference": "enc-browser-1"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as api:
        response = api.post("/v1/screenings", json=body)
    assert response.status_code == 201, response.text
    screening: dict[str, Any] = response.json()
    return screening


def open_view(page: Page, service: Service, screening_id: str) -> None:
    """GET /v1/screenings/{id} as a browser navigates to it (its own Accept), with the key."""
    page.set_extra_http_headers({"Authorization": f"Bearer {service.api_key}"})
    response = page.goto(f"{service.base_url}/v1/screenings/{screening_id}")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_the_view_renders_under_its_policy_safety_first(
    page: Page, watch: Watch, service: Service, stored: dict[str, Any]
) -> None:
    open_view(page, service, stored["id"])
    expect(page.locator("h1")).to_have_text("Level-of-care screening")
    headings = page.locator("h2")
    expect(headings.first).to_have_text("Safety alerts")
    expect(headings.nth(1)).to_have_text("Recommendation")
    expect(page.locator(".summary")).to_have_text(stored["summary"])
    # The stylesheet applied: the policy allowed it by its hash.
    alerts = page.locator("section.alerts")
    expect(alerts).to_have_css("border-top-color", "rgb(165, 14, 14)")
    page.screenshot(path=REPORTS / "screening-view.png", animations="disabled", full_page=True)
    assert watch.problems(page) == []


@pytest.fixture
def unenforced(browser: Browser) -> Iterator[BrowserContext]:
    """A context that lets the test add axe-core to a page whose policy allows no script (the
    page itself, its styles included, renders as it does anywhere)."""
    opened = browser.new_context(
        viewport={"width": 1280, "height": 900}, bypass_csp=True, locale="en-US"
    )
    opened.set_default_timeout(PAGE_TIMEOUT_MS)
    yield opened
    opened.close()


def test_axe_finds_no_wcag_21_aa_violation(
    unenforced: BrowserContext, service: Service, stored: dict[str, Any]
) -> None:
    page = unenforced.new_page()
    open_view(page, service, stored["id"])
    expect(page.locator("h1")).to_be_visible()
    results = wcag_21_aa_check(page)
    assert "color-contrast" in {rule["id"] for rule in results["passes"]}

"""A newcomer's first look, offline: open /docs, authorize with the key the first start
printed, run the example screening from the page and see a level of care; /redoc renders too.

Every request to a host other than the service is aborted and fails the test, as do failed
requests, error responses, console errors, uncaught exceptions and CSP violations. The
screenshots are written to reports/browser/ (a CI artifact).
"""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PAGE_TIMEOUT_MS, REPORTS, Service, Watch

METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
EVALUATE_PATH = "/v1/screenings/evaluate"
PAGE_TIMEOUT_S = PAGE_TIMEOUT_MS / 1000
# An element's box in page coordinates (a full-page screenshot's clip).
PAGE_BOX = """(element) => {
  const box = element.getBoundingClientRect();
  return {x: box.x + window.scrollX, y: box.y + window.scrollY, width: box.width,
          height: box.height};
}"""
REDACT = """(element, key) => {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    walker.currentNode.nodeValue = walker.currentNode.nodeValue.replaceAll(key, "clk_…(redacted)");
  }
}"""


@pytest.fixture(scope="module")
def openapi(service: Service) -> dict[str, Any]:
    with urllib.request.urlopen(
        f"{service.base_url}/openapi.json", timeout=PAGE_TIMEOUT_S
    ) as response:
        schema: dict[str, Any] = json.load(response)
    return schema


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        operation
        for item in schema["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_docs_authorize_and_run_the_example_screening(
    page: Page, watch: Watch, service: Service, openapi: dict[str, Any]
) -> None:
    evaluate = openapi["paths"][EVALUATE_PATH]["post"]
    assert evaluate["security"] == [{"bearer": ["screenings:write"]}]
    assert openapi["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    example = openapi["components"]["schemas"]["ScreeningRequest"]["examples"][0]
    levels = set(openapi["components"]["schemas"]["LevelOfCare"]["enum"])

    page.goto(f"{service.base_url}/docs")
    expect(page.locator(".info .title")).to_contain_text(openapi["info"]["title"])
    # docExpansion "list": every operation's summary is rendered under its tag.
    expect(page.locator(".opblock")).to_have_count(len(operations(openapi)))
    expect(page.locator(".errors-wrapper")).to_have_count(0)  # no schema resolution errors
    operation = page.locator(f"#operations-{evaluate['tags'][0]}-{evaluate['operationId']}")
    expect(operation.locator(".opblock-summary-path")).to_have_attribute("data-path", EVALUATE_PATH)

    # Authorize with the key the first start printed.
    page.locator(".auth-wrapper button.authorize").click()
    bearer = page.locator(".auth-container").filter(
        has=page.locator("h4 > code", has_text=re.compile(r"^bearer$"))
    )
    bearer.locator("input").fill(service.api_key)
    bearer.locator("button[type=submit]").click()
    expect(bearer.locator("h6")).to_have_text("Authorized")
    bearer.locator("button.btn-done").click()
    expect(page.locator(".modal-ux")).to_have_count(0)
    expect(page.locator(".auth-wrapper button.authorize.locked")).to_have_count(1)

    # Try it out with the prefilled example, Execute.
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    body = operation.locator("textarea.body-param__text")
    expect(body).not_to_have_value("")  # the example is filled in as the editor renders
    assert json.loads(body.input_value()) == example
    with page.expect_response(f"{service.base_url}{EVALUATE_PATH}") as sent:
        operation.locator("button.execute").click()
    assert sent.value.status == 200
    assert sent.value.request.headers["authorization"] == f"Bearer {service.api_key}"
    assert json.loads(sent.value.request.post_data or "null") == example

    # The page shows the response: HTTP 200 and a level of care.
    live = operation.locator(".live-responses-table tbody tr.response")
    expect(live.locator(".response-col_status")).to_have_text("200")
    shown = live.locator(".response-col_description .highlight-code code").first
    expect(shown).to_contain_text('"recommended_level"')
    determination = json.loads(shown.text_content() or "null")["determination"]
    assert determination["recommended_level"]["level"] in levels
    expect(shown).to_contain_text(determination["recommended_level"]["label"])

    # The operation from its summary down to the server's response; the key in the curl
    # command is redacted first.
    operation.locator(".curl-command").evaluate(REDACT, service.api_key)
    top = operation.evaluate(PAGE_BOX)
    bottom = operation.locator(".responses-inner > div").first.evaluate(PAGE_BOX)
    page.screenshot(
        path=REPORTS / "docs.png",
        animations="disabled",
        full_page=True,
        clip={
            "x": top["x"],
            "y": top["y"],
            "width": top["width"],
            "height": bottom["y"] + bottom["height"] - top["y"],
        },
    )
    assert watch.problems(page) == []


def open_redoc(page: Page, service: Service, openapi: dict[str, Any]) -> None:
    evaluate = openapi["paths"][EVALUATE_PATH]["post"]
    page.goto(f"{service.base_url}/redoc#operation/{evaluate['operationId']}")
    expect(page.locator("h1").first).to_contain_text(
        f"{openapi['info']['title']} ({openapi['info']['version']})"
    )
    expect(page.locator("[data-section-id^='operation/']")).to_have_count(len(operations(openapi)))
    expect(
        page.locator(f"[data-section-id='operation/{evaluate['operationId']}'] h2")
    ).to_have_text(evaluate["summary"])


def test_redoc_renders_the_reference(
    page: Page, watch: Watch, service: Service, openapi: dict[str, Any]
) -> None:
    open_redoc(page, service, openapi)
    page.screenshot(path=REPORTS / "redoc.png", animations="disabled")
    # Nothing from elsewhere: the vendored bundle's Redocly badge has an inline image
    # (scripts/vendor_docs_assets.py), so not even a blocked request or a CSP report.
    assert watch.problems(page) == []

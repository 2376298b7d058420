"""The FHIR Questionnaire drives a real form: LHC-Forms, the NLM's SDC renderer that EHRs
embed, renders it, validates a partly filled intake, and exports a QuestionnaireResponse that
carelevel decides exactly as it decides the same answers sent to the REST API.

LHC-Forms comes from npm (tests/browser/package.json, installed by ``make browser``) and is
served to the page from a made-up origin by the test itself, so the page loads nothing from the
network.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from app.fhir.examples import response_for
from app.fhir.terminology import Vocabulary
from tests.browser.conftest import HERE, REPORTS, Service

LFORMS = HERE / "node_modules" / "lforms" / "dist" / "lforms"
FORMS_ORIGIN = "http://forms.test"
FORM_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Intake</title>
<link rel="stylesheet" href="/lforms/webcomponent/styles.css"></head>
<body><main><div id="form"></div></main>
<script src="/lforms/webcomponent/assets/lib/zone.min.js"></script>
<script src="/lforms/webcomponent/lhc-forms.js"></script>
<script src="/lforms/fhir/R4/lformsFHIR.min.js"></script>
</body></html>"""
EXAMPLES = HERE.parents[1] / "examples"


def _serve_form_files(route: Route) -> None:
    """The form page and LHC-Forms' files; nothing else exists on the made-up origin."""
    path = route.request.url.removeprefix(FORMS_ORIGIN)
    if path == "/":
        route.fulfill(body=FORM_PAGE, content_type="text/html")
        return
    file = LFORMS / path.removeprefix("/lforms/")
    if path.startswith("/lforms/") and file.is_file() and LFORMS in file.resolve().parents:
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        route.fulfill(body=file.read_bytes(), content_type=kind)
        return
    route.fulfill(status=404, body="")


@pytest.fixture(scope="module")
def api(service: Service) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {service.api_key}"}
    with httpx.Client(base_url=service.base_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def form_page(context: BrowserContext) -> Page:
    if not (LFORMS / "webcomponent" / "lhc-forms.js").is_file():
        pytest.fail("LHC-Forms is not installed: run `make browser` (npm ci in tests/browser)")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    context.route(f"{FORMS_ORIGIN}/**", _serve_form_files)
    opened.goto(f"{FORMS_ORIGIN}/")
    opened.wait_for_function("() => !!(window.LForms && LForms.Util && LForms.Util.addFormToPage)")
    assert errors == []
    return opened


def _show(page: Page, questionnaire: dict[str, Any], response: dict[str, Any] | None) -> None:
    options = {"questionnaireResponse": response} if response else {}
    page.evaluate(
        "async ([q, options]) => { await LForms.Util.addFormToPage(q, 'form', options); }",
        [questionnaire, options],
    )


def _problems(page: Page) -> list[str] | None:
    """LHC-Forms' own validation of the form: None when it may be submitted."""
    found: list[str] | None = page.evaluate(
        "() => LForms.Util.checkValidity(document.getElementById('form'))"
    )
    return found


def test_lhc_forms_renders_validates_and_exports_what_carelevel_decides_as_rest(
    api: httpx.Client, form_page: Page
) -> None:
    questionnaire = api.get("/fhir/r4/Questionnaire/iop-level-of-care").json()
    vocabulary = Vocabulary(questionnaire["url"].rsplit("/Questionnaire/", 1)[0])
    # An intake in progress: the person was given 5 of the 11 instruments.
    answers = json.loads((EXAMPLES / "adult-iop-suitable.json").read_text())
    started = response_for(vocabulary, answers, subject=None)

    _show(form_page, questionnaire, None)
    # An instrument's items are asked once it was given; an empty form lacks only who and why.
    expect(form_page.get_by_text("PHQ-9 was given")).to_be_visible()
    expect(form_page.get_by_text("Little interest or pleasure in doing things")).to_have_count(0)
    empty = _problems(form_page) or []
    assert len(empty) == 2, empty  # age group and who answered
    assert not any("PHQ" in problem or "AUDIT" in problem for problem in empty)

    _show(form_page, questionnaire, started)
    # Published wording is what the person reads.
    expect(form_page.get_by_text("Little interest or pleasure in doing things")).to_be_visible()
    assert _problems(form_page) is None  # instruments never given do not block the form
    # Saying an instrument was given asks its items, and requires them.
    form_page.locator('[id="instruments.dast10.given/1/1|true"]').click()
    dast_item = form_page.get_by_text("Drug use other than for medical reasons").first
    expect(dast_item).to_be_visible()
    asked = _problems(form_page) or []
    assert len(asked) == 10, asked
    form_page.locator('[id="instruments.dast10.given/1/1|false"]').click()
    expect(dast_item).to_be_hidden()
    assert _problems(form_page) is None
    form_page.screenshot(path=str(REPORTS / "intake-form.png"), full_page=False)

    exported = form_page.evaluate(
        "() => LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', "
        "document.getElementById('form'))"
    )
    assert exported["questionnaire"] == f"{questionnaire['url']}|{questionnaire['version']}"
    evaluated = api.post(
        "/fhir/r4/QuestionnaireResponse/$evaluate",
        content=json.dumps(exported),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert evaluated.status_code == 200, evaluated.text
    screening_id = evaluated.json()["entry"][0]["resource"]["id"]
    stored = api.get(f"/v1/screenings/{screening_id}").json()
    rest = api.post("/v1/screenings/evaluate", json={"answers": answers}).json()
    assert stored["determination"] == rest["determination"]

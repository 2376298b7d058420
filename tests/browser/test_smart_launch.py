"""The SMART app end to end in Chromium: launched by a (fake) EHR or opened on its own, it
signs in with PKCE, reads the chart, shows carelevel's Questionnaire pre-filled from it, and
after the clinician completes it shows the determination and files the result in the EHR.
A sign-in it did not start, or one whose PKCE verifier the EHR refuses, goes no further."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from playwright.sync_api import Page, Route, expect

from app.fhir.examples import example_response
from app.fhir.terminology import Vocabulary
from tests.browser.conftest import REPORTS, Watch, wcag_21_aa_check
from tests.browser.fake_ehr import LAUNCH_ID, FakeEhr, challenge_of, running_ehr
from tests.server_support import running_server, server_environment

HEART_RATE = "medical.heart_rate_bpm"


@dataclass(frozen=True)
class Setup:
    carelevel: str
    ehr: FakeEhr


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    """The fake EHR, and carelevel configured to trust its tokens and to be launched by it."""
    work = Path(tempfile.mkdtemp(prefix="carelevel-smart-"))
    try:
        with running_ehr() as ehr:
            env = server_environment(
                work / "carelevel.db",
                identity_providers=json.dumps([ehr.identity_provider()]),
                smart_apps=json.dumps([ehr.smart_app()]),
                bootstrap_admin="false",
            )
            with running_server(work, env) as server:
                ehr.redirect_uri = f"{server.base_url}/smart/app"
                yield Setup(server.base_url, ehr)
    finally:
        for log in work.glob("server-*.log"):
            (REPORTS / "smart-server.log").write_text(log.read_text())
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def ehr(setup: Setup) -> FakeEhr:
    setup.ehr.grant_write = True
    setup.ehr.filed.clear()
    setup.ehr.refused_tokens.clear()
    setup.ehr.authorize_requests.clear()
    setup.ehr.token_requests.clear()
    return setup.ehr


def example_answers() -> list[tuple[str, list[dict[str, Any]]]]:
    """(linkId, answers) of the documented example response, in the order a person answers."""
    found: list[tuple[str, list[dict[str, Any]]]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if "answer" in item:
                found.append((item["linkId"], item["answer"]))
            walk(item.get("item", []))

    walk(example_response(Vocabulary("https://carelevel.dev/fhir"))["item"])
    return found


def answer(page: Page, link_id: str, answers: list[dict[str, Any]]) -> None:
    """Answers a question as a person does: ticks its options or types its value."""
    question = page.locator(f'[data-link-id="{link_id}"]')
    for value in answers:
        if "valueCoding" in value:
            coding = value["valueCoding"]
            question.locator(f'input[data-answer="{coding["system"]}|{coding["code"]}"]').check()
        elif "valueBoolean" in value:
            question.locator(f'input[data-answer="{str(value["valueBoolean"]).lower()}"]').check()
        else:
            number = value.get("valueInteger", value.get("valueDecimal"))
            question.locator("input").fill(str(number))


def complete_the_form(page: Page) -> None:
    """Answers every question of the example the chart did not answer; leaves the chart's."""
    for link_id, answers in example_answers():
        question = page.locator(f'[data-link-id="{link_id}"]')
        if "prefilled" in (question.get_attribute("class") or ""):
            continue
        answer(page, link_id, answers)


def expect_prefilled_form(page: Page) -> None:
    form = page.locator("#intake")
    expect(form).to_be_visible()
    expect(page.locator("#patient")).to_contain_text("Alex Rivera")
    heart_rate = page.locator(f'[data-link-id="{HEART_RATE}"]')
    expect(heart_rate.locator(".from-chart")).to_have_text("from the chart")
    expect(heart_rate.locator("input")).to_have_value("88")
    age = page.locator('[data-link-id="respondent.age_group"]')
    expect(age.locator(".from-chart")).to_be_visible()
    expect(age.locator('input[data-answer$="|adult"]')).to_be_checked()
    # Nothing the chart cannot say is marked: the PHQ-9 is the clinician's to give.
    expect(page.locator('[data-link-id="instruments.phq9.given"] .from-chart')).to_have_count(0)


def test_an_ehr_launch_reaches_the_prefilled_form_and_files_the_determination(
    page: Page, watch: Watch, setup: Setup, ehr: FakeEhr
) -> None:
    page.goto(f"{setup.carelevel}/smart/launch?iss={ehr.iss}&launch={LAUNCH_ID}")
    expect_prefilled_form(page)
    page.screenshot(path=REPORTS / "smart-form.png", animations="disabled", full_page=True)
    wcag_21_aa_check(page)
    sent = ehr.authorize_requests[-1]
    assert sent["launch"] == LAUNCH_ID
    assert sent["code_challenge_method"] == "S256"
    assert "code" not in page.url
    assert "state" not in page.url

    complete_the_form(page)
    page.locator("#evaluate").click()

    readable = page.locator("#readable")
    expect(readable).to_contain_text("Summary:")
    expect(readable).to_contain_text("Intensive outpatient")
    expect(page.locator("#writeback")).to_have_text("Filed in the EHR.")
    assert len(ehr.filed) == 1
    filed = [entry["resource"]["resourceType"] for entry in ehr.filed[0]["entry"]]
    assert "ServiceRequest" in filed
    assert filed.count("Observation") >= 2
    level = ehr.filed[0]["entry"][0]["resource"]
    assert level["subject"] == {"reference": "Patient/pat-1"}
    expect(page.locator("#filed li").first).to_contain_text("201 Created")
    page.screenshot(path=REPORTS / "smart-result.png", animations="disabled", full_page=True)
    wcag_21_aa_check(page)
    assert watch.problems(page) == []


def test_a_standalone_launch_signs_in_to_the_configured_ehr(
    page: Page, watch: Watch, setup: Setup, ehr: FakeEhr
) -> None:
    page.goto(f"{setup.carelevel}/smart/launch")
    expect_prefilled_form(page)
    sent = ehr.authorize_requests[-1]
    assert "launch" not in sent
    assert "launch/patient" in sent["scope"].split()
    assert "launch" not in sent["scope"].split()
    assert watch.problems(page) == []


def test_without_a_write_scope_nothing_is_filed_and_the_app_says_so(
    page: Page, setup: Setup, ehr: FakeEhr
) -> None:
    ehr.grant_write = False
    page.goto(f"{setup.carelevel}/smart/launch?iss={ehr.iss}&launch={LAUNCH_ID}")
    expect(page.locator("#intake")).to_be_visible()
    complete_the_form(page)
    page.locator("#evaluate").click()
    expect(page.locator("#readable")).to_contain_text("Summary:")
    expect(page.locator("#writeback")).to_contain_text("Write-back is not allowed")
    assert ehr.filed == []


def test_a_sign_in_the_app_did_not_start_is_refused_before_any_token_request(
    page: Page, setup: Setup, ehr: FakeEhr
) -> None:
    page.goto(f"{setup.carelevel}/smart/app?code=stolen&state=forged")
    expect(page.locator("#error")).to_contain_text("state does not match")
    expect(page.locator("#intake")).to_be_hidden()
    assert ehr.token_requests == []


def test_a_code_bound_to_another_verifier_is_refused(
    page: Page, setup: Setup, ehr: FakeEhr
) -> None:
    """An attacker's code challenge swapped in on the way to the EHR: the app's own verifier
    does not match it, the EHR refuses the token and the app stops there."""

    def swap_challenge(route: Route) -> None:
        parts = urlsplit(route.request.url)
        query = dict(parse_qsl(parts.query))
        query["code_challenge"] = challenge_of("the attacker's verifier, not the app's")
        route.continue_(url=urlunsplit(parts._replace(query=urlencode(query))))

    page.route(f"{ehr.issuer}/authorize?*", swap_challenge)
    page.goto(f"{setup.carelevel}/smart/launch?iss={ehr.iss}&launch={LAUNCH_ID}")
    expect(page.locator("#error")).to_contain_text("refused the sign-in")
    assert ehr.refused_tokens == ["invalid_grant"]
    expect(page.locator("#intake")).to_be_hidden()


def test_a_launch_from_an_unconfigured_ehr_goes_nowhere(
    page: Page, watch: Watch, setup: Setup, ehr: FakeEhr
) -> None:
    response = page.goto(f"{setup.carelevel}/smart/launch?iss=https://evil.example/fhir&launch=x")
    assert response is not None
    assert response.status == 400
    expect(page.locator("#error")).to_contain_text("not configured for")
    assert "evil.example" not in page.content()
    assert ehr.authorize_requests == []

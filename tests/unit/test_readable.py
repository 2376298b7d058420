"""The readable determination (app/screenings/readable.py): the summary, the one document and
its Markdown, HTML, plain-text and FHIR-narrative renderings."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.observation import Observation

from app.engine import ScreeningAnswers, compile_rule_set, default_rule_set, evaluate
from app.engine.determination import ENGINE_VERSION, determination_to_json
from app.fhir.results import Result, level_observation, score_observation
from app.fhir.terminology import Vocabulary
from app.screenings.readable import (
    STYLE_SOURCE,
    SUMMARY_READS,
    XHTML,
    about_determination,
    about_stored,
    document,
    html_page,
    markdown,
    plain_text,
    summary,
)
from tests.support.examples import example

Json = dict[str, Any]
LEGACY = Path(__file__).parent / "legacy" / "iop-level-of-care-2026.11.0.yaml"
RULE_SET = {"owner": "shared", "key": "iop-level-of-care", "version": 1, "sha256": "ab" * 32}


def determination(name: str, rules: Any = None, **changes: Any) -> Json:
    """The determination of an example's answers (``changes`` replace whole sections), as JSON."""
    answers = ScreeningAnswers.model_validate(example(name) | changes)
    decided = evaluate(rules or default_rule_set(), answers)
    loaded: Json = orjson.loads(determination_to_json(decided))
    return loaded


def stored_document(found: Json) -> Any:
    about = about_stored(
        RULE_SET, found["engine_version"], screening_id="s-1", created_at="2026-12-01T09:30:12Z"
    )
    return document(found, about)


# --- the summary -----------------------------------------------------------------------------


def test_the_summary_says_level_urgency_verdict_reason_and_what_next() -> None:
    # Without a co-occurring mental health condition no program condition qualifies the IOP.
    co_occurring = example("adult-iop-suitable")["co_occurring"] | {
        "depressive": "absent",
        "anxiety": "absent",
    }
    found = determination("adult-iop-suitable", co_occurring=co_occurring)
    said = summary(found)
    assert said.startswith(
        "Recommended level of care: Intensive outpatient program (IOP); urgency: routine; "
        "an IOP is suitable. Main reason: "
    )
    first_reason = found["recommended_level"]["decided_by"][0]["text"].removesuffix(".")
    assert f"Main reason: {first_reason}, and 2 more." in said
    assert said.endswith(
        "Next: a clinician reviews this and refers to Intensive outpatient program (IOP)."
    )
    assert said.count(". ") == 2  # three sentences


def test_a_safety_alerts_action_comes_first_in_what_to_do() -> None:
    emergency = determination("emergency-suicide-risk")
    [alert] = emergency["safety_alerts"]
    assert summary(emergency).endswith(f"Do now: {alert['action']}")
    # Several alerts: the most urgent one's action, counted.
    insufficient = determination("insufficient-information")
    assert [a["urgency"] for a in insufficient["safety_alerts"]] == ["urgent", "urgent"]
    said = summary(insufficient)
    assert said.startswith("No level of care can be recommended from the information given")
    assert f"Do now (1 of 2 safety alerts): {insufficient['safety_alerts'][0]['action']}" in said


def test_barriers_and_missing_information_are_the_next_step() -> None:
    barriers = summary(determination("adult-iop-with-barriers"))
    assert "an IOP is suitable once its barriers or conditions are met" in barriers
    assert barriers.endswith(
        "Next: address the 4 barriers to attending, then refer to Intensive outpatient program "
        "(IOP)."
    )
    partial = determination("adult-iop-suitable")
    partial["missing"] = [{"item": "a", "label": "A", "needed_by": ["r"]}] * 3
    assert summary(partial).endswith(
        "Next: complete the screening; 3 missing items could change this."
    )


def test_the_summary_depends_on_the_determination_alone() -> None:
    found = determination("adult-iop-with-barriers")
    without_trace = {name: value for name, value in found.items() if name != "trace"}
    keys = list(found)
    random.Random(7).shuffle(keys)  # PostgreSQL's JSONB gives the keys in its own order
    shuffled = {name: found[name] for name in keys}
    assert summary(found) == summary(without_trace) == summary(shuffled)


@pytest.mark.parametrize(
    "name",
    [
        "adult-iop-suitable",
        "adult-iop-with-barriers",
        "emergency-suicide-risk",
        "insufficient-information",
        "adolescent-step-down",
    ],
)
def test_the_summary_reads_only_the_fields_it_names(name: str) -> None:
    found = determination(name)
    read: dict[str, Any] = {field: found[field] for field in SUMMARY_READS if field in found}
    assert summary(read) == summary(found)


def test_the_summary_shows_no_score_the_determination_does_not_say_in_words() -> None:
    found = determination("emergency-suicide-risk")
    totals = {str(score["total"]) for score in found["scores"] if score["total"] is not None}
    assert totals == {"23"}
    assert not set(re.findall(r"\d+", summary(found))) & totals


# --- the document and its renderings ---------------------------------------------------------


class Outline(HTMLParser):
    """The headings, the ids they carry and every tag and attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.tags: list[str] = []
        self.attributes: set[str] = set()
        self.style = ""
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes |= {name for name, _ in attrs}
        self._open = tag

    def handle_data(self, data: str) -> None:
        if self._open in ("h1", "h2", "h3"):
            self.headings.append((self._open, data))
        if self._open == "style":
            self.style += data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def outline(page: str) -> Outline:
    parsed = Outline()
    parsed.feed(page)
    return parsed


def test_the_page_puts_safety_first_and_keeps_the_heading_order() -> None:
    page = html_page(stored_document(determination("emergency-suicide-risk")))
    headings = outline(page).headings
    assert headings[0] == ("h1", "Level-of-care screening")
    assert [level for level, _ in headings[1:]] == ["h2"] * (len(headings) - 1)
    titles = [title for _, title in headings[1:]]
    assert titles[:3] == ["Safety alerts", "Recommendation", "Why"]
    assert titles[-2:] == ["Sources of these reasons and alerts", "About this determination"]
    assert page.index("Safety alerts") < page.index("Recommended level")
    assert page.rstrip().endswith("</html>")
    assert page.index("Clinical decision support, not a diagnosis") > page.index("About this")
    assert '<html lang="en">' in page


def test_every_section_a_clinician_needs_is_in_its_order() -> None:
    found = determination("adult-iop-with-barriers")
    found["conditions"] = [{"code": "c", "description": "A recovery residence.", "rule_id": "r"}]
    found["missing"] = [{"item": "x.y", "label": "Something not asked.", "needed_by": ["r.1"]}]
    found["contradictions"] = [
        {
            "rule_id": "c.1",
            "description": "Two answers disagree.",
            "confirm": "Ask.",
            "references": [],
        }
    ]
    found["answers_not_used"] = [{"item": "x.z", "label": "Something not read."}]
    titles = [title for _, title in outline(html_page(stored_document(found))).headings]
    assert titles == [
        "Level-of-care screening",
        "Recommendation",
        "Why",
        "Contradictions to confirm",
        "Domains",
        "Less intensive levels the need exceeds",
        "More intensive levels not indicated",
        "Barriers to attending, and how to lift them",
        "Conditions",
        "Scores",
        "Missing information that could change this",
        "Context",
        "Answers given that did not affect this result",
        "Sources of these reasons and alerts",
        "About this determination",
    ]


def test_the_page_loads_nothing_and_its_policy_allows_its_one_stylesheet() -> None:
    page = html_page(stored_document(determination("adult-iop-with-barriers")))
    parsed = outline(page)
    assert not {"script", "link", "img", "iframe"} & set(parsed.tags)
    assert not parsed.attributes & {"src", "href", "style", "onload"}
    digest = hashlib.sha256(parsed.style.encode()).digest()
    assert f"'sha256-{base64.b64encode(digest).decode()}'" == STYLE_SOURCE
    assert parsed.tags.count("style") == 1


def test_the_page_names_the_rule_set_version_engine_and_screening() -> None:
    page = html_page(stored_document(determination("adult-iop-suitable")))
    for shown in ("shared/iop-level-of-care version 1", "ab" * 32, ENGINE_VERSION, "s-1"):
        assert shown in page


def test_text_from_the_rule_set_is_escaped_in_every_form() -> None:
    found = determination("adult-iop-suitable")
    found["iop"]["reasons"].append(
        {"rule_id": "r.x", "text": "<script>alert(1)</script> *bold* [x](y)", "references": []}
    )
    readable = stored_document(found)
    page = html_page(readable)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\\<script\\>alert(1)\\</script\\> \\*bold\\* \\[x\\](y)" in markdown(readable)


def test_markdown_and_text_carry_the_same_content() -> None:
    found = determination("adult-iop-with-barriers")
    readable = stored_document(found)
    for rendered in (markdown(readable), plain_text(readable)):
        flat = " ".join(rendered.replace("\\", "").split())
        assert " ".join(readable.summary.split()) in flat
        for barrier in found["barriers"]:
            assert barrier["description"] in flat
        assert "Clinical decision support, not a diagnosis" in flat


def test_the_terminal_colours_urgency_only_when_asked() -> None:
    readable = stored_document(determination("emergency-suicide-risk"))
    plain = plain_text(readable)
    assert "\x1b[" not in plain
    coloured = plain_text(readable, colour=True)
    assert "\x1b[1;31memergent\x1b[0m" in coloured  # red, in the facts and on the alert
    assert coloured.count("\x1b[1;31m") == 2
    urgent = plain_text(stored_document(determination("insufficient-information")), colour=True)
    assert "\x1b[1;33murgent\x1b[0m" in urgent  # yellow


def test_the_trace_is_counted_only_where_it_is_shown() -> None:
    found = determination("adult-iop-suitable")
    with_trace = plain_text(document(found, about_determination(found)))
    assert re.search(r"Trace: \d+ rules evaluated, \d+ fired, \d+ undetermined\.", with_trace)
    without = {name: value for name, value in found.items() if name != "trace"}
    assert "Trace:" not in plain_text(stored_document(without))


def test_determinations_of_engine_1_render_too() -> None:
    legacy = determination("adult-iop-with-barriers", compile_rule_set(LEGACY.read_text()))
    assert legacy["engine_version"] == "1.0.0"
    readable = document(legacy, about_determination(legacy))
    assert readable.section("sources") is None  # engine 1.0.0 cites no sources
    assert readable.section("safety-alerts") is None  # nothing to show: no section
    for rendered in (html_page(readable), markdown(readable), plain_text(readable)):
        assert "Intensive outpatient program (IOP)" in rendered


# --- the FHIR narrative ----------------------------------------------------------------------


def test_the_observations_narratives_are_valid_fhir_xhtml() -> None:
    vocabulary = Vocabulary("https://carelevel.dev/fhir")
    found = determination("emergency-suicide-risk")
    result = Result("s-1", datetime(2026, 12, 1, tzinfo=UTC), RULE_SET, "2.0.0", found, {})
    level = level_observation(vocabulary, result)
    scores = [score_observation(vocabulary, result, score) for score in found["scores"]]
    for observation in (level, *scores):
        Observation.model_validate(observation)
        text = observation["text"]
        assert text["status"] == "generated"
        div = ElementTree.fromstring(text["div"])  # well-formed XML
        assert div.tag == f"{{{XHTML}}}div"
        tags = {element.tag.removeprefix(f"{{{XHTML}}}") for element in div.iter()}
        assert tags <= {"div", "p", "b"}
        assert not any(element.attrib for element in div.iter() if element is not div)
    said = ElementTree.fromstring(level["text"]["div"])
    words = " ".join("".join(said.itertext()).split())
    assert "Recommended level of care: Emergency evaluation now" in words
    assert "Urgency: emergent" in words
    assert "IOP: higher level needed" in words
    assert summary(found) in words
    assert "PHQ-9: 23, severe, positive" in "".join(
        ElementTree.fromstring(scores[0]["text"]["div"]).itertext()
    )


@pytest.mark.parametrize("name", ["adult-iop-suitable", "insufficient-information"])
def test_a_narrative_escapes_what_it_shows(name: str) -> None:
    found = determination(name)
    found["safety_alerts"] = [
        {"rule_id": "r", "urgency": "urgent", "action": "Ask <now> & \"then\"", "reason": "x",
         "ends_evaluation": False}
    ]  # fmt: skip
    result = Result("s-1", datetime(2026, 12, 1, tzinfo=UTC), RULE_SET, "2.0.0", found, {})
    div = level_observation(Vocabulary("https://carelevel.dev/fhir"), result)["text"]["div"]
    assert 'Ask <now> & "then"' in "".join(ElementTree.fromstring(div).itertext())


def test_after_an_emergency_the_other_levels_are_named_once_with_their_shared_reason() -> None:
    found = determination("emergency-suicide-risk")
    assert {other["relation"] for other in found["eliminated"]} == {"deferred"}
    readable = document(found, about_determination(found))
    deferred = readable.section("deferred")
    assert deferred is not None
    (item,) = deferred.items
    assert item.text.startswith("Outpatient, Intensive outpatient program (IOP), ")
    assert len(item.details) == 1
    assert item.details[0].startswith("Decided after the emergency evaluation: ")


def test_levels_with_their_own_reasons_are_listed_one_by_one() -> None:
    found = determination("adult-iop-suitable")
    readable = document(found, about_determination(found))
    higher = readable.section("not-indicated")
    assert higher is not None
    names = [item.text for item in higher.items]
    assert names[:2] == ["Partial hospitalization program (PHP)", "Residential treatment"]


def test_answers_not_used_are_named_by_their_question_without_its_scale() -> None:
    found = determination("emergency-suicide-risk")
    labels = {unused["item"]: unused["label"] for unused in found["answers_not_used"]}
    assert labels["functioning.work_school"] == "Work, school or training."

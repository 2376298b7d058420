"""Error responses and input validation of the screening endpoints, and the questionnaire.

Nothing here stores anything, so the module shares one application (a fresh one per test
would cost more than the tests) and checks at the end of each test that the screening list is
still empty: a failed request changes nothing.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.engine.answers import ScreeningAnswers
from app.engine.instruments import SPECS, InstrumentId
from app.kernel.settings import Settings
from tests.api.screenings_support import assert_nothing_stored, client_for
from tests.support.examples import Json, example
from tests.support.problems import assert_problem, pointers

UNKNOWN_ID = "0b3f2f7e-0000-4000-8000-000000000000"
SENTINEL_TEXT = "SENTINEL-7731"
SENTINEL_NUMBER = 987654


@pytest.fixture(scope="module")
async def shared(schema: AsyncEngine, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(schema, settings) as client:
        yield client


@pytest.fixture
async def api(shared: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """The shared client; after each test, nothing is stored."""
    yield shared
    await assert_nothing_stored(shared)


def with_answer(section: str, field: str, value: Any) -> Json:
    """The adult IOP example with one answer replaced."""
    answers = example("adult-iop-suitable")
    answers[section][field] = value
    return {"answers": answers}


def with_phq9(items: list[Any]) -> Json:
    answers = example("adult-iop-suitable")
    answers["instruments"]["phq9"]["items"] = items
    return {"answers": answers}


# --- malformed bodies -------------------------------------------------------------------------

MALFORMED = [
    b'{"answers": ',
    b'{"answers": {"respondent": "SENTINEL-7731"',
    b'{"answers": {},}',
    b"{'answers': {}}",
    b'{"answers": {}} trailing',
    b"\xff\xfe{}",  # a UTF-16 byte-order mark, then nonsense
    b'{"answers": "\xc3\x28"}',  # not UTF-8
]
BODY_ENDPOINTS = [
    "/v1/screenings",
    "/v1/screenings/evaluate",
    f"/v1/screenings/{UNKNOWN_ID}/decision",
    f"/v1/screenings/{UNKNOWN_ID}/replay",
]


async def test_malformed_json_is_400(api: httpx.AsyncClient) -> None:
    for path in BODY_ENDPOINTS:
        for body in MALFORMED:
            for content_type in ("application/json", "application/json; charset=utf-8"):
                response = await api.post(
                    path, content=body, headers={"content-type": content_type}
                )
                problem = assert_problem(response, 400, "malformed-json")
                assert "errors" not in problem
                assert SENTINEL_TEXT not in response.text


async def test_a_body_that_is_not_sent_as_json_is_415(api: httpx.AsyncClient) -> None:
    body = json.dumps({"answers": example("adult-iop-suitable")}).encode()
    for path in BODY_ENDPOINTS[:3]:
        for headers in ({}, {"content-type": "text/plain"}, {"content-type": "application/xml"}):
            response = await api.post(path, content=body, headers=headers)
            assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize("body", [b"", b"null", b"[]", b'"answers"', b"42"])
async def test_a_body_that_is_not_an_object_is_422(api: httpx.AsyncClient, body: bytes) -> None:
    response = await api.post(
        "/v1/screenings", content=body, headers={"content-type": "application/json"}
    )

    assert pointers(assert_problem(response, 422, "validation-error")) == ["#"]


# --- validation errors ------------------------------------------------------------------------


async def test_unknown_fields_are_422_naming_their_object_not_echoing_them(
    api: httpx.AsyncClient,
) -> None:
    """An unknown member is named by its object and its position among the object's unknown
    members: its name is the caller's text and is never repeated."""
    answers = example("adult-iop-suitable")
    secret = "Jane Doe 1970-01-01"
    cases: list[tuple[Json, str]] = [
        ({"answers": answers, secret: 1}, "#"),
        ({"answers": answers, "determination": {}}, "#"),  # no mass assignment
        ({"answers": answers | {secret: "x"}}, "#/answers"),
        (with_answer("safety", secret, "low"), "#/answers/safety"),
        ({"answers": answers, "rule_set": {"version": 1, secret: "x"}}, "#/rule_set"),
    ]

    for body, pointer in cases:
        for path in ("/v1/screenings", "/v1/screenings/evaluate"):
            response = await api.post(path, json=body)
            problem = assert_problem(response, 422, "validation-error")
            assert pointers(problem) == [pointer]
            assert (
                problem["errors"][0]["detail"] == "unknown member 1 of this object is not allowed"
            )
            assert secret not in response.text
    two = {"answers": answers | {"first": 1, "second": 2}}
    problem = assert_problem(
        await api.post("/v1/screenings/evaluate", json=two), 422, "validation-error"
    )
    assert [e["detail"] for e in problem["errors"]] == [
        "unknown member 1 of this object is not allowed",
        "unknown member 2 of this object is not allowed",
    ]


async def test_out_of_range_phq9_item_names_the_instrument_and_item(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post("/v1/screenings", json=with_phq9([2, 2, 1, 2, 1, 2, 1, 1, 4]))

    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == ["#/answers/instruments/phq9/items"]
    message = problem["errors"][0]["detail"]
    assert "PHQ-9" in message
    assert "item 9" in message
    assert "answers/instruments/phq9/items" in problem["detail"]


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([2, 2, 1, 2, 1, 2, 1, 1], "9 items"),
        ([2, 2, 1, 2, 1, 2, 1, 1, 0, 0], "9 items"),
        ([-1, 2, 1, 2, 1, 2, 1, 1, 0], "item 1"),
        ([2, 2, True, 2, 1, 2, 1, 1, 0], "item 3"),
        ([2, 2, 1, "2", 1, 2, 1, 1, 0], "item 4"),
        ([2, 2, 1, 2, 1.5, 2, 1, 1, 0], "item 5"),
        ([2, 2, 1, 2, 1, 2, 1, 1, "maybe"], "item 9"),
    ],
)
async def test_phq9_items_must_fit_the_instrument(
    api: httpx.AsyncClient, items: list[Any], fragment: str
) -> None:
    response = await api.post("/v1/screenings/evaluate", json=with_phq9(items))

    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == ["#/answers/instruments/phq9/items"]
    assert "PHQ-9" in problem["errors"][0]["detail"]
    assert fragment in problem["errors"][0]["detail"]


def with_instrument(name: str, given: Json) -> Json:
    answers = example("adult-iop-suitable")
    answers["instruments"][name] = given
    return {"answers": answers}


@pytest.mark.parametrize(
    ("name", "given", "pointer", "fragment"),
    [
        # CAR alone only when all three Part A answers are 0
        ("crafft", {"days_alcohol": 3, "items": [True]}, "crafft/items", "only the CAR item"),
        ("crafft", {"items": [False]}, "crafft/items", "only the CAR item"),
        ("crafft", {"days_alcohol": 0, "items": [False]}, "crafft/items", "only the CAR item"),
        ("crafft", {"days_other": 0, "items": [False] * 5}, "crafft/items", "6 items"),
        ("crafft", {"days_cannabis": 366, "items": [False] * 6}, "crafft/days_cannabis", "365"),
        ("crafft", {"days_alcohol": True, "items": [False] * 6}, "crafft/days_alcohol", ""),
        # an item of the wrong type is named by the items, not by Pydantic's union members
        ("crafft", {"items": [1, 0, 0, 0, 0, 0]}, "crafft/items", "item 1"),
        ("crafft", {"items": ["maybe", *[False] * 5]}, "crafft/items", "item 1"),
        ("asq", {"items": [False] * 3}, "asq/items", "4 items"),
        ("asq", {"items": [False, False, "maybe", False]}, "asq/items", "item 3"),
        # item 5 only after a yes (or a declined item)
        ("asq", {"items": [False] * 4, "acute": False}, "asq/acute", "item 5"),
    ],
)
async def test_crafft_and_asq_answers_must_fit_the_instrument(
    api: httpx.AsyncClient, name: str, given: Json, pointer: str, fragment: str
) -> None:
    response = await api.post("/v1/screenings/evaluate", json=with_instrument(name, given))

    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == [f"#/answers/instruments/{pointer}"]
    assert any(fragment in error["detail"] for error in problem["errors"])


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("withdrawal", "drinks_per_week", 501),
        ("withdrawal", "most_drinks_in_a_day", -1),
        ("withdrawal", "drinks_per_week", 3.5),
        ("treatment_history", "weeks_at_current_level", 521),
        ("treatment_history", "response_to_current_level", "better"),
        ("medical", "cognitive_screen_positive", "yes"),
    ],
)
async def test_new_answers_are_validated_at_the_boundary(
    api: httpx.AsyncClient, section: str, field: str, value: Any
) -> None:
    response = await api.post("/v1/screenings/evaluate", json=with_answer(section, field, value))

    problem = assert_problem(response, 422, "validation-error")
    assert pointers(problem) == [f"#/answers/{section}/{field}"]


async def test_crafft_car_alone_and_asq_item_5_are_accepted(api: httpx.AsyncClient) -> None:
    body = with_instrument(
        "crafft", {"days_alcohol": 0, "days_cannabis": 0, "days_other": 0, "items": [False]}
    )
    body["answers"]["instruments"]["asq"] = {"items": [False, "declined", False, False]}
    body["answers"]["instruments"]["asq"]["acute"] = False

    response = await api.post("/v1/screenings/evaluate", json=body)

    assert response.status_code == 200, response.text


async def test_declined_items_are_accepted(api: httpx.AsyncClient) -> None:
    body = with_phq9([2, 2, 1, 2, 1, 2, 1, 1, "declined"])

    response = await api.post("/v1/screenings/evaluate", json=body)

    assert response.status_code == 200, response.text


async def test_wrong_types_and_missing_answers_name_their_fields(api: httpx.AsyncClient) -> None:
    no_respondent = example("adult-iop-suitable")
    del no_respondent["respondent"]
    cases: list[tuple[Json, list[str]]] = [
        ({}, ["#/answers"]),
        ({"answers": no_respondent}, ["#/answers/respondent"]),
        (
            {"answers": example("adult-iop-suitable") | {"presenting_concerns": []}},
            ["#/answers/presenting_concerns"],
        ),
        (with_answer("respondent", "age_group", "toddler"), ["#/answers/respondent/age_group"]),
        (
            with_answer("safety", "recent_violence", "sometimes"),
            ["#/answers/safety/recent_violence"],
        ),
        (
            with_answer("logistics", "hours_per_week_available", 169),
            ["#/answers/logistics/hours_per_week_available"],
        ),
        (
            {"answers": example("adult-iop-suitable"), "external_reference": "enc\x00-1"},
            ["#/external_reference"],
        ),
        (
            {"answers": example("adult-iop-suitable"), "external_reference": "x" * 201},
            ["#/external_reference"],
        ),
        (
            {"answers": example("adult-iop-suitable"), "rule_set": {"version": 0}},
            ["#/rule_set/version"],
        ),
        (
            {"answers": example("adult-iop-suitable"), "rule_set": {"key": "Not A Key"}},
            ["#/rule_set/key"],
        ),
    ]

    for body, expected in cases:
        response = await api.post("/v1/screenings", json=body)
        assert response.status_code == 422, expected
        assert pointers(assert_problem(response, 422)) == expected


async def test_query_and_header_errors_name_the_parameter(api: httpx.AsyncClient) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"limit": 0}, "#/query/limit"),
        ({"limit": 1001}, "#/query/limit"),
        ({"limit": "ten"}, "#/query/limit"),
        ({"level": "hospital-ish"}, "#/query/level"),
        ({"urgency": "soonish"}, "#/query/urgency"),
        ({"rule_set_version": 0}, "#/query/rule_set_version"),
        ({"rule_set_key": "Not A Key"}, "#/query/rule_set_key"),
        ({"external_reference": "enc\x00"}, "#/query/external_reference"),
        ({"created_from": "yesterday"}, "#/query/created_from"),
        ({"created_from": "2026-11-26T00:00:00"}, "#/query/created_from"),  # no time zone
        ({"created_to": "2026-11-26T00:00:00"}, "#/query/created_to"),
        ({"created_to": "0.5"}, "#/query/created_to"),  # Pydantic would read a Unix time
        ({"created_from": "1764547200"}, "#/query/created_from"),
        ({"created_from": "9999-12-31T23:59:59-23:59"}, "#/query/created_from"),  # out of range
    ]
    for params, pointer in cases:
        problem = assert_problem(await api.get("/v1/screenings", params=params), 422)
        assert pointers(problem) == [pointer], params
        if "T00:00:00" in str(params):
            assert "time zone" in problem["detail"]

    for key in ("has space", "x" * 201, "", "tab\tkey"):
        response = await api.post(
            "/v1/screenings",
            json={"answers": example("adult-iop-suitable")},
            headers={"Idempotency-Key": key},
        )
        assert pointers(assert_problem(response, 422)) == ["#/header/Idempotency-Key"]


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def test_an_invalid_cursor_is_400(api: httpx.AsyncClient) -> None:
    cursors = [
        "not-a-cursor!",
        "é",
        _cursor({"created_at": "2026-11-26T00:00:00+00:00"}),
        _cursor(["2026-11-26T00:00:00+00:00"]),
        _cursor(["yesterday", "0b3f2f7e"]),
        _cursor(["2026-11-26T00:00:00", "0b3f2f7e"]),  # no time zone
        _cursor(["2026-11-26T00:00:00+00:00", 7]),
        _cursor("2026-11-26"),
    ]
    for cursor in cursors:
        response = await api.get("/v1/screenings", params={"cursor": cursor})
        assert_problem(response, 400, "bad-request")


async def test_unknown_screenings_are_404(api: httpx.AsyncClient) -> None:
    decision = {"final_level": "outpatient", "variance_reasons": ["waitlist"], "decided_by": "c"}
    responses = [
        await api.get(f"/v1/screenings/{UNKNOWN_ID}"),
        await api.post(f"/v1/screenings/{UNKNOWN_ID}/replay"),
        await api.post(f"/v1/screenings/{UNKNOWN_ID}/replay", json={"version": 1}),
        await api.post(f"/v1/screenings/{UNKNOWN_ID}/decision", json=decision),
    ]
    for response in responses:
        assert_problem(response, 404, "not-found")

    too_long = await api.get(f"/v1/screenings/{'x' * 65}")
    assert pointers(assert_problem(too_long, 422)) == ["#/path/screening_id"]


async def test_unknown_routes_and_methods_are_problems(api: httpx.AsyncClient) -> None:
    assert_problem(await api.get("/v1/screening"), 404)
    assert_problem(await api.delete("/v1/screenings"), 405)
    assert_problem(await api.put(f"/v1/screenings/{UNKNOWN_ID}", json={}), 405)


# --- no submitted value in any error ----------------------------------------------------------


async def test_no_error_echoes_a_submitted_value(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = example("adult-iop-suitable")
    answers["respondent"]["age_group"] = SENTINEL_TEXT
    answers["presenting_concerns"] = [SENTINEL_TEXT]
    answers["instruments"]["phq9"]["items"][8] = SENTINEL_NUMBER
    answers["instruments"]["gad7"]["items"][0] = SENTINEL_TEXT
    answers["safety"]["recent_violence"] = SENTINEL_TEXT
    answers["logistics"]["hours_per_week_available"] = SENTINEL_TEXT
    answers["logistics"]["travel_minutes_one_way"] = SENTINEL_NUMBER
    answers["functioning"]["work_school"] = SENTINEL_NUMBER
    screening = {
        "answers": answers,
        "external_reference": SENTINEL_TEXT * 20,
        "rule_set": {"key": SENTINEL_TEXT, "version": SENTINEL_TEXT},
    }
    decision = {
        "final_level": SENTINEL_TEXT,
        "variance_reasons": [SENTINEL_TEXT, "other"],
        "comment": SENTINEL_TEXT * 200,
        "decided_by": SENTINEL_TEXT * 20,
    }
    one_bad_item = with_phq9([2, 2, 1, 2, 1, 2, 1, 1, SENTINEL_NUMBER])
    responses = [
        await api.post("/v1/screenings", json=screening),
        await api.post("/v1/screenings/evaluate", json=screening),
        await api.post("/v1/screenings", json=one_bad_item),
        await api.post("/v1/screenings", json={"answers": SENTINEL_TEXT}),
        await api.post("/v1/screenings", json={"answers": [SENTINEL_NUMBER]}),
        await api.post("/v1/screenings", json={"answers": answers, "rule_set": {"version": 99}}),
        await api.post(
            "/v1/screenings",
            json=example("adult-iop-suitable"),
            headers={"Idempotency-Key": f"{SENTINEL_TEXT} {SENTINEL_NUMBER}"},
        ),
        await api.post(f"/v1/screenings/{UNKNOWN_ID}/decision", json=decision),
        await api.post(f"/v1/screenings/{UNKNOWN_ID}/replay", json={"version": SENTINEL_TEXT}),
        await api.get(
            "/v1/screenings",
            params={
                "level": SENTINEL_TEXT,
                "urgency": SENTINEL_TEXT,
                "limit": SENTINEL_TEXT,
                "created_from": SENTINEL_TEXT,
                "rule_set_version": SENTINEL_TEXT,
            },
        ),
        await api.get("/v1/screenings", params={"limit": SENTINEL_NUMBER}),
        await api.get("/v1/screenings", params={"cursor": SENTINEL_TEXT}),
    ]

    for response in responses:
        assert_problem(response, response.status_code)
        assert 400 <= response.status_code < 500, response.text
        assert SENTINEL_TEXT not in response.text, response.text
        assert str(SENTINEL_NUMBER) not in response.text, response.text
    service_logs = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("httpx")
    )
    assert SENTINEL_TEXT not in service_logs
    assert str(SENTINEL_NUMBER) not in service_logs


# --- GET /v1/questionnaire --------------------------------------------------------------------


async def questionnaire(api: httpx.AsyncClient) -> dict[str, Json]:
    """The questionnaire's questions by path, nested groups included."""
    response = await api.get("/v1/questionnaire")
    assert response.status_code == 200
    by_path: dict[str, Json] = {}

    def walk(questions: list[Json]) -> None:
        for question in questions:
            by_path[question["path"]] = question
            walk(question.get("questions") or [])

    body = response.json()
    assert body["rule_set_key"] == "iop-level-of-care"
    walk(body["questions"])
    return by_path


async def test_questionnaire_lists_every_section_with_required_flags(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/v1/questionnaire")

    top_level = {q["path"]: q for q in response.json()["questions"]}
    assert list(top_level) == list(ScreeningAnswers.model_fields)
    required = {path for path, question in top_level.items() if question["required"]}
    assert required == {"respondent"}  # an intake may start before the concern is asked
    for path, field in ScreeningAnswers.model_fields.items():
        assert top_level[path]["required"] is field.is_required(), path
        assert top_level[path]["help"], path
    questions = await questionnaire(api)
    assert questions["respondent.age_group"]["required"] is True
    assert questions["respondent.answered_by"]["required"] is True
    assert questions["respondent.sex_for_scoring"]["required"] is False
    assert questions["respondent"]["type"] == "group"
    assert questions["presenting_concerns"]["type"] == "multiple_choice"
    assert set(questions["presenting_concerns"]["allowed_values"]) == {
        "substance_use",
        "mental_health",
        "eating_disorder",
    }


async def test_questionnaire_instruments_carry_item_counts_and_allowed_values(
    api: httpx.AsyncClient,
) -> None:
    questions = await questionnaire(api)

    instruments = {
        path.removeprefix("instruments."): q
        for path, q in questions.items()
        if path.startswith("instruments.") and path.count(".") == 1 and q["type"] == "items"
    }
    assert {"phq9", "phq2", "gad7", "audit_c", "audit", "dast10", "scoff"} <= set(instruments)
    for name, question in instruments.items():
        spec = SPECS[InstrumentId(name)]
        assert question["item_count"] == spec.item_count, name
        assert len(question["item_values"]) == spec.item_count, name
        for values in question["item_values"]:
            assert "declined" in values, name
    assert instruments["phq9"]["item_values"] == [[0, 1, 2, 3, "declined"]] * 9
    assert instruments["audit"]["item_values"][8] == [0, 2, 4, "declined"]
    assert instruments["dast10"]["item_values"] == [[True, False, "declined"]] * 10
    for path, question in questions.items():
        if question["type"] in ("choice", "multiple_choice"):
            assert question["allowed_values"], path


async def test_questionnaire_values_are_the_ones_validation_accepts(
    api: httpx.AsyncClient,
) -> None:
    questions = await questionnaire(api)

    for field in ("age_group", "answered_by", "sex_for_scoring"):
        for value in questions[f"respondent.{field}"]["allowed_values"]:
            response = await api.post(
                "/v1/screenings/evaluate", json=with_answer("respondent", field, value)
            )
            assert response.status_code == 200, (field, value, response.text)
    for field in ("work_school", "self_care", "relationships", "daily_activities"):
        for value in questions[f"functioning.{field}"]["allowed_values"]:
            response = await api.post(
                "/v1/screenings/evaluate", json=with_answer("functioning", field, value)
            )
            assert response.status_code == 200, (field, value, response.text)
    for item, allowed in enumerate(questions["instruments.phq9"]["item_values"]):
        for value in [*allowed, max(v for v in allowed if isinstance(v, int)) + 1]:
            items: list[Any] = [0] * 9
            items[item] = value
            response = await api.post("/v1/screenings/evaluate", json=with_phq9(items))
            assert response.status_code == (200 if value in allowed else 422), (item, value)


async def test_questionnaire_types_and_follow_ups_match_what_validation_accepts(
    api: httpx.AsyncClient,
) -> None:
    questions = await questionnaire(api)

    assert questions["safety.recent_violence"]["type"] == "boolean"
    assert questions["medical.heart_rate_bpm"]["type"] == "integer"
    assert questions["medical.temperature_c"]["type"] == "number"
    assert questions["instruments.cssrs.non_specific_active_thoughts"]["type"] == (
        "yes_no_or_declined"
    )
    # Follow-ups name the question and the answer that asks them, and that question exists.
    follow_ups = {path: q["asked_when"] for path, q in questions.items() if q.get("asked_when")}
    assert follow_ups["instruments.cssrs.method"] == {
        "path": "instruments.cssrs.non_specific_active_thoughts",
        "equals": True,
    }
    assert "medical.receiving_prenatal_care" in follow_ups
    for path, condition in follow_ups.items():
        assert condition["path"] in questions, path
    # A follow-up answered without the answer that asks it is refused; with it, accepted.
    unasked = with_answer("medical", "pregnant", False)
    unasked["answers"]["medical"]["receiving_prenatal_care"] = True
    assert (await api.post("/v1/screenings/evaluate", json=unasked)).status_code == 422
    unasked["answers"]["medical"]["pregnant"] = True
    assert (await api.post("/v1/screenings/evaluate", json=unasked)).status_code == 200
    # Every boolean question of a section takes true and false.
    for path, question in questions.items():
        section, _, field = path.rpartition(".")
        if question["type"] != "boolean" or path in follow_ups or "." in section or not section:
            continue
        for value in (True, False):
            response = await api.post(
                "/v1/screenings/evaluate", json=with_answer(section, field, value)
            )
            assert response.status_code == 200, (path, value, response.text)


async def test_questionnaire_labels_every_question_and_answer(api: httpx.AsyncClient) -> None:
    """Enough to lay out a form: a label per question, a label (and LOINC code) per answer,
    each instrument's instructions, wording where its licence allows and its licence; nothing
    empty is sent."""
    body = (await api.get("/v1/questionnaire")).json()
    assert "null" not in json.dumps(body)
    questions = await questionnaire(api)
    for path, question in questions.items():
        assert question["text"], path
        assert question["pointer"] == "/" + path.replace(".", "/")
        if question["type"] in ("choice", "multiple_choice", "yes_no_or_declined"):
            assert all(option["label"] for option in question["options"]), path
    phq9 = questions["instruments.phq9"]
    assert phq9["required"] is False
    assert phq9["instrument"]["licence"]["verdict"] == "free_with_attribution"
    assert phq9["instrument"]["instructions"].startswith("Over the last 2 weeks")
    assert phq9["items"][8]["text"].startswith("Thoughts that you would be better off dead")
    assert phq9["items"][8]["code"] == "44260-8"
    assert [o["label"] for o in phq9["items"][0]["options"]] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
        "Declined to answer",
    ]
    audit = questions["instruments.audit"]
    assert audit["instrument"]["licence"]["wording_shown"] is False
    assert audit["items"][0]["text"] == "How often do you have a drink containing alcohol?"
    assert "text" not in audit["items"][3]  # WHO's wording of items 4-10 needs permission
    assert audit["items"][3]["topic"]
    assert [o["label"] for o in audit["items"][8]["options"]][:3] == [
        "No",
        "Yes, but not in the last year",
        "Yes, during the last year",
    ]
    assert questions["presenting_concerns"]["min_items"] == 1
    assert "min_items" not in questions["withdrawal.heavy_daily_use"]
    cssrs = questions["instruments.cssrs.wish_to_be_dead"]
    assert cssrs["text"] == "Wish to be dead (past month)"
    assert [o["value"] for o in cssrs["options"]] == [True, False, "declined"]


async def test_questionnaire_in_spanish(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/questionnaire", params={"language": "es"})).json()
    assert body["language"] == "es"
    questions: dict[str, Any] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            questions[item["path"]] = item
            walk(item.get("questions", []))

    walk(body["questions"])
    gad7 = questions["instruments.gad7"]
    assert gad7["items"][1]["text"] == "No ha sido capaz de parar o controlar su preocupación"
    assert gad7["items"][0]["options"][0]["label"] == "Nunca"
    assert "es" in gad7["instrument"]["languages"]
    # An instrument without a translation stays in English, and says so.
    assert questions["instruments.pc_ptsd5"]["instrument"]["languages"] == ["en"]
    refused = await api.get("/v1/questionnaire", params={"language": "xx"})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "#/query/language"

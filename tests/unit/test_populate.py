"""Pre-population from the chart (app/fhir/chart.py, app/fhir/populate.py): what each chart
resource answers, what is never used (stale, not final, entered in error, out of bounds), and
that an answer already given is never replaced."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.fhir.chart import CHART_QUERIES, MEASURES, Chart, chart_of
from app.fhir.outcome import FhirError
from app.fhir.populate import (
    LEGACY_POPULATED_FROM,
    answer_source_definition,
    populate,
    populated_link_ids,
)
from app.fhir.response import MAX_ITEM_DEPTH, read_response
from app.fhir.terminology import LOINC, Vocabulary
from app.questionnaire import FormItem, Kind, form

Json = dict[str, Any]
VOCABULARY = Vocabulary("https://carelevel.dev/fhir")
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
SUBJECT = {"reference": "Patient/p1"}


def patient(**fields: Any) -> Json:
    return {"resourceType": "Patient", "id": "p1"} | fields


def observation(
    code: str,
    value: float,
    unit: str,
    *,
    at: datetime = NOW - timedelta(hours=1),
    status: str = "final",
    identifier: str = "o1",
) -> Json:
    return {
        "resourceType": "Observation",
        "id": identifier,
        "subject": SUBJECT,
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": {"value": value, "unit": unit, "code": unit},
    }


def condition(code: str, *, clinical: str = "active", verification: str | None = None) -> Json:
    resource: Json = {
        "resourceType": "Condition",
        "id": "c1",
        "subject": SUBJECT,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        },
        "code": {"coding": [{"system": ICD10, "code": code}]},
    }
    if verification:
        resource["verificationStatus"] = {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        }
    return resource


def medication(text: str, status: str = "active") -> Json:
    return {
        "resourceType": "MedicationRequest",
        "id": "m1",
        "subject": SUBJECT,
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": {"text": text},
    }


def items(response: Json) -> dict[str, Json]:
    """Every item of ``response`` by linkId, at any depth (the first one with a linkId)."""
    found: dict[str, Json] = {}

    def visit(level: list[Json]) -> None:
        for item in level:
            if isinstance(item.get("linkId"), str):
                found.setdefault(item["linkId"], item)
            visit(item.get("item", []))

    visit(response.get("item", []))
    return found


def answer_of(response: Json, link_id: str) -> Any:
    item = items(response).get(link_id)
    if item is None or not item.get("answer"):
        return None
    (answer,) = item["answer"]
    ((kind, value),) = ((k, v) for k, v in answer.items() if k.startswith("value"))
    return value["code"] if kind == "valueCoding" else value


def filled(*resources: Json, **options: Any) -> Json:
    return populate(VOCABULARY, chart_of(resources, "p1"), as_of=NOW, **options)


# --- the patient ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "age", "group"),
    [
        ("2008-12-07", 18, "adult"),  # 18 today
        ("2008-12-08", 17, "adolescent"),  # 18 tomorrow
        ("2014-12-07", 12, "adolescent"),
        ("1950-01-31", 76, "adult"),
    ],
)
def test_age_and_age_group_come_from_the_birth_date_as_of_the_date_given(
    born: str, age: int, group: str
) -> None:
    response = filled(patient(birthDate=born))

    assert answer_of(response, "respondent.age_years") == age
    assert answer_of(response, "respondent.age_group") == group


@pytest.mark.parametrize("born", ["2015-01-01", "1990", "1990-05", "2027-01-01", "not-a-date"])
def test_a_child_a_vague_or_impossible_birth_date_answers_no_age(born: str) -> None:
    response = filled(patient(birthDate=born))

    assert answer_of(response, "respondent.age_years") is None
    assert answer_of(response, "respondent.age_group") is None


def test_birth_sex_is_preferred_to_gender_and_other_is_left_to_the_clinician() -> None:
    birth_sex = {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
        "valueCode": "F",
    }

    assert (
        answer_of(
            filled(patient(gender="male", extension=[birth_sex])), "respondent.sex_for_scoring"
        )
        == "female"
    )
    assert answer_of(filled(patient(gender="male")), "respondent.sex_for_scoring") == "male"
    assert answer_of(filled(patient(gender="other")), "respondent.sex_for_scoring") is None


# --- observations --------------------------------------------------------------------------


def test_vital_signs_and_labs_answer_in_the_questions_units() -> None:
    blood_pressure = {
        "resourceType": "Observation",
        "subject": SUBJECT,
        "id": "bp",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "effectiveDateTime": (NOW - timedelta(hours=2)).isoformat(),
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 142, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {"value": 91, "code": "mm[Hg]"},
            },
        ],
    }

    response = filled(
        blood_pressure,
        observation("8867-4", 112.4, "/min"),
        observation("8310-5", 101.3, "[degF]"),
        observation("2823-3", 3.1, "mmol/L", at=NOW - timedelta(days=3)),
        observation("2951-2", 131, "meq/L", at=NOW - timedelta(days=3)),
        observation("2345-7", 5.5, "mmol/L", at=NOW - timedelta(days=3)),
        observation("2777-1", 2.48, "mg/dL", at=NOW - timedelta(days=3)),
    )

    assert answer_of(response, "medical.systolic_bp_mmhg") == 142
    assert answer_of(response, "medical.diastolic_bp_mmhg") == 91
    assert answer_of(response, "medical.heart_rate_bpm") == 112
    assert answer_of(response, "medical.temperature_c") == 38.5
    assert answer_of(response, "medical.potassium_mmol_l") == 3.1
    assert answer_of(response, "medical.sodium_mmol_l") == 131.0
    assert answer_of(response, "medical.glucose_mg_dl") == 99
    assert answer_of(response, "medical.phosphate_mmol_l") == 0.8


def test_the_most_recent_usable_observation_answers() -> None:
    response = filled(
        observation("8867-4", 80, "/min", at=NOW - timedelta(hours=5), identifier="older"),
        observation("8867-4", 120, "/min", at=NOW - timedelta(hours=1), identifier="newer"),
        observation("8867-4", 140, "/min", at=NOW - timedelta(minutes=5), status="preliminary"),
    )

    assert answer_of(response, "medical.heart_rate_bpm") == 120
    (marker,) = items(response)["medical.heart_rate_bpm"]["extension"]
    assert marker["url"] == VOCABULARY.answer_source
    assert marker["valueReference"]["reference"] == "Observation/newer"


@pytest.mark.parametrize(
    "unusable",
    [
        observation("8867-4", 90, "/min", status="entered-in-error"),
        observation("8867-4", 90, "/min", status="cancelled"),
        observation("8867-4", 90, "/min", status="preliminary"),
        observation("8867-4", 90, "/min", at=NOW - timedelta(hours=25)),  # stale
        observation("8867-4", 90, "/min", at=NOW + timedelta(hours=1)),  # after as_of
        observation("8867-4", 900, "/min"),  # out of the question's bounds
        observation("8867-4", 90, "kg"),  # not a rate
    ],
)
def test_an_unusable_observation_answers_nothing(unusable: Json) -> None:
    assert answer_of(filled(unusable), "medical.heart_rate_bpm") is None


def test_pregnancy_status_answers_pregnant() -> None:
    status = observation("82810-3", 0, "1")
    del status["valueQuantity"]
    status["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": "LA15173-0"}]}

    assert answer_of(filled(status), "medical.pregnant") is True
    status["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": "LA26683-5"}]}
    assert answer_of(filled(status), "medical.pregnant") is False
    status["effectiveDateTime"] = (NOW - timedelta(days=31)).isoformat()
    assert answer_of(filled(status), "medical.pregnant") is None


# --- conditions and medications -------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "link_id", "expected"),
    [
        (condition("F10.20"), "co_occurring.substance_use.alcohol", "known"),
        (condition("F33.1", verification="provisional"), "co_occurring.depressive", "suspected"),
        (condition("F43.10", verification="confirmed"), "co_occurring.trauma", "known"),
        (condition("F43.10", verification="refuted"), "co_occurring.trauma", None),
        (condition("F43.10", verification="entered-in-error"), "co_occurring.trauma", None),
        (condition("F31.9", clinical="resolved"), "co_occurring.bipolar", None),
        (condition("F11.21"), "co_occurring.substance_use.opioids", None),  # in remission
        (condition("F17.210"), "co_occurring.substance_use.other", None),  # nicotine
        (
            medication("Buprenorphine 8 MG / Naloxone 2 MG Sublingual Film"),
            "co_occurring.substance_use.opioids",
            "suspected",
        ),
        (
            medication("methadone hydrochloride 10 MG Oral Tablet", status="stopped"),
            "co_occurring.substance_use.opioids",
            None,
        ),
        (medication("naltrexone 50 MG Oral Tablet"), "co_occurring.substance_use.opioids", None),
    ],
)
def test_active_diagnoses_and_opioid_agonist_treatment_answer_co_occurring_questions(
    resource: Json, link_id: str, expected: str | None
) -> None:
    assert answer_of(filled(resource), link_id) == expected


def test_a_known_diagnosis_outranks_a_suspicion() -> None:
    response = filled(
        medication("buprenorphine 8 MG Sublingual Tablet"),
        condition("F11.20", verification="provisional"),
        condition("F11.20"),
    )

    assert answer_of(response, "co_occurring.substance_use.opioids") == "known"


def test_the_chart_never_says_a_problem_is_absent() -> None:
    response = filled(patient(birthDate="1980-01-01", gender="female"))

    co_occurring = [link for link in items(response) if link.startswith("co_occurring.")]
    assert co_occurring == []


def test_medications_are_told_apart_for_the_cds_service() -> None:
    chart = chart_of(
        [
            medication("LORazepam 1 MG Oral Tablet"),
            medication("naltrexone 380 MG Injection"),
            medication("diazepam 5 MG Oral Tablet", status="entered-in-error"),
        ],
        "p1",
    )

    assert chart.on_benzodiazepine()
    assert chart.on_moud()
    assert not chart_of([medication("diazepam 5 MG", status="stopped")], "p1").on_benzodiazepine()


# --- the response ------------------------------------------------------------------------------


def test_bundles_are_opened_and_other_resource_types_dropped() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": observation("8867-4", 70, "/min")}, {"resource": {"x": 1}}, 3],
    }

    chart = chart_of([bundle, {"resourceType": "Encounter"}, "junk", patient()], "p1")

    assert len(chart.observations) == 1
    assert chart.patient == patient()
    assert chart.conditions == chart.medications == ()


@pytest.mark.parametrize(
    "whose",
    [None, {"reference": "Patient/p2"}, {"display": "the patient"}, "Patient/p1"],
    ids=["no one", "another patient", "no reference", "not a Reference"],
)
def test_chart_resources_not_about_the_patient_are_dropped_and_counted(whose: Any) -> None:
    stray = observation("8867-4", 70, "/min")
    del stray["subject"]
    if whose is not None:
        stray["subject"] = whose

    chart = chart_of([stray, patient(id="p2"), patient(id=None)], "p1")

    assert chart.observations == ()
    assert chart.patient is None
    assert chart.ignored == 3


@pytest.mark.parametrize(
    "reference",
    ["Patient/p1", "https://ehr.example/fhir/Patient/p1", "Patient/p1/_history/3", "p1"],
)
@pytest.mark.parametrize("field_name", ["subject", "patient"])
def test_a_chart_resource_names_the_patient_by_subject_or_patient(
    reference: str, field_name: str
) -> None:
    resource = medication("methadone 10 MG/ML Oral Solution")
    del resource["subject"]
    resource[field_name] = {"reference": reference}

    chart = chart_of([resource], "p1")

    assert len(chart.medications) == 1
    assert chart.ignored == 0


def test_a_pre_filled_answer_names_its_source_with_carelevels_answer_source_extension() -> None:
    # The core questionnaireresponse-author extension may only name a Device, Practitioner,
    # PractitionerRole, Patient, RelatedPerson or Organization: not an Observation.
    vocabulary = Vocabulary("https://carelevel.example/fhir/r4")
    chart = chart_of([observation("8867-4", 88, "/min", identifier="hr"), condition("F41.1")], "p1")
    response = populate(vocabulary, chart, as_of=NOW)

    markers = [e for item in items(response).values() for e in item.get("extension", [])]

    assert {m["url"] for m in markers} == {
        "https://carelevel.example/fhir/r4/StructureDefinition/answer-source"
    }
    assert vocabulary.answer_source == answer_source_definition(vocabulary)["url"]
    assert {m["valueReference"]["reference"] for m in markers} == {"Observation/hr", "Condition/c1"}


def test_answers_marked_under_the_former_canonical_base_count_as_pre_filled() -> None:
    vocabulary = Vocabulary("https://carelevel.example/fhir/r4")
    chart = chart_of([patient(gender="male", birthDate="1980-01-01")], "p1")
    response = populate(vocabulary, chart, as_of=NOW)
    found = items(response)
    found["respondent.sex_for_scoring"]["extension"][0]["url"] = LEGACY_POPULATED_FROM
    elsewhere = "https://elsewhere.example/StructureDefinition/answer-source"
    found["respondent.age_group"]["extension"][0]["url"] = elsewhere

    assert sorted(populated_link_ids(response, vocabulary)) == [
        "respondent.age_years",
        "respondent.sex_for_scoring",
    ]


def test_the_marker_is_defined_as_an_extension_of_a_response_item_naming_any_resource() -> None:
    definition = answer_source_definition(VOCABULARY)
    value = next(e for e in definition["differential"]["element"] if e["path"].endswith("[x]"))

    assert definition["type"] == "Extension"
    assert definition["status"] == "active"
    assert definition["context"] == [
        {"type": "element", "expression": "QuestionnaireResponse.item"}
    ]
    assert value["type"] == [
        {"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Resource"]}
    ]


def test_every_code_used_is_fetched_by_the_chart_queries() -> None:
    wanted = {code for measure in MEASURES for code in measure.codes} | {"82810-3"}
    observations = CHART_QUERIES["observations"]

    assert all(f"{LOINC}|{code}" in observations for code in wanted)
    assert all("{{context.patientId}}" in query for query in CHART_QUERIES.values())


def test_a_populated_response_completed_is_read_by_evaluate() -> None:
    response = filled(
        patient(birthDate="1980-01-01", gender="female"),
        observation("8867-4", 70, "/min"),
        condition("F41.1"),
    )
    response["status"] = "completed"
    response["item"].insert(
        0, {"linkId": "respondent.answered_by", "answer": [{"valueString": "clinician"}]}
    )

    read = read_response(response, VOCABULARY)

    assert read.answers["respondent"]["age_years"] == 46
    assert read.answers["medical"] == {"heart_rate_bpm": 70}
    assert read.answers["co_occurring"] == {"anxiety": "known"}


def test_what_the_form_does_not_know_is_kept_as_sent_for_evaluate_to_judge() -> None:
    odd = [
        {"linkId": "not-ours", "answer": [{"valueInteger": 1}]},
        {"linkId": "medical", "answer": [{"valueBoolean": True}]},  # a group answered
        {"answer": [{"valueInteger": 2}]},
    ]
    nested = {
        "linkId": "medical.heart_rate_bpm",
        "answer": [{"valueInteger": 61}],
        "item": [{"linkId": "x"}],
    }
    answered = {"resourceType": "QuestionnaireResponse", "status": "in-progress"}

    response = filled(
        observation("8867-4", 99, "/min"), answered=answered | {"item": [*odd, nested]}
    )

    assert response["item"][-3:] == odd
    assert items(response)["medical.heart_rate_bpm"] == nested


def nested_items(depth: int) -> list[Json]:
    """A question inside ``depth - 1`` groups."""
    item: Json = {"linkId": "medical.heart_rate_bpm", "answer": [{"valueInteger": 70}]}
    for _ in range(depth - 1):
        item = {"linkId": "medical", "item": [item]}
    return [item]


@pytest.mark.parametrize("depth", [MAX_ITEM_DEPTH + 1, 300, 3000])
def test_items_nested_deeper_than_the_limit_are_refused_naming_the_item(depth: int) -> None:
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": VOCABULARY.questionnaire("iop-level-of-care"),
        "status": "completed",
        "item": nested_items(depth),
    }

    with pytest.raises(FhirError) as refused:
        read_response(response, VOCABULARY)

    assert refused.value.status == 422
    (issue,) = refused.value.issues
    assert issue.expression == "QuestionnaireResponse" + ".item[0]" * (MAX_ITEM_DEPTH + 1)


def test_items_nested_within_answers_count_too() -> None:
    item: Json = {"linkId": "medical.heart_rate_bpm"}
    for _ in range(MAX_ITEM_DEPTH):
        item = {"linkId": "medical", "answer": [{"valueBoolean": True, "item": [item]}]}
    response = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [item]}

    with pytest.raises(FhirError) as refused:
        read_response(response, VOCABULARY)

    (issue,) = refused.value.issues
    assert issue.expression == "QuestionnaireResponse" + ".item[0].answer[0]" * MAX_ITEM_DEPTH + (
        ".item[0]"
    )


def test_the_questionnaire_nests_items_within_the_limit() -> None:
    def depth(item: FormItem) -> int:
        # An item list's items are one level below it.
        own = 2 if item.kind is Kind.ITEMS else 1
        return max([own, *(1 + depth(child) for child in item.children)])

    assert max(depth(top) for top in form()) <= MAX_ITEM_DEPTH


def test_as_of_must_say_its_time_zone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        populate(VOCABULARY, Chart(), as_of=datetime(2026, 12, 7, 12, 0))


def test_the_response_is_in_progress_and_cites_the_questionnaire() -> None:
    response = populate(VOCABULARY, Chart(patient=patient()), as_of=NOW)

    assert response["status"] == "in-progress"
    assert response["questionnaire"] == VOCABULARY.questionnaire("iop-level-of-care")
    assert response["subject"] == {"reference": "Patient/p1"}
    assert populated_link_ids(response, VOCABULARY) == []


# --- properties ----------------------------------------------------------------------------

CHART = (
    patient(birthDate="1990-03-04", gender="male"),
    observation("8867-4", 88, "/min", identifier="hr"),
    observation("8310-5", 37.2, "Cel", identifier="t"),
    observation("2823-3", 4.1, "mmol/L", identifier="k"),
    condition("F10.20"),
)
CHART_LINK_IDS = sorted(populated_link_ids(filled(*CHART), VOCABULARY))
HUMAN_ANSWERS = st.one_of(
    st.builds(lambda v: {"valueInteger": v}, st.integers(20, 120)),
    st.builds(lambda v: {"valueBoolean": v}, st.booleans()),
    st.builds(lambda v: {"valueString": v}, st.text(max_size=5)),
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.sampled_from(CHART_LINK_IDS), HUMAN_ANSWERS, min_size=1),
    st.booleans(),
)
def test_the_chart_never_overrides_an_answer_already_given(
    given_answers: dict[str, Json], in_sections: bool
) -> None:
    questions: list[Json] = [
        {"linkId": link_id, "answer": [answer]} for link_id, answer in given_answers.items()
    ]
    if in_sections:  # as a form nests them, or flat: both are read
        questions = [{"linkId": q["linkId"].split(".")[0], "item": [q]} for q in questions]
    answered = {"resourceType": "QuestionnaireResponse", "status": "in-progress", "item": questions}
    sent = copy.deepcopy(answered)

    response = filled(*CHART, answered=answered)

    found = items(response)
    for link_id, answer in given_answers.items():
        assert found[link_id] == {"linkId": link_id, "answer": [answer]}
    assert set(populated_link_ids(response, VOCABULARY)) == set(CHART_LINK_IDS) - set(given_answers)
    assert answered == sent  # the caller's response is not changed in place


UNUSABLE = st.one_of(
    st.tuples(
        st.sampled_from(["entered-in-error", "cancelled", "preliminary", "registered", "unknown"]),
        st.integers(0, 60 * 23),  # within every window: minutes before as_of
    ),
    st.tuples(
        st.sampled_from(["final", "amended", "corrected"]),
        st.one_of(st.integers(60 * 24 * 7 + 1, 60 * 24 * 400), st.integers(-60 * 24, -1)),
    ),
)


# One value in range per measure: each answers its question when final and recent.
IN_RANGE = {
    "medical.heart_rate_bpm": ("/min", 88),
    "medical.systolic_bp_mmhg": ("mm[Hg]", 120),
    "medical.diastolic_bp_mmhg": ("mm[Hg]", 80),
    "medical.temperature_c": ("Cel", 37.0),
    "medical.potassium_mmol_l": ("mmol/L", 4.0),
    "medical.sodium_mmol_l": ("mmol/L", 140),
    "medical.glucose_mg_dl": ("mg/dL", 100),
    "medical.phosphate_mmol_l": ("mg/dL", 3.1),
}


def measured(measure: Any, *, status: str = "final", minutes_ago: int = 30) -> Json:
    unit, value = IN_RANGE[measure.link_id]
    at = NOW - timedelta(minutes=minutes_ago)
    return observation(sorted(measure.codes)[0], value, unit, at=at, status=status)


@pytest.mark.parametrize("measure", MEASURES, ids=lambda m: m.link_id)
def test_each_measure_answers_when_final_and_recent(measure: Any) -> None:
    assert populated_link_ids(filled(measured(measure)), VOCABULARY) == [measure.link_id]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(MEASURES), UNUSABLE), min_size=1, max_size=6))
def test_stale_future_or_not_final_observations_are_never_used(
    observations: list[tuple[Any, tuple[str, int]]],
) -> None:
    chart = [
        measured(measure, status=status, minutes_ago=minutes_ago)
        for measure, (status, minutes_ago) in observations
    ]

    assert populated_link_ids(filled(*chart), VOCABULARY) == []

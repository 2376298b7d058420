"""The program document: its scheduled hours, lists kept as sets, the timetable in week order,
and errors that name the field at fault."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.engine.programs import Day, ProgramDocument, minutes_of
from app.programs.examples import EVENING_IOP

Json = dict[str, Any]


def document(**fields: Any) -> Json:
    return {
        "name": "Evening IOP",
        "level": "intensive_outpatient",
        "populations": ["adult"],
        "specialties": ["mental_health"],
        "modality": "in_person",
        "languages": ["en"],
    } | fields


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def sessions(draw: st.DrawFn) -> Json:
    start = draw(st.integers(0, 24 * 60 - 2))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    return {"day": draw(st.sampled_from(list(Day))).value, "start": clock(start), "end": clock(end)}


def overlap(a: Json, b: Json) -> bool:
    return bool(a["day"] == b["day"] and a["start"] < b["end"] and b["start"] < a["end"])


@st.composite
def timetables(draw: st.DrawFn, max_size: int) -> list[Json]:
    """Sessions that do not overlap (each drawn one that overlaps an earlier one is left out)."""
    kept: list[Json] = []
    for session in draw(st.lists(sessions(), max_size=max_size)):
        if not any(overlap(session, other) for other in kept):
            kept.append(session)
    return kept


def locations(error: ValidationError) -> list[tuple[str | int, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def test_the_example_program_is_valid_with_nine_hours_a_week() -> None:
    program = ProgramDocument.model_validate(EVENING_IOP)

    assert program.hours_per_week == 9.0
    assert [program.session_modality(s).value for s in program.timetable] == [
        "in_person",
        "telehealth",
        "in_person",
    ]


def test_no_timetable_is_no_hours_recorded() -> None:
    assert ProgramDocument.model_validate(document()).hours_per_week is None


def test_lists_are_sets_and_the_timetable_is_in_week_order() -> None:
    program = ProgramDocument.model_validate(
        document(
            languages=["es", "en", "es"],
            populations=["older_adult", "adult", "adult"],
            payers=["b", "a", "b"],
            timetable=[
                {"day": "sunday", "start": "10:00", "end": "11:00"},
                {"day": "monday", "start": "18:00", "end": "19:00"},
                {"day": "monday", "start": "09:00", "end": "10:30"},
            ],
        )
    )

    assert (program.languages, program.populations, program.payers) == (
        ["en", "es"],
        ["adult", "older_adult"],
        ["a", "b"],
    )
    assert [(s.day.value, s.start) for s in program.timetable] == [
        ("monday", "09:00"),
        ("monday", "18:00"),
        ("sunday", "10:00"),
    ]
    assert program.hours_per_week == 3.5


@given(timetables(max_size=50))
def test_hours_per_week_is_the_sum_of_the_sessions(timetable: list[Json]) -> None:
    program = ProgramDocument.model_validate(document(timetable=timetable))

    expected = sum(minutes_of(s["end"]) - minutes_of(s["start"]) for s in timetable) / 60
    if timetable:
        assert program.hours_per_week == pytest.approx(expected, abs=0.005)
    else:
        assert program.hours_per_week is None


@given(
    timetables(max_size=20),
    st.lists(st.sampled_from(["en", "es", "fr", "zh-Hant", "pt-BR"]), min_size=1, max_size=8),
    st.lists(st.sampled_from(["medicaid", "medicare", "self-pay"]), max_size=6) | st.none(),
)
def test_normalising_twice_is_normalising_once(
    timetable: list[Json], languages: list[str], payers: list[str] | None
) -> None:
    once = ProgramDocument.model_validate(
        document(timetable=timetable, languages=languages, payers=payers)
    )
    twice = ProgramDocument.model_validate(once.model_dump(mode="json"))

    assert twice == once
    assert twice.model_dump(mode="json") == once.model_dump(mode="json")


@pytest.mark.parametrize(
    ("fields", "location"),
    [
        (
            {"timetable": [{"day": "monday", "start": "18:00", "end": "18:00"}]},
            ("timetable", 0, "end"),
        ),
        (
            {
                "modality": "hybrid",
                "timetable": [
                    {"day": "monday", "start": "18:00", "end": "21:00", "modality": "in_person"},
                    {"day": "tuesday", "start": "18:00", "end": "21:00"},
                ],
            },
            ("timetable", 1, "modality"),
        ),
        (
            {
                "modality": "telehealth",
                "timetable": [
                    {"day": "monday", "start": "18:00", "end": "21:00", "modality": "in_person"}
                ],
            },
            ("timetable", 0, "modality"),
        ),
        (
            {"travel_times": [{"area": "x", "minutes": 1}, {"area": "x", "minutes": 2}]},
            ("travel_times", 1, "area"),
        ),
        ({"location": {"label": "Clinic", "longitude": 3.5}}, ("location", "longitude")),
        ({"languages": ["EN"]}, ("languages", 0)),
        ({"description": "line\u0007"}, ("description",)),
        (
            {
                "timetable": [
                    {"day": "monday", "start": "18:00", "end": "21:00"},
                    {"day": "tuesday", "start": "18:00", "end": "21:00"},
                    {"day": "monday", "start": "20:30", "end": "22:00"},
                ]
            },
            ("timetable", 2),
        ),
        (
            {"timetable": [{"day": "monday", "start": "00:00", "end": "23:59"}] * 2},
            ("timetable", 1),
        ),
    ],
)
def test_an_invalid_document_names_the_field(fields: Json, location: tuple[str | int, ...]) -> None:
    with pytest.raises(ValidationError) as raised:
        ProgramDocument.model_validate(document(**fields))

    assert locations(raised.value) == [location]


def test_a_description_may_hold_line_breaks() -> None:
    program = ProgramDocument.model_validate(document(description="Evenings.\nWeekends.\t"))

    assert program.description == "Evenings.\nWeekends.\t"


def test_whether_it_admits_people_taking_moud_is_a_strict_boolean_or_not_recorded() -> None:
    assert ProgramDocument.model_validate(document()).accepts_people_on_moud is None
    assert (
        ProgramDocument.model_validate(
            document(accepts_people_on_moud=False)
        ).accepts_people_on_moud
        is False
    )
    with pytest.raises(ValidationError) as raised:
        ProgramDocument.model_validate(document(accepts_people_on_moud="yes"))

    assert locations(raised.value) == [("accepts_people_on_moud",)]


def test_sessions_that_meet_do_not_overlap() -> None:
    back_to_back = [
        {"day": "monday", "start": "18:00", "end": "19:00"},
        {"day": "monday", "start": "19:00", "end": "20:00"},
    ]

    assert ProgramDocument.model_validate(document(timetable=back_to_back)).hours_per_week == 2


@given(st.lists(sessions(), min_size=2, max_size=12))
def test_a_timetable_is_accepted_exactly_when_no_two_sessions_overlap(
    timetable: list[Json],
) -> None:
    overlapping = any(overlap(a, b) for i, a in enumerate(timetable) for b in timetable[:i])
    try:
        ProgramDocument.model_validate(document(timetable=timetable))
    except ValidationError:
        assert overlapping
    else:
        assert not overlapping


@pytest.mark.parametrize("payers", [[], None])
def test_no_payers_is_not_recorded(payers: list[str] | None) -> None:
    program = ProgramDocument.model_validate(document(payers=payers))

    assert program.payers is None
    assert program.model_dump(mode="json")["payers"] is None

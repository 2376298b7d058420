"""A treatment program as a tenant records it in its directory: what it offers, to whom, when
and where. One type for the REST body, the stored document, the FHIR ``HealthcareService`` and
the matcher's input (app/engine/matching.py).

A program is about a service, never about a person: nothing here may hold a patient's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from app.engine.choice import Choice
from app.engine.determination import LevelOfCare


class ProgramPart(BaseModel):
    """Base of every part of a program document: strict about unknown fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Population(Choice):
    """Who a program admits. ``older_adult``: 65 and over (a program for adults that also
    welcomes older adults lists both)."""

    ADULT = "adult"
    ADOLESCENT = "adolescent"
    OLDER_ADULT = "older_adult"


class Specialty(Choice):
    """What a program treats; the presenting concerns of the questionnaire, plus trauma."""

    SUBSTANCE_USE = "substance_use"
    MENTAL_HEALTH = "mental_health"
    EATING_DISORDER = "eating_disorder"
    TRAUMA = "trauma"


class CoOccurringCapability(Choice):
    """How a program treats co-occurring substance use and mental health conditions, in
    ascending order: none, capable (screens for and treats both), enhanced (psychiatric staff,
    integrated treatment of serious conditions)."""

    NONE = "none"
    CAPABLE = "capable"
    ENHANCED = "enhanced"


class ProgramService(Choice):
    """Services a program provides that a determination's conditions may ask for (the condition
    codes of the shipped rule set with the same name)."""

    MOUD = "moud"
    MOUD_IN_PREGNANCY = "moud_in_pregnancy"
    SUPERVISED_TAPER = "supervised_taper"
    FAMILY_BASED_TREATMENT = "family_based_treatment"
    ADAPTED_PROGRAM = "adapted_program"
    PRIMARY_CARE_COORDINATION = "primary_care_coordination"


class Modality(Choice):
    IN_PERSON = "in_person"
    TELEHEALTH = "telehealth"
    HYBRID = "hybrid"


class SessionModality(Choice):
    IN_PERSON = "in_person"
    TELEHEALTH = "telehealth"


class Day(Choice):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


WEEKEND: frozenset[Day] = frozenset({Day.SATURDAY, Day.SUNDAY})
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
# BCP 47, as far as a directory needs: a language and optional subtags (``en``, ``es-MX``).
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]
# Free text holds no control characters (PostgreSQL refuses NUL in JSON); a description may
# hold line breaks and tabs.
Line = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]
Paragraphs = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]


def _invalid(kind: str, message: str, *loc: str | int) -> ValidationError:
    """An error at ``loc`` below the field being validated, so that the response's pointer names
    the very entry (``#/travel_times/1/area``) rather than the list."""
    error = InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=None)
    return ValidationError.from_exception_data("ProgramDocument", [error])


def minutes_of(clock: str) -> int:
    """Minutes after midnight of an ``HH:MM`` time."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Session(ProgramPart):
    """One weekly session: its day, local start and end times, and how it is held (a hybrid
    program says which sessions are telehealth)."""

    day: Day = Field(description="Day of the week.", examples=["monday"])
    start: ClockTime = Field(description="Local start time, HH:MM (24-hour).", examples=["18:00"])
    end: ClockTime = Field(
        description="Local end time, HH:MM (24-hour), later than the start on the same day.",
        examples=["21:00"],
    )
    modality: SessionModality | None = Field(
        default=None,
        description="How this session is held; empty: as the program's modality says (a "
        "hybrid program must say it for each session).",
        examples=["in_person"],
    )

    @field_validator("end")
    @classmethod
    def _ends_after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")  # absent when the start itself is invalid
        if start is not None and minutes_of(end) <= minutes_of(start):
            raise PydanticCustomError("end_before_start", "must be later than start")
        return end

    @property
    def hours(self) -> float:
        return (minutes_of(self.end) - minutes_of(self.start)) / 60


class Location(ProgramPart):
    """Where the in-person sessions are held. Coordinates give straight-line distances; no map
    service is called."""

    label: Line = Field(
        min_length=1, max_length=200, description="A name people know the place by."
    )
    address: Line | None = Field(default=None, max_length=300, description="Street address.")
    latitude: StrictFloat | None = Field(
        default=None, ge=-90, le=90, description="WGS 84 latitude, degrees."
    )
    longitude: StrictFloat | None = Field(
        default=None,
        ge=-180,
        le=180,
        validate_default=True,  # so that a latitude without a longitude is refused
        description="WGS 84 longitude, degrees (given with the latitude, or neither).",
    )

    @field_validator("longitude")
    @classmethod
    def _both_coordinates_or_none(
        cls, longitude: float | None, info: ValidationInfo
    ) -> float | None:
        if "latitude" in info.data and (info.data["latitude"] is None) != (longitude is None):
            raise PydanticCustomError("coordinates", "give both latitude and longitude, or neither")
        return longitude


class TravelTime(ProgramPart):
    """The tenant's own estimate of the one-way travel time from an area it names (a district, a
    postcode prefix, a town) to this program."""

    area: Token = Field(description="The tenant's name for the area travelled from.")
    minutes: StrictInt = Field(ge=0, le=600, description="One-way travel time, minutes.")


class Capacity(ProgramPart):
    """How soon the program can admit someone, as the tenant last recorded it."""

    places: StrictInt | None = Field(default=None, ge=0, le=100_000, description="Total places.")
    open_places: StrictInt | None = Field(
        default=None, ge=0, le=100_000, description="Places free now."
    )
    waitlist_weeks: StrictFloat | None = Field(
        default=None, ge=0, le=104, description="Estimated wait before admission, weeks."
    )


class Contact(ProgramPart):
    """How a referrer reaches the program's intake (the program's, never a person's)."""

    phone: Line | None = Field(default=None, max_length=40, examples=["+1 555 0100"])
    email: Line | None = Field(default=None, max_length=200, examples=["intake@example.org"])
    url: Line | None = Field(default=None, max_length=500, examples=["https://example.org/iop"])


class ProgramDocument(ProgramPart):
    """A program of the tenant's directory, its own or one it refers to."""

    name: Line = Field(
        min_length=1,
        max_length=200,
        description="The program's name as referrers know it (not a person's).",
        examples=["Evening IOP, Riverside clinic"],
    )
    description: Paragraphs | None = Field(default=None, max_length=2000)
    operated_by: Line | None = Field(
        default=None,
        max_length=200,
        description="The organisation that runs it, when it is not the tenant's own program.",
    )
    level: LevelOfCare = Field(description="The level of care the program provides.")
    populations: list[Population] = Field(min_length=1, description="Who it admits.")
    specialties: list[Specialty] = Field(min_length=1, description="What it treats.")
    co_occurring_capability: CoOccurringCapability = Field(
        default=CoOccurringCapability.NONE,
        description="How it treats co-occurring substance use and mental health conditions.",
    )
    services: list[ProgramService] = Field(
        default_factory=list,
        description="Services it provides that a determination's conditions may ask for.",
    )
    accepts_people_on_moud: StrictBool | None = Field(
        default=None,
        description="Whether it admits people taking medication for opioid use disorder "
        "(MOUD: buprenorphine, methadone, naltrexone), including from another prescriber; "
        "empty: not recorded. A program that provides MOUD admits them.",
    )
    modality: Modality = Field(description="In person, telehealth, or both (hybrid).")
    timetable: list[Session] = Field(
        default_factory=list,
        max_length=50,
        description="The weekly sessions (empty: not recorded; 24-hour programs need none).",
    )
    location: Location | None = Field(default=None, description="Where in-person sessions are.")
    travel_times: list[TravelTime] = Field(
        default_factory=list,
        max_length=500,
        description="The tenant's travel-time table to this program, by area (one entry each).",
    )
    languages: list[LanguageTag] = Field(
        min_length=1, max_length=30, description="Languages sessions are held in (BCP 47)."
    )
    capacity: Capacity = Field(default_factory=Capacity)
    payers: list[Token] | None = Field(
        default=None,
        max_length=200,
        description="Payers it accepts, in the tenant's own codes; empty: not recorded.",
    )
    accepting_referrals: StrictBool = Field(
        default=True, description="False while the program takes no new referrals."
    )
    contact: Contact | None = None

    @field_validator("populations", "specialties", "services", "languages")
    @classmethod
    def _as_sets(cls, value: list[str]) -> list[str]:
        """Lists are sets: duplicates dropped, sorted, so equal programs store equal documents."""
        return sorted(set(value))

    @field_validator("payers")
    @classmethod
    def _payers_as_set(cls, value: list[str] | None) -> list[str] | None:
        """A set like the other lists; an empty list records no more than an absent one (the
        matcher would read it as accepting no payer at all)."""
        return sorted(set(value)) if value else None

    @field_validator("timetable")
    @classmethod
    def _timetable_in_week_order(cls, value: list[Session], info: ValidationInfo) -> list[Session]:
        """Sessions fit the program's modality (checked in the order sent, so that an error
        names the session as sent), then sorted into week order."""
        modality = info.data.get("modality")  # absent when the modality itself is invalid
        for index, session in enumerate(value):
            _check_session_modality(modality, session, index)
            _check_no_overlap(value[:index], session, index)
        order = {day: rank for rank, day in enumerate(Day)}
        return sorted(value, key=lambda s: (order[s.day], s.start, s.end))

    @field_validator("travel_times")
    @classmethod
    def _one_entry_per_area(cls, value: list[TravelTime]) -> list[TravelTime]:
        seen: set[str] = set()
        for index, travel_time in enumerate(value):
            if travel_time.area in seen:
                raise _invalid("duplicate_area", "names an area listed before", index, "area")
            seen.add(travel_time.area)
        return value

    @property
    def hours_per_week(self) -> float | None:
        """Scheduled hours a week, from the timetable (None: no timetable recorded)."""
        if not self.timetable:
            return None
        return round(sum(session.hours for session in self.timetable), 2)

    def session_modality(self, session: Session) -> SessionModality:
        if session.modality is not None:
            return session.modality
        return SessionModality(self.modality.value)


def _check_no_overlap(earlier: list[Session], session: Session, index: int) -> None:
    """A session overlapping one listed before it on the same day is refused: the week's hours
    would count the same time twice."""
    start, end = minutes_of(session.start), minutes_of(session.end)
    for other in earlier:
        if (
            other.day == session.day
            and start < minutes_of(other.end)
            and minutes_of(other.start) < end
        ):
            raise _invalid("sessions_overlap", "overlaps a session listed before it", index)


def _check_session_modality(modality: Modality | None, session: Session, index: int) -> None:
    if modality is Modality.HYBRID and session.modality is None:
        raise _invalid(
            "session_modality_missing",
            "a hybrid program says for each session whether it is in person or telehealth",
            index,
            "modality",
        )
    # The two enumerations share their values: a session's modality is the program's, or none.
    differs = session.modality is not None and session.modality.value != modality
    if modality not in (None, Modality.HYBRID) and differs:
        raise _invalid(
            "session_modality_differs", "differs from the program's modality", index, "modality"
        )


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A program as the matcher sees it: its id, the version of its document, the document."""

    id: str
    version: int
    program: ProgramDocument

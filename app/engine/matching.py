"""Matching a screening's determination against a tenant's program directory.

Pure and deterministic: no I/O, no clock. The REST API, referrals and CDS cards call it with the
stored determination JSON, the answers JSON and the referrer's preferences; each program of the
directory is judged on a fixed list of criteria, each with a sentence a clinician can check, and
the programs are ranked by a total order (so equal inputs always give equal rankings).

Explanations name program facts and the answers the clinician already sees; never coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.engine.determination import LEVEL_INFO, LevelOfCare, Urgency
from app.engine.programs import (
    WEEKEND,
    CoOccurringCapability,
    DirectoryEntry,
    Modality,
    Population,
    ProgramDocument,
    ProgramService,
    Session,
    SessionModality,
    minutes_of,
)

Outcome = Literal["fits", "partly", "does_not_fit", "unknown"]
LevelSource = Literal["recommended", "decided"]
CRITERIA: tuple[str, ...] = (
    "level",
    "population",
    "specialty",
    "co_occurring",
    "services",
    "language",
    "payer",
    "accepting_referrals",
    "modality",
    "schedule",
    "hours",
    "travel",
    "waitlist",
)
# The shipped rule set's feasibility stage flags more than this many minutes each way.
TRAVEL_LIMIT_MINUTES = 60
TRAVEL_COMFORTABLE_MINUTES = 45
DETOUR_FACTOR = 1.3
# Average door-to-door speeds (km/h) for a straight-line estimate, by the transport answer.
SPEED_KMH: Mapping[str | None, float] = {
    "own_vehicle": 40.0,
    "rides_from_others": 40.0,
    "public_transit": 20.0,
    "none": 5.0,
    None: 20.0,
}
# Missing these services is a safety matter, not something to arrange alongside.
SAFETY_SERVICES = frozenset({ProgramService.MOUD_IN_PREGNANCY, ProgramService.SUPERVISED_TAPER})
EVENING_STARTS = 17 * 60
OLDER_ADULT_AGE = 65
CAPABILITY_ORDER = tuple(CoOccurringCapability)
_CAPABILITY_CONDITIONS = {
    "co_occurring_capable": CoOccurringCapability.CAPABLE,
    "co_occurring_enhanced": CoOccurringCapability.ENHANCED,
}
_SERVICE_CODES = frozenset(s.value for s in ProgramService)
_URGENT = frozenset({Urgency.URGENT.value, Urgency.EMERGENT.value})


@dataclass(frozen=True)
class Origin:
    """Where the person travels from: an area of the tenant's travel-time tables, or coordinates."""

    area: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Preferences:
    """What the referrer adds to the screening: origin, preferred languages, payer."""

    origin: Origin | None = None
    languages: tuple[str, ...] = ()
    payer: str | None = None


@dataclass(frozen=True)
class Needs:
    """Everything the matcher reads about the person (None: not answered)."""

    level: str | None
    urgency: str
    missing: tuple[str, ...] = ()
    # "decided": a clinician decided the level to match; the recommended one is kept to say so.
    level_source: LevelSource = "recommended"
    recommended_level: str | None = None
    population: Population | None = None
    concerns: tuple[str, ...] = ()
    capability: CoOccurringCapability = CoOccurringCapability.NONE
    services: tuple[str, ...] = ()
    minimum_hours: float | None = None
    transport: str | None = None
    telehealth_capable: bool | None = None
    hours_available: float | None = None
    times_available: tuple[str, ...] | None = None
    obligations: tuple[str, ...] = ()
    preferences: Preferences = Preferences()


@dataclass(frozen=True)
class Criterion:
    criterion: str
    outcome: Outcome
    explanation: str


@dataclass(frozen=True)
class Candidate:
    program_id: str
    program_version: int
    name: str
    rank: int
    fits: bool
    criteria: tuple[Criterion, ...]
    summary: str
    travel_minutes: int | None
    waitlist_weeks: float | None


@dataclass(frozen=True)
class Matches:
    level: str | None
    urgency: str
    notice: str | None
    candidates: tuple[Candidate, ...]
    level_source: LevelSource = "recommended"


@dataclass(frozen=True)
class _Judgement:
    """One criterion's outcome, its sentence, and the short phrase a summary uses."""

    outcome: Outcome
    explanation: str
    phrase: str


# --- needs ----------------------------------------------------------------------------------


def needs_for(
    determination: Mapping[str, Any],
    answers: Mapping[str, Any],
    preferences: Preferences,
    *,
    decided_level: str | None = None,
) -> Needs:
    """What the person needs, from the determination JSON, the answers JSON and preferences.

    ``decided_level``: the level a clinician decided (the latest decision's final level); the
    programs are then matched against it rather than the recommended level."""
    recommended = determination.get("recommended_level") or {}
    codes = [str(c.get("code")) for c in determination.get("conditions") or ()]
    logistics = answers.get("logistics") or {}
    respondent = answers.get("respondent") or {}
    minimum = (recommended.get("hours_per_week") or {}).get("minimum_per_week")
    if decided_level is not None and decided_level != recommended.get("level"):
        minimum = _minimum_hours(decided_level, respondent.get("age_group"))
    return Needs(
        level=decided_level or recommended.get("level"),
        urgency=str(determination.get("urgency") or Urgency.ROUTINE.value),
        missing=tuple(str(m.get("label")) for m in determination.get("missing") or ()),
        level_source="recommended" if decided_level is None else "decided",
        recommended_level=recommended.get("level"),
        population=_population(respondent),
        concerns=tuple(sorted(set(answers.get("presenting_concerns") or ()))),
        capability=max(
            (_CAPABILITY_CONDITIONS[c] for c in codes if c in _CAPABILITY_CONDITIONS),
            key=CAPABILITY_ORDER.index,
            default=CoOccurringCapability.NONE,
        ),
        services=tuple(sorted({c for c in codes if c in _SERVICE_CODES})),
        minimum_hours=minimum,
        transport=logistics.get("transport"),
        telehealth_capable=_telehealth_capable(logistics.get("telehealth")),
        hours_available=logistics.get("hours_per_week_available"),
        times_available=_optional_tuple(logistics.get("times_available")),
        obligations=tuple(logistics.get("obligations") or ()),
        preferences=preferences,
    )


def _minimum_hours(level: str, age_group: str | None) -> int | None:
    """The usual weekly minimum of a level for the person's age group (adult when unknown)."""
    try:
        info = LEVEL_INFO[LevelOfCare(level)]
    except (ValueError, KeyError):
        return None
    hours = info.adolescent_hours if age_group == Population.ADOLESCENT else info.adult_hours
    return hours.minimum_per_week


def _population(respondent: Mapping[str, Any]) -> Population | None:
    """Adolescent, adult, or older adult (65 and over, when the age is given)."""
    group = respondent.get("age_group")
    if group is None:
        return None
    age = respondent.get("age_years")
    if group == Population.ADULT.value and age is not None and age >= OLDER_ADULT_AGE:
        return Population.OLDER_ADULT
    return Population(group)


def _telehealth_capable(telehealth: Mapping[str, Any] | None) -> bool | None:
    """Capable when device, private space and connection are all there; None if any unanswered."""
    values = [(telehealth or {}).get(k) for k in ("device", "private_space", "reliable_connection")]
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _optional_tuple(values: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if values is None else tuple(values)


# --- matching -------------------------------------------------------------------------------


def match(needs: Needs, entries: Sequence[DirectoryEntry]) -> Matches:
    """Every program of the directory judged against the needs, ranked best first."""
    if needs.level is None:
        missing = "; ".join(needs.missing) or "more answers"
        notice = (
            "The screening has no recommended level yet, so no program is matched. "
            f"Missing: {missing}."
        )
        return Matches(None, needs.urgency, notice, (), needs.level_source)
    if needs.level == LevelOfCare.EMERGENCY_EVALUATION.value:
        notice = (
            "Emergency evaluation comes first (988, 911 or the nearest emergency department); "
            "match programs after it."
        )
        return Matches(needs.level, needs.urgency, notice, (), needs.level_source)
    judged = sorted((_judge(needs, entry) for entry in entries), key=lambda j: j[0])
    candidates = tuple(
        _candidate(entry, rank, judgements, travel)
        for rank, (_, entry, judgements, travel) in enumerate(judged, start=1)
    )
    return Matches(needs.level, needs.urgency, None, candidates, needs.level_source)


def judge(needs: Needs, entry: DirectoryEntry) -> Candidate:
    """One program judged alone (rank 1), whatever the level: what a referral records, also
    for a screening without a level or one that needs emergency evaluation first."""
    _, _, judgements, travel = _judge(needs, entry)
    return _candidate(entry, 1, judgements, travel)


_Judged = tuple[tuple[Any, ...], DirectoryEntry, dict[str, _Judgement], int | None]


def _judge(needs: Needs, entry: DirectoryEntry) -> _Judged:
    program = entry.program
    travel = _travel_minutes(needs, program)
    judgements = {name: JUDGES[name](needs, program, travel) for name in CRITERIA}
    outcomes = [j.outcome for j in judgements.values()]
    key = (
        "does_not_fit" in outcomes,
        outcomes.count("does_not_fit"),
        outcomes.count("partly"),
        outcomes.count("unknown"),
        _waitlist_key(program),
        _travel_key(needs, program, travel),
        program.name,
        entry.id,
    )
    return key, entry, judgements, travel


def _waitlist_key(program: ProgramDocument) -> tuple[int, float]:
    """Open places first, then the shortest wait, then an unknown wait."""
    if (program.capacity.open_places or 0) > 0:
        return (0, 0.0)
    if program.capacity.waitlist_weeks is not None:
        return (1, float(program.capacity.waitlist_weeks))
    return (2, 0.0)


def _travel_key(needs: Needs, program: ProgramDocument, travel: int | None) -> tuple[int, int]:
    """No travel (telehealth) first, then the shortest travel, then an unknown one."""
    if _remote(needs, program):
        return (0, 0)
    return (1, 0) if travel is None else (0, travel)


def _candidate(
    entry: DirectoryEntry, rank: int, judgements: dict[str, _Judgement], travel: int | None
) -> Candidate:
    criteria = tuple(Criterion(n, j.outcome, j.explanation) for n, j in judgements.items())
    fits = all(c.outcome != "does_not_fit" for c in criteria)
    waitlist = entry.program.capacity.waitlist_weeks
    return Candidate(
        program_id=entry.id,
        program_version=entry.version,
        name=entry.program.name,
        rank=rank,
        fits=fits,
        criteria=criteria,
        summary=_summary(fits, judgements),
        travel_minutes=travel,
        waitlist_weeks=None if waitlist is None else float(waitlist),
    )


_HIGHLIGHTS = ("schedule", "travel", "waitlist")


def _summary(fits: bool, judgements: dict[str, _Judgement]) -> str:
    """One sentence: what fits (schedule, travel, places) or what does not."""
    if not fits:
        phrases = [j.phrase for j in judgements.values() if j.outcome == "does_not_fit"]
        return "Does not fit: " + "; ".join(phrases) + "."
    phrases = [judgements[n].phrase for n in _HIGHLIGHTS if judgements[n].outcome == "fits"]
    partly = [j.phrase for j in judgements.values() if j.outcome == "partly"]
    sentence = "Fits: " + (", ".join(phrases) or "no criterion rules it out")
    if partly:
        sentence += "; to arrange: " + "; ".join(partly)
    return sentence + "."


# --- criteria -------------------------------------------------------------------------------


def _fits(explanation: str, phrase: str) -> _Judgement:
    return _Judgement("fits", explanation, phrase)


def _partly(explanation: str, phrase: str) -> _Judgement:
    return _Judgement("partly", explanation, phrase)


def _not(explanation: str, phrase: str) -> _Judgement:
    return _Judgement("does_not_fit", explanation, phrase)


def _unknown(explanation: str, phrase: str) -> _Judgement:
    return _Judgement("unknown", explanation, phrase)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _level_to_match(needs: Needs) -> str:
    """How the explanations name the level matched against."""
    needed = _words(str(needs.level))
    if needs.level_source == "recommended":
        return f"the recommended level, {needed}"
    if needs.recommended_level is None or needs.recommended_level == needs.level:
        return f"the level the clinician decided, {needed}"
    recommended = _words(needs.recommended_level)
    return f"the level the clinician decided, {needed} (recommended: {recommended})"


def _level(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    offered = _words(program.level.value)
    if needs.level is None:
        return _unknown(f"The program provides {offered}; the screening has no level yet.", "")
    if program.level.value == needs.level:
        return _fits(f"The program provides {offered}: {_level_to_match(needs)}.", offered)
    return _not(
        f"The program provides {offered}; the level to match is {_level_to_match(needs)}.",
        f"{offered} only",
    )


def _population_judgement(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    admits = ", ".join(_words(p.value) + "s" for p in program.populations)
    if needs.population is None:
        return _unknown(f"The program admits {admits}; the age group was not answered.", "age")
    # An older adult is an adult: a program for adults admits them unless it says otherwise.
    accepted = {needs.population}
    if needs.population is Population.OLDER_ADULT:
        accepted.add(Population.ADULT)
    who = _words(needs.population.value) + "s"
    if needs.population in program.populations:
        return _fits(f"The program admits {admits}.", f"admits {who}")
    if accepted & set(program.populations):
        return _fits(f"The program admits {admits}; an older adult is an adult.", f"admits {who}")
    return _not(f"The program admits {admits} only, not {who}.", f"{admits} only")


def _specialty(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    if not needs.concerns:
        return _unknown("No presenting concern was answered.", "concerns not answered")
    treated = {s.value for s in program.specialties}
    missing = [c for c in needs.concerns if c not in treated]
    if not missing:
        names = ", ".join(_words(c) for c in needs.concerns)
        return _fits(
            f"The program treats every presenting concern ({names}).", "treats the concerns"
        )
    names = ", ".join(_words(c) for c in missing)
    if len(missing) < len(needs.concerns):
        return _partly(
            f"The program does not treat {names}; arrange that care alongside.", f"no {names}"
        )
    return _not(f"The program does not treat the presenting concerns ({names}).", f"no {names}")


def _co_occurring(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    offered, needed = program.co_occurring_capability, needs.capability
    if needed is CoOccurringCapability.NONE:
        return _fits("The determination asks for no co-occurring capability.", "")
    text = (
        f"The determination asks for a co-occurring {needed.value} program; "
        f"this one is {_words(offered.value)}."
    )
    if CAPABILITY_ORDER.index(offered) >= CAPABILITY_ORDER.index(needed):
        return _fits(text, f"co-occurring {offered.value}")
    return _not(text, f"not co-occurring {needed.value}")


def _services(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    missing = [s for s in needs.services if s not in {p.value for p in program.services}]
    if not needs.services:
        return _fits("The determination asks for no particular service.", "")
    if not missing:
        names = ", ".join(_words(s) for s in needs.services)
        return _fits(f"The program provides the services asked for ({names}).", names)
    names = ", ".join(_words(s) for s in missing)
    unsafe = [_words(s) for s in missing if s in SAFETY_SERVICES]
    if unsafe:
        return _not(
            f"The program does not provide {', '.join(unsafe)}, which the determination "
            "requires for safety.",
            f"no {', '.join(unsafe)}",
        )
    return _partly(
        f"The program does not provide {names}; arrange {names} alongside.", f"{names} alongside"
    )


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def _language(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    held = ", ".join(program.languages)
    wanted = needs.preferences.languages
    if not wanted:
        return _fits(f"Sessions are held in {held}; a preferred language was not asked.", "")
    shared = sorted({_primary(t) for t in wanted} & {_primary(t) for t in program.languages})
    if shared:
        return _fits(
            f"Sessions are held in {held}, including the preferred {', '.join(shared)}.",
            f"in {', '.join(shared)}",
        )
    return _not(
        f"Sessions are held in {held}, none of the preferred languages ({', '.join(wanted)}).",
        f"sessions in {held}",
    )


def _payer(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    payer = needs.preferences.payer
    if payer is None:
        return _unknown("The payer was not asked.", "payer not asked")
    if program.payers is None:
        return _unknown("The program's accepted payers are not recorded.", "payers not recorded")
    if payer in program.payers:
        return _fits(f"The program accepts the payer {payer}.", f"accepts {payer}")
    return _not(f"The program does not accept the payer {payer}.", f"does not accept {payer}")


def _accepting(_needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    if program.accepting_referrals:
        return _fits("The program accepts referrals.", "accepting referrals")
    return _not("The program takes no new referrals at present.", "not accepting referrals")


def _session_kinds(program: ProgramDocument) -> set[SessionModality]:
    """How sessions are held: from the timetable, else from the program's modality."""
    if program.timetable:
        return {program.session_modality(s) for s in program.timetable}
    if program.modality is Modality.HYBRID:
        return set(SessionModality)
    return {SessionModality(program.modality.value)}


def _remote(needs: Needs, program: ProgramDocument) -> bool:
    """Every session can be attended by telehealth, by a person able to."""
    return needs.telehealth_capable is True and _session_kinds(program) == {
        SessionModality.TELEHEALTH
    }


def _modality(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    kinds = _session_kinds(program)
    parts = []
    if SessionModality.TELEHEALTH in kinds:
        parts.append(_telehealth_part(needs, only=kinds == {SessionModality.TELEHEALTH}))
    if SessionModality.IN_PERSON in kinds:
        parts.append(_in_person_part(needs))
    return max(parts, key=lambda j: _BADNESS[j.outcome])


_BADNESS = {"fits": 0, "unknown": 1, "partly": 2, "does_not_fit": 3}


def _telehealth_part(needs: Needs, *, only: bool) -> _Judgement:
    if needs.telehealth_capable is None:
        return _unknown(
            "Telehealth sessions: whether the person can attend them was not answered.",
            "telehealth not asked",
        )
    if needs.telehealth_capable:
        return _fits(
            "Telehealth sessions: the person has a device, a private space and a connection.",
            "telehealth",
        )
    text = (
        "Telehealth sessions: the person lacks a device, a private space or a reliable connection."
    )
    return _not(text, "telehealth only") if only else _partly(text, "help with telehealth")


def _in_person_part(needs: Needs) -> _Judgement:
    if needs.transport is None:
        return _unknown("In-person sessions: transport was not answered.", "transport not asked")
    if needs.transport == "none":
        return _partly(
            "In-person sessions: the person has no transport; arrange transport.",
            "arrange transport",
        )
    return _fits(
        f"In-person sessions: the person travels by {_words(needs.transport)}.", "in person"
    )


def _kind_of(session: Session) -> str:
    """weekend (Saturday, Sunday), evening (weekday start at or after 17:00), or daytime."""
    if session.day in WEEKEND:
        return "weekend"
    return "evening" if minutes_of(session.start) >= EVENING_STARTS else "daytime"


def _describe(session: Session) -> str:
    return f"{session.day.value.capitalize()} {session.start}-{session.end}"


def _schedule(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    if not program.timetable:
        return _unknown("The program's timetable is not recorded.", "timetable not recorded")
    if needs.times_available is None:
        return _unknown("When the person can attend was not answered.", "times not asked")
    clashes = [s for s in program.timetable if _kind_of(s) not in needs.times_available]
    kinds = sorted({_kind_of(s) for s in program.timetable})
    if not clashes:
        return _fits(
            f"All sessions ({', '.join(kinds)}) are at times the person can attend.",
            f"{' and '.join(kinds)} sessions",
        )
    clash_kinds = sorted({_kind_of(s) for s in clashes})
    reason = ""
    if "daytime" in clash_kinds and {"work", "school"} & set(needs.obligations):
        reason = " (work or school during the day)"
    text = (
        f"{', '.join(_describe(s) for s in clashes)}: {' and '.join(clash_kinds)}, "
        f"when the person cannot attend{reason}."
    )
    phrase = f"sessions in the {' and '.join(clash_kinds)}".replace("the weekend", "weekend")
    if len(clashes) < len(program.timetable):
        return _partly(text, phrase)
    return _not(text, phrase)


def _hours(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    hours = program.hours_per_week
    if hours is None:
        return _unknown("The program's weekly hours are not recorded.", "hours not recorded")
    if needs.hours_available is None:
        return _unknown(
            f"The program runs {hours:g} hours a week; "
            "the person's available hours were not answered.",
            "hours not asked",
        )
    if hours > needs.hours_available:
        return _not(
            f"The program runs {hours:g} hours a week, "
            f"more than the {needs.hours_available:g} available.",
            f"{hours:g} hours a week",
        )
    if needs.minimum_hours is not None and hours < needs.minimum_hours:
        return _partly(
            f"The program runs {hours:g} hours a week, "
            f"below the level's usual minimum of {needs.minimum_hours:g}.",
            f"only {hours:g} hours a week",
        )
    return _fits(
        f"The program runs {hours:g} hours a week, within the {needs.hours_available:g} available.",
        f"{hours:g} hours a week",
    )


def _straight_line_km(origin: Origin, program: ProgramDocument) -> float | None:
    location = program.location
    if origin.latitude is None or origin.longitude is None or location is None:
        return None
    if location.latitude is None or location.longitude is None:
        return None
    lat1, lat2 = math.radians(origin.latitude), math.radians(location.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(location.longitude - origin.longitude)
    a = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(a)))


def _travel_minutes(needs: Needs, program: ProgramDocument) -> int | None:
    """From the tenant's table for the origin area, else estimated from straight-line distance."""
    origin = needs.preferences.origin
    if origin is None:
        return None
    if origin.area is not None:
        for row in program.travel_times:
            if row.area == origin.area:
                return row.minutes
    km = _straight_line_km(origin, program)
    if km is None:
        return None
    return math.ceil(km * DETOUR_FACTOR / SPEED_KMH[needs.transport] * 60)


def _estimated(needs: Needs, program: ProgramDocument) -> bool:
    origin = needs.preferences.origin
    return origin is not None and not any(r.area == origin.area for r in program.travel_times)


def _travel(needs: Needs, program: ProgramDocument, minutes: int | None) -> _Judgement:
    if _remote(needs, program):
        return _fits("Every session can be attended by telehealth: no travel.", "telehealth")
    if minutes is None:
        return _unknown(
            "The travel time is not known (no origin, or no table or location to estimate from).",
            "travel time unknown",
        )
    how = (
        " (an estimate from the straight-line distance, with a detour factor of 1.3)"
        if _estimated(needs, program)
        else ""
    )
    text = (
        f"About {minutes} minutes each way{how}; "
        f"the rule set flags more than {TRAVEL_LIMIT_MINUTES}."
    )
    phrase = f"{minutes} minutes away"
    if minutes <= TRAVEL_COMFORTABLE_MINUTES:
        return _fits(text, phrase)
    if minutes <= TRAVEL_LIMIT_MINUTES:
        return _partly(text, phrase)
    return _not(text, phrase)


def _waitlist(needs: Needs, program: ProgramDocument, _: int | None) -> _Judgement:
    capacity = program.capacity
    if (capacity.open_places or 0) > 0:
        places = f"{capacity.open_places} place{'s' if capacity.open_places != 1 else ''} open"
        return _fits(f"The program has {places}.", places)
    weeks = capacity.waitlist_weeks
    if weeks is None:
        return _unknown("Open places and waiting time are not recorded.", "wait unknown")
    if weeks == 0:
        return _fits("The program admits without a wait.", "no wait")
    text = f"About {weeks:g} weeks' wait before admission"
    if weeks <= 2:
        return _partly(text + ".", f"{weeks:g} weeks' wait")
    if needs.urgency in _URGENT:
        return _not(text + f", too long for {needs.urgency} care.", f"{weeks:g} weeks' wait")
    return _partly(text + ".", f"{weeks:g} weeks' wait")


JUDGES: Mapping[str, Callable[[Needs, ProgramDocument, int | None], _Judgement]] = {
    "level": _level,
    "population": _population_judgement,
    "specialty": _specialty,
    "co_occurring": _co_occurring,
    "services": _services,
    "language": _language,
    "payer": _payer,
    "accepting_referrals": _accepting,
    "modality": _modality,
    "schedule": _schedule,
    "hours": _hours,
    "travel": _travel,
    "waitlist": _waitlist,
}


# --- JSON -----------------------------------------------------------------------------------


def as_json(matches: Matches) -> dict[str, Any]:
    """The matches as JSON (each candidate's part is what a referral stores)."""
    return {
        "level": matches.level,
        "level_source": matches.level_source,
        "urgency": matches.urgency,
        "notice": matches.notice,
        "candidates": [candidate_json(c) for c in matches.candidates],
    }


def candidate_json(candidate: Candidate) -> dict[str, Any]:
    """One candidate's match explanation as JSON."""
    return {
        "program_id": candidate.program_id,
        "program_version": candidate.program_version,
        "name": candidate.name,
        "rank": candidate.rank,
        "fits": candidate.fits,
        "summary": candidate.summary,
        "travel_minutes": candidate.travel_minutes,
        "waitlist_weeks": candidate.waitlist_weeks,
        "criteria": [
            {"criterion": c.criterion, "outcome": c.outcome, "explanation": c.explanation}
            for c in candidate.criteria
        ],
    }

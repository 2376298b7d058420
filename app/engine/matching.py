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
from typing import Any, Literal, NamedTuple

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
# Without transport the determination asks for transport to be arranged (a ride service, a
# transit pass): the estimate assumes public transit, never walking.
SPEED_KMH: Mapping[str | None, float] = {
    "own_vehicle": 40.0,
    "rides_from_others": 40.0,
    "public_transit": 20.0,
    "none": 20.0,
    None: 20.0,
}
# Travel minutes are shown and stored (with referrals) to the nearest 5: coarse enough not to
# locate the person's origin.
TRAVEL_ROUNDING_MINUTES = 5
# A routine wait up to this many weeks is acceptable, up to the long one a concern, beyond it
# too long (the person is better served by another program, or care while waiting).
SHORT_WAIT_WEEKS = 2
LONG_WAIT_WEEKS = 6
EVENING_STARTS = 17 * 60
OLDER_ADULT_AGE = 65
CAPABILITY_ORDER = tuple(CoOccurringCapability)
_CAPABILITY_CONDITIONS = {
    "co_occurring_capable": CoOccurringCapability.CAPABLE,
    "co_occurring_enhanced": CoOccurringCapability.ENHANCED,
}
_SERVICE_CODES = frozenset(s.value for s in ProgramService)
_MOUD = frozenset({ProgramService.MOUD.value, ProgramService.MOUD_IN_PREGNANCY.value})
_URGENT = frozenset({Urgency.URGENT.value, Urgency.EMERGENT.value})
# The determination's conditions that make a telehealth-only program a safety concern.
_UNSAFE_HOME = {
    "safe_housing": "an unsafe home",
    "recovery_residence": "a home that cannot support recovery",
}
_INSUFFICIENT_HOURS = "insufficient_hours"

# Words for explanations (never raw codes).
SERVICE_LABELS: Mapping[str, str] = {
    ProgramService.MOUD: "medication for opioid use disorder (MOUD)",
    ProgramService.MOUD_IN_PREGNANCY: "medication for opioid use disorder in pregnancy",
    ProgramService.SUPERVISED_TAPER: "a supervised sedative taper",
    ProgramService.FAMILY_BASED_TREATMENT: "family-based treatment",
    ProgramService.ADAPTED_PROGRAM: "an adapted program (slower pace, written summaries)",
    ProgramService.PRIMARY_CARE_COORDINATION: "coordination with primary care",
}
POPULATION_LABELS: Mapping[str, str] = {
    Population.ADULT: "adults",
    Population.ADOLESCENT: "adolescents",
    Population.OLDER_ADULT: "older adults",
}
CAPABILITY_LABELS: Mapping[str, str] = {
    CoOccurringCapability.NONE: "not co-occurring capable",
    CoOccurringCapability.CAPABLE: "co-occurring capable",
    CoOccurringCapability.ENHANCED: "co-occurring enhanced",
}
# Common primary language subtags; any other tag is shown as it is.
LANGUAGE_NAMES: Mapping[str, str] = {
    "ar": "Arabic",
    "ase": "American Sign Language",
    "de": "German",
    "en": "English",
    "es": "Spanish",
    "fa": "Persian",
    "fr": "French",
    "hi": "Hindi",
    "ht": "Haitian Creole",
    "it": "Italian",
    "ja": "Japanese",
    "ko": "Korean",
    "pl": "Polish",
    "pt": "Portuguese",
    "ru": "Russian",
    "so": "Somali",
    "tl": "Tagalog",
    "uk": "Ukrainian",
    "vi": "Vietnamese",
    "zh": "Chinese",
}


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
    # Why in-person care is preferred (safety alerts, urgency, an unsafe home), as phrases.
    risks: tuple[str, ...] = ()
    # The determination's accommodation for too few hours (its insufficient_hours barrier).
    hours_accommodation: str | None = None
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


@dataclass(frozen=True, slots=True)
class Criterion:
    criterion: str
    outcome: Outcome
    explanation: str


@dataclass(frozen=True, slots=True)
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


class _Judgement(NamedTuple):
    """One criterion's outcome, its sentence, and the short phrase a summary uses (a tuple:
    the matcher makes thirteen for every program of the directory)."""

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
        risks=_risks(determination, codes),
        hours_accommodation=_accommodation(determination, _INSUFFICIENT_HOURS),
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


def _risks(determination: Mapping[str, Any], codes: Sequence[str]) -> tuple[str, ...]:
    """What makes in-person care preferable: safety alerts (suicide and self-harm positives are
    among them), urgent or emergent care, an unsafe home."""
    risks = []
    alerts = len(determination.get("safety_alerts") or ())
    if alerts:
        risks.append("a safety alert" if alerts == 1 else f"{alerts} safety alerts")
    urgency = determination.get("urgency")
    if urgency in _URGENT:
        risks.append(f"{urgency} care")
    risks += [phrase for code, phrase in _UNSAFE_HOME.items() if code in codes]
    return tuple(risks)


def _accommodation(determination: Mapping[str, Any], barrier: str) -> str | None:
    """The determination's accommodations for a barrier it names, as one text (None: not named)."""
    for found in determination.get("barriers") or ():
        if found.get("code") == barrier:
            texts = [str(a.get("description")) for a in found.get("accommodations") or ()]
            return " ".join(texts) or None
    return None


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


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the criteria read of a program besides its document, worked out once per program:
    the travel time, how its sessions are held, and each session's times and hours."""

    travel: int | None
    tabled: bool  # the travel time comes from the tenant's table (not an estimate)
    kinds: frozenset[SessionModality]
    hours: float | None
    telehealth_share: float | None
    sessions: tuple[tuple[Session, frozenset[str], float], ...]  # session, its times, hours


def _facts(needs: Needs, program: ProgramDocument) -> _Facts:
    """One pass over the timetable and the travel-time table, shared by every criterion."""
    # The session's own modality, else the program's (they share their values).
    modalities = [s.modality or program.modality for s in program.timetable]
    kinds = frozenset(map(SessionModality, modalities)) or _declared_kinds(program)
    sessions = tuple(_timed(s) for s in program.timetable)
    hours = round(sum(h for _, _, h in sessions), 2) if sessions else None
    remote = sum(h for (_, _, h), m in zip(sessions, modalities, strict=True) if m == "telehealth")
    origin = needs.preferences.origin
    tabled = None if origin is None else _tabled_minutes(origin, program)
    return _Facts(
        travel=_rounded(tabled) if tabled is not None else _estimated_minutes(needs, program),
        tabled=tabled is not None,
        kinds=kinds,
        hours=hours,
        telehealth_share=_telehealth_share(kinds, hours, remote),
        sessions=sessions,
    )


_Judged = tuple[tuple[Any, ...], DirectoryEntry, dict[str, _Judgement], int | None]


def _judge(needs: Needs, entry: DirectoryEntry) -> _Judged:
    program = entry.program
    facts = _facts(needs, program)
    travel = facts.travel
    judgements = {name: JUDGES[name](needs, program, facts) for name in CRITERIA}
    outcomes = [j.outcome for j in judgements.values()]
    misfits, partly, unknown = (outcomes.count(o) for o in ("does_not_fit", "partly", "unknown"))
    if needs.urgency in _URGENT and judgements["waitlist"].outcome == "unknown":
        # For urgent care an unknown wait is at least as bad as a wait to arrange around.
        partly, unknown = partly + 1, unknown - 1
    key = (
        # The level to match comes first: no other criterion lifts a program above it.
        program.level != needs.level,
        misfits > 0,
        misfits,
        partly,
        unknown,
        _waitlist_key(program),
        _travel_key(needs, facts),
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


def _travel_key(needs: Needs, facts: _Facts) -> tuple[int, int]:
    """No travel (telehealth) first, then the shortest travel, then an unknown one. With a
    risk that makes in-person care preferable, telehealth never wins on travel: it counts as
    an unknown travel time."""
    if _remote(needs, facts):
        return (1, 0) if needs.risks else (0, 0)
    return (1, 0) if facts.travel is None else (0, facts.travel)


def _candidate(
    entry: DirectoryEntry, rank: int, judgements: dict[str, _Judgement], travel: int | None
) -> Candidate:
    criteria = tuple(Criterion(n, j.outcome, j.explanation) for n, j in judgements.items())
    fits = all(j.outcome != "does_not_fit" for j in judgements.values())
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


_BADNESS = {"fits": 0, "unknown": 1, "partly": 2, "does_not_fit": 3}


def _worst(parts: Sequence[_Judgement]) -> _Judgement:
    """The worst part's outcome and phrase, with every part's sentence."""
    worst = max(parts, key=lambda j: _BADNESS[j.outcome])
    return _Judgement(worst.outcome, " ".join(p.explanation for p in parts), worst.phrase)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _listed(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def _language_names(tags: Sequence[str]) -> str:
    """Languages by name (``es-MX`` is Spanish), each once, in the order given."""
    names = [LANGUAGE_NAMES.get(_primary(tag), tag) for tag in tags]
    return _listed(list(dict.fromkeys(names)))


def _level_to_match(needs: Needs) -> str:
    """How the explanations name the level matched against."""
    needed = _words(str(needs.level))
    if needs.level_source == "recommended":
        return f"the recommended level, {needed}"
    if needs.recommended_level is None or needs.recommended_level == needs.level:
        return f"the level the clinician decided, {needed}"
    recommended = _words(needs.recommended_level)
    return f"the level the clinician decided, {needed} (recommended: {recommended})"


def _level(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    offered = _words(program.level)
    if needs.level is None:
        return _unknown(f"The program provides {offered}; the screening has no level yet.", "")
    if program.level == needs.level:
        return _fits(f"The program provides {offered}: {_level_to_match(needs)}.", offered)
    return _not(
        f"The program provides {offered}; the level to match is {_level_to_match(needs)}.",
        f"{offered} only",
    )


def _population_judgement(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    admits = _listed([POPULATION_LABELS[p] for p in program.populations])
    if needs.population is None:
        return _unknown(f"The program admits {admits}; the age group was not answered.", "age")
    # An older adult is an adult: a program for adults admits them unless it says otherwise.
    accepted = {needs.population}
    if needs.population is Population.OLDER_ADULT:
        accepted.add(Population.ADULT)
    who = POPULATION_LABELS[needs.population]
    if needs.population in program.populations:
        return _fits(f"The program admits {admits}.", f"admits {who}")
    if accepted & set(program.populations):
        return _fits(f"The program admits {admits}; an older adult is an adult.", f"admits {who}")
    return _not(f"The program admits {admits} only, not {who}.", f"{admits} only")


# A co-occurring capable or enhanced program treats substance use and mental health both.
_CO_OCCURRING_TREATS = frozenset({"substance_use", "mental_health"})


def _specialty(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    if not needs.concerns:
        return _unknown("No presenting concern was answered.", "concerns not answered")
    treated: set[str] = set(program.specialties)
    if program.co_occurring_capability is not CoOccurringCapability.NONE:
        treated |= _CO_OCCURRING_TREATS
    missing = [c for c in needs.concerns if c not in treated]
    if not missing:
        names = _listed([_words(c) for c in needs.concerns])
        return _fits(
            f"The program treats every presenting concern ({names}).", "treats the concerns"
        )
    names = _listed([_words(c) for c in missing])
    if len(missing) < len(needs.concerns):
        return _partly(
            f"The program does not treat {names}; arrange that care alongside.", f"no {names}"
        )
    return _not(f"The program does not treat the presenting concerns ({names}).", f"no {names}")


def _co_occurring(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    offered, needed = program.co_occurring_capability, needs.capability
    if needed is CoOccurringCapability.NONE:
        return _fits("The determination asks for no co-occurring capability.", "")
    text = (
        f"The determination asks for a {CAPABILITY_LABELS[needed]} program; "
        f"this one is {CAPABILITY_LABELS[offered]}."
    )
    if CAPABILITY_ORDER.index(offered) >= CAPABILITY_ORDER.index(needed):
        return _fits(text, CAPABILITY_LABELS[offered])
    return _not(text, f"not {CAPABILITY_LABELS[needed]}")


def _services(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    if not needs.services:
        return _fits("The determination asks for no particular service.", "")
    offered: set[str] = set(program.services)
    if all(s in offered for s in needs.services) and not _refuses_moud(needs, program):
        names = _listed([SERVICE_LABELS[s] for s in needs.services])
        return _fits(f"The program provides the services asked for ({names}).", "services")
    parts = [_service(service, program) for service in needs.services if service not in offered]
    if _refuses_moud(needs, program):
        parts.append(_not("The program does not admit people taking MOUD.", "does not admit MOUD"))
    return _worst(parts)


def _refuses_moud(needs: Needs, program: ProgramDocument) -> bool:
    return program.accepts_people_on_moud is False and bool(_MOUD & set(needs.services))


def _service(service: str, program: ProgramDocument) -> _Judgement:
    """A service the determination asks for that the program does not provide."""
    label = SERVICE_LABELS[service]
    if service == ProgramService.MOUD_IN_PREGNANCY:
        return _not(
            f"The program does not provide {label}, which the determination requires for safety.",
            f"no {label}",
        )
    if service == ProgramService.SUPERVISED_TAPER:
        return _partly(
            f"The program does not provide {label}: a prescriber leads the taper alongside the "
            "program; never stop benzodiazepines abruptly.",
            "a prescriber-led taper alongside",
        )
    if service == ProgramService.MOUD and program.accepts_people_on_moud is None:
        return _partly(
            "The program does not provide MOUD: arrange MOUD alongside; confirm the program "
            "admits people taking it.",
            "MOUD alongside",
        )
    return _partly(
        f"The program does not provide {label}; arrange it alongside.", f"{label} alongside"
    )


def _language(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    held = _language_names(program.languages)
    wanted = needs.preferences.languages
    if not wanted:
        return _fits(f"Sessions are held in {held}; a preferred language was not asked.", "")
    programs = {_primary(t) for t in program.languages}
    shared = [t for t in wanted if _primary(t) in programs]
    if shared:
        names = _language_names(shared)
        return _fits(
            f"Sessions are held in {held}, including the preferred {names}.", f"in {names}"
        )
    return _not(
        f"Sessions are held in {held}, none of the preferred languages "
        f"({_language_names(wanted)}).",
        f"sessions in {held}",
    )


def _payer(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    payer = needs.preferences.payer
    if payer is None:
        return _unknown("The payer was not asked.", "payer not asked")
    if program.payers is None:
        return _unknown("The program's accepted payers are not recorded.", "payers not recorded")
    if payer in program.payers:
        return _fits(f"The program accepts the payer {payer}.", f"accepts {payer}")
    return _not(f"The program does not accept the payer {payer}.", f"does not accept {payer}")


def _accepting(_needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    if program.accepting_referrals:
        return _fits("The program accepts referrals.", "accepting referrals")
    return _not("The program takes no new referrals at present.", "not accepting referrals")


def _declared_kinds(program: ProgramDocument) -> frozenset[SessionModality]:
    """How sessions are held without a timetable: as the program's modality says."""
    if program.modality is Modality.HYBRID:
        return frozenset(SessionModality)
    return frozenset({SessionModality(program.modality.value)})


def _remote(needs: Needs, facts: _Facts) -> bool:
    """Every session can be attended by telehealth, by a person able to."""
    return needs.telehealth_capable is True and facts.kinds == {SessionModality.TELEHEALTH}


def _modality(needs: Needs, program: ProgramDocument, facts: _Facts) -> _Judgement:
    kinds = facts.kinds
    parts = []
    if SessionModality.TELEHEALTH in kinds:
        parts.append(_telehealth_part(needs, only=kinds == {SessionModality.TELEHEALTH}))
    if SessionModality.IN_PERSON in kinds:
        parts.append(_in_person_part(needs))
    risk = _risk_part(needs, facts)
    if risk is not None:
        parts.append(risk)
    return _worst(parts)


def _telehealth_share(
    kinds: frozenset[SessionModality], hours: float | None, remote: float
) -> float | None:
    """The share of the weekly hours held by telehealth (None: a hybrid without a timetable)."""
    if kinds == {SessionModality.TELEHEALTH}:
        return 1.0
    if not hours:
        return None if SessionModality.TELEHEALTH in kinds else 0.0
    return remote / hours


def _risk_part(needs: Needs, facts: _Facts) -> _Judgement | None:
    """With a safety alert, urgent care or an unsafe home, mostly-telehealth care is a concern."""
    share = facts.telehealth_share
    if not needs.risks or share is None or share <= 0.5:
        return None
    risks = " and ".join(needs.risks)
    held = "Telehealth only" if share == 1.0 else f"Mostly telehealth ({share:.0%} of the hours)"
    return _partly(
        f"{held}: with {risks} an in-person program is preferred; if chosen, agree a safety "
        "plan and an in-person contact.",
        "in-person care preferred",
    )


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
            "In-person sessions: the person has no transport; arrange transport for the "
            "in-person sessions.",
            "arrange transport",
        )
    return _fits(
        f"In-person sessions: the person travels by {_words(needs.transport)}.", "in person"
    )


_WEEKEND_PARTS = frozenset({"weekend"})
_DAYTIME, _EVENING = frozenset({"daytime"}), frozenset({"evening"})
_DAY_AND_EVENING = _DAYTIME | _EVENING


def _timed(session: Session) -> tuple[Session, frozenset[str], float]:
    """A session with the times it covers and its hours (its clock times parsed once).

    Weekend: Saturday, Sunday; on weekdays daytime when it starts before 17:00, evening when
    it runs past 17:00 (a 16:00-19:00 session is both)."""
    start, end = minutes_of(session.start), minutes_of(session.end)
    hours = (end - start) / 60
    if session.day in WEEKEND:
        return session, _WEEKEND_PARTS, hours
    if end <= EVENING_STARTS:
        return session, _DAYTIME, hours
    return session, _EVENING if start >= EVENING_STARTS else _DAY_AND_EVENING, hours


def _describe(session: Session) -> str:
    return f"{session.day.value.capitalize()} {session.start}-{session.end}"


def _joined(parts: Sequence[str]) -> str:
    return " and ".join(sorted(parts))


def _schedule(needs: Needs, program: ProgramDocument, facts: _Facts) -> _Judgement:
    if not facts.sessions:
        return _unknown("The program's timetable is not recorded.", "timetable not recorded")
    if needs.times_available is None:
        return _unknown("When the person can attend was not answered.", "times not asked")
    available = set(needs.times_available)
    # A session is attendable only when the person can attend every part it covers.
    clashes = [(s, parts - available, h) for s, parts, h in facts.sessions]
    clashes = [clash for clash in clashes if clash[1]]
    if not clashes:
        kinds = _joined(list(set().union(*(parts for _, parts, _ in facts.sessions))))
        return _fits(f"All sessions ({kinds}) are at times the person can attend.", kinds)
    clash_kinds = _joined(list(set().union(*(parts for _, parts, _ in clashes))))
    reason = ""
    if "daytime" in clash_kinds and {"work", "school"} & set(needs.obligations):
        reason = " (work or school during the day)"
    text = (
        f"{', '.join(_describe(s) for s, _, _ in clashes)}: {clash_kinds}, "
        f"when the person cannot attend{reason}."
    )
    phrase = f"sessions in the {clash_kinds}".replace("the weekend", "weekend")
    if len(clashes) == len(facts.sessions):
        return _not(text, phrase)
    attendable = round((facts.hours or 0) - sum(h for _, _, h in clashes), 2)
    return _attendable(needs, attendable, text, phrase)


def _attendable(needs: Needs, attendable: float, text: str, phrase: str) -> _Judgement:
    """Some sessions clash: enough when the others reach the level's minimum hours."""
    if needs.minimum_hours is not None and attendable < needs.minimum_hours:
        return _not(
            f"{text} The sessions the person can attend come to {attendable:g} hours a week, "
            f"below the level's minimum of {needs.minimum_hours:g}.",
            f"{attendable:g} attendable hours a week",
        )
    return _partly(text, phrase)


def _hours(needs: Needs, program: ProgramDocument, facts: _Facts) -> _Judgement:
    hours = facts.hours
    if hours is None:
        return _unknown("The program's weekly hours are not recorded.", "hours not recorded")
    if needs.hours_available is None:
        return _unknown(
            f"The program runs {hours:g} hours a week; "
            "the person's available hours were not answered.",
            "hours not asked",
        )
    if hours > needs.hours_available:
        text = (
            f"The program runs {hours:g} hours a week, "
            f"more than the {needs.hours_available:g} available."
        )
        if needs.hours_accommodation:
            # The determination already plans for too few hours: time off makes the room.
            return _partly(f"{text} {needs.hours_accommodation}", f"plan {hours:g} hours a week")
        return _not(text, f"{hours:g} hours a week")
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


def _tabled_minutes(origin: Origin, program: ProgramDocument) -> int | None:
    """The tenant's own travel time from the origin's area (None: no such row)."""
    if origin.area is None:
        return None
    return next((row.minutes for row in program.travel_times if row.area == origin.area), None)


def _rounded(minutes: float) -> int:
    return TRAVEL_ROUNDING_MINUTES * round(minutes / TRAVEL_ROUNDING_MINUTES)


def _estimated_minutes(needs: Needs, program: ProgramDocument) -> int | None:
    """Estimated from the straight-line distance at the speed of the person's transport, to
    the nearest 5 minutes (None: no coordinates to estimate from)."""
    origin = needs.preferences.origin
    if origin is None:
        return None
    km = _straight_line_km(origin, program)
    if km is None:
        return None
    return _rounded(km * DETOUR_FACTOR / SPEED_KMH[needs.transport] * 60)


def _travel(needs: Needs, program: ProgramDocument, facts: _Facts) -> _Judgement:
    minutes = facts.travel
    if _remote(needs, facts):
        return _fits("Every session can be attended by telehealth: no travel.", "telehealth")
    if facts.kinds == {SessionModality.TELEHEALTH}:
        # Telehealth only: no journey, whether the person can join is the modality's question.
        return _fits("Every session is held by telehealth: no travel.", "no travel")
    if minutes is None:
        return _unknown(
            "The travel time is not known (no origin, or no table or location to estimate from).",
            "travel time unknown",
        )
    how = ""
    if not facts.tabled:
        how = " (an estimate from the straight-line distance, with a detour factor of 1.3)"
    arranged = " once transport is arranged" if needs.transport == "none" else ""
    text = (
        f"About {minutes} minutes each way{arranged}{how}; "
        f"the rule set flags more than {TRAVEL_LIMIT_MINUTES}."
    )
    phrase = f"{minutes} minutes away"
    if minutes <= TRAVEL_COMFORTABLE_MINUTES:
        return _fits(text, phrase)
    if minutes <= TRAVEL_LIMIT_MINUTES:
        return _partly(text, phrase)
    return _not(text, phrase)


def _waitlist(needs: Needs, program: ProgramDocument, _: _Facts) -> _Judgement:
    capacity = program.capacity
    if (capacity.open_places or 0) > 0:
        places = f"{capacity.open_places} place{'s' if capacity.open_places != 1 else ''} open"
        return _fits(f"The program has {places}.", places)
    weeks = capacity.waitlist_weeks
    places = "No place open" if capacity.open_places == 0 else "Open places not recorded"
    if weeks is None:
        text = f"{places}; the waiting time is not recorded."
        if needs.urgency in _URGENT:
            text += f" For {needs.urgency} care, confirm a place before referring."
        return _unknown(text, "wait unknown")
    if weeks == 0:
        return _fits(f"{places}; the program estimates no wait.", "no wait")
    text = f"{places}; about {weeks:g} weeks' wait before admission"
    phrase = f"{weeks:g} weeks' wait"
    if needs.urgency in _URGENT:
        return _not(f"{text}, too long for {needs.urgency} care.", phrase)
    return _routine_wait(weeks, text, phrase)


def _routine_wait(weeks: float, text: str, phrase: str) -> _Judgement:
    """Routine care: a short wait is acceptable, a long one a concern, a longer one too long."""
    if weeks <= SHORT_WAIT_WEEKS:
        return _partly(f"{text}.", phrase)
    if weeks <= LONG_WAIT_WEEKS:
        return _partly(f"{text}: a long wait; keep in touch while the person waits.", phrase)
    return _not(f"{text}: too long; consider another program while waiting.", phrase)


JUDGES: Mapping[str, Callable[[Needs, ProgramDocument, _Facts], _Judgement]] = {
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

"""The facts a rule condition may read, and how they are taken from answers and scores.

Facts are named by dotted paths (``phq9.total``, ``supports.living_situation``). Answer facts
are generated from the questionnaire model itself, so a new question becomes a fact without
code here; score facts come from the instruments; derived facts summarise several answers; and
each stage adds what it decided (domain ratings for placement, the placed level for
feasibility). A fact whose value is None is unknown (not asked, declined or not derivable).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel

from app.engine.answers import (
    AgeGroup,
    Concern,
    ConditionStatus,
    CoOccurring,
    Crafft,
    DailyUseSubstance,
    Functioning,
    HomicidalIdeation,
    Impairment,
    Instruments,
    OverdoseHistory,
    Readiness,
    Respondent,
    ResponseToLevel,
    ScreeningAnswers,
    Section,
    Willingness,
)
from app.engine.choice import Choice
from app.engine.determination import LEVEL_ORDER, Domain, Rating, Stage
from app.engine.expressions import FactKind, FactType
from app.engine.instruments import (
    CSSRS_TIER_ORDER,
    DECLINED,
    DEFAULT_POLICIES,
    SPECS,
    AnswerKind,
    InstrumentId,
    InstrumentPolicy,
    InstrumentScore,
    asq_result,
)

# Enums whose values have a clinical order, so conditions may use < <= > >= on them.
ORDERED_ENUMS: Final[frozenset[type[StrEnum]]] = frozenset(
    {
        Impairment,
        ConditionStatus,
        Readiness,
        Willingness,
        HomicidalIdeation,
        OverdoseHistory,
        ResponseToLevel,
    }
)

# The answers sections that become facts, in questionnaire order (instruments become scores).
ANSWER_SECTIONS: Final = (
    "respondent",
    "safety",
    "withdrawal",
    "medical",
    "functioning",
    "co_occurring",
    "treatment_history",
    "engagement",
    "supports",
    "logistics",
)


class FactSource(Choice):
    ANSWER = "answer"
    SCORE = "score"
    DERIVED = "derived"
    DOMAIN = "domain rating"
    PLACEMENT = "placement"


@dataclass(frozen=True, slots=True)
class FactSpec:
    """One fact in the catalogue: its path, type, meaning and the first stage that may read it."""

    path: str
    type: FactType
    description: str
    source: FactSource
    available_from: Stage = Stage.SAFETY
    derived_from: tuple[str, ...] = ()
    """The answer paths a derived or score fact is computed from (a section answer such as
    ``functioning.self_care``, or ``instruments.<id>``); an answer fact reads only itself."""

    @property
    def answer_paths(self) -> tuple[str, ...]:
        """The questionnaire answers this fact reads: itself for an answer, else its sources."""
        return (self.path,) if self.source is FactSource.ANSWER else self.derived_from


def _enum_type(enum: type[StrEnum]) -> FactType:
    return FactType(FactKind.STRING, tuple(member.value for member in enum), enum in ORDERED_ENUMS)


def _fact_type(annotation: Any) -> FactType | type[Section] | None:
    """The fact type of a model field annotation, or the Section class to recurse into."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _fact_type(args[0]) if len(args) == 1 else None
    if origin is typing.Annotated:
        return _fact_type(typing.get_args(annotation)[0])
    if origin is list:
        (element,) = typing.get_args(annotation)
        if isinstance(element, type) and issubclass(element, StrEnum):
            return FactType(FactKind.LIST, tuple(member.value for member in element))
        return None
    if annotation is bool:
        return FactType(FactKind.BOOL)
    if annotation in (int, float):
        return FactType(FactKind.NUMBER)
    if isinstance(annotation, type) and issubclass(annotation, StrEnum):
        return _enum_type(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Section):
        return annotation
    return None


def _answer_fields(
    model: type[BaseModel], prefix: str, attributes: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], FactType, str]]:
    for name, field in model.model_fields.items():
        kind = _fact_type(field.annotation)
        path, chain = f"{prefix}.{name}", (*attributes, name)
        if isinstance(kind, FactType):
            yield path, chain, kind, field.description or ""
        elif kind is not None:
            yield from _answer_fields(kind, path, chain)


@dataclass(frozen=True, slots=True)
class _AnswerFact:
    path: str
    attributes: tuple[str, ...]  # attribute chain below the section


def _answer_plan() -> tuple[list[FactSpec], list[tuple[str, tuple[_AnswerFact, ...]]]]:
    specs: list[FactSpec] = []
    plan: list[tuple[str, tuple[_AnswerFact, ...]]] = []
    fields = ScreeningAnswers.model_fields
    for section in ANSWER_SECTIONS:
        model = _fact_type(fields[section].annotation)
        assert isinstance(model, type), section  # every section is a Section model
        section_facts = []
        for path, chain, kind, description in _answer_fields(model, section, ()):
            specs.append(FactSpec(path, kind, description, FactSource.ANSWER))
            section_facts.append(_AnswerFact(path, chain))
        plan.append((section, tuple(section_facts)))
    concerns = FactType(FactKind.LIST, tuple(c.value for c in Concern))
    specs.insert(
        0,
        FactSpec(
            "presenting_concerns",
            concerns,
            fields["presenting_concerns"].description or "",
            FactSource.ANSWER,
        ),
    )
    return specs, plan


_ANSWER_SPECS, _ANSWER_PLAN = _answer_plan()

_NUMBER: Final = FactType(FactKind.NUMBER)
_BOOL: Final = FactType(FactKind.BOOL)
_IMPAIRMENT: Final = _enum_type(Impairment)
_CONDITION: Final = _enum_type(ConditionStatus)
_CSSRS_TIER: Final = FactType(FactKind.STRING, tuple(t.value for t in CSSRS_TIER_ORDER), True)

_MENTAL_HEALTH_CONDITIONS: Final = ("depressive", "anxiety", "trauma", "bipolar", "psychotic")
_SERIOUS_MENTAL_ILLNESS: Final = ("bipolar", "psychotic")
_SUBSTANCE_CLASSES: Final = ("alcohol", "opioids", "stimulants", "cannabis", "sedatives", "other")
_DRUG_CLASSES: Final = ("opioids", "stimulants", "cannabis", "sedatives", "other")


# What counts as evidence: safety rules read these instead of the presenting concerns, so a
# rule fires on the evidence whatever the person asked for help with. Each is true when any of
# its signals is present, unknown when none is but a declined item leaves one open, and false
# otherwise (a question not asked is no evidence).
EVIDENCE: Final = {
    "evidence.alcohol": "Alcohol use that matters: a positive AUDIT-C (or AUDIT items 1-3) or "
    "AUDIT at the rule set's cut-offs, alcohol among the substances used heavily every day, a "
    "co-occurring alcohol problem suspected or known, or a CIWA-Ar rating.",
    "evidence.sedatives": "Sedative use that matters: sedatives used heavily every day, a "
    "co-occurring sedative problem suspected or known, or signs of sedative withdrawal now.",
    "evidence.opioids": "Opioid use that matters: opioids used heavily every day, a co-occurring "
    "opioid problem suspected or known, or a COWS rating.",
    "evidence.drugs": "Drug use that matters: a positive DAST-10, or a co-occurring opioid, "
    "sedative, stimulant, cannabis or other drug problem suspected or known, or opioids or "
    "sedatives used heavily every day.",
    "evidence.substance_use": "Any of the above, or substance use among the presenting concerns.",
    "evidence.eating_disorder": "An eating disorder: among the presenting concerns, a "
    "co-occurring eating disorder suspected or known, or a positive SCOFF.",
}


def _paths(section: str, names: Iterable[str]) -> tuple[str, ...]:
    return tuple(f"{section}.{name}" for name in names)


_FUNCTIONING_ANSWERS: Final = _paths(
    "functioning", ("work_school", "self_care", "relationships", "daily_activities")
)
_SUBSTANCE_ANSWERS: Final = _paths("co_occurring.substance_use", _SUBSTANCE_CLASSES)
_HEAVY_USE: Final = "withdrawal.heavy_daily_use"
_AGE_ANSWERS: Final = ("respondent.age_group", "respondent.age_years")


def _substance(name: str) -> str:
    return f"co_occurring.substance_use.{name}"


def score_sources(instrument: InstrumentId) -> tuple[str, ...]:
    """The answers an instrument's score facts read: its items, plus the respondent answers
    that choose its cut-offs (adolescent cut-offs; AUDIT-C's are also sex-specific and it may
    be taken from the full AUDIT's first items)."""
    sources = [f"instruments.{instrument.value}", "respondent.age_group"]
    if instrument is InstrumentId.AUDIT_C:
        sources[1:1] = ["instruments.audit"]
    if instrument in (InstrumentId.AUDIT_C, InstrumentId.AUDIT):
        sources.append("respondent.sex_for_scoring")
    return tuple(sources)


def _evidence_sources(instruments: Iterable[InstrumentId], *answers: str) -> tuple[str, ...]:
    """What an evidence fact reads: every answer the scores of ``instruments`` read (their
    cut-offs depend on the age group, and AUDIT-C's on sex), then ``answers``."""
    return tuple(
        dict.fromkeys(
            (*(path for instrument in instruments for path in score_sources(instrument)), *answers)
        )
    )


# The answers each evidence fact reads (see ``_put_evidence``).
EVIDENCE_SOURCES: Final[dict[str, tuple[str, ...]]] = {
    "evidence.alcohol": _evidence_sources(
        (InstrumentId.AUDIT_C, InstrumentId.AUDIT, InstrumentId.CIWA_AR, InstrumentId.CRAFFT),
        _HEAVY_USE,
        _substance("alcohol"),
    ),
    "evidence.sedatives": (_HEAVY_USE, _substance("sedatives"), "withdrawal.sedative_signs_now"),
    "evidence.opioids": _evidence_sources((InstrumentId.COWS,), _HEAVY_USE, _substance("opioids")),
    "evidence.drugs": _evidence_sources(
        (InstrumentId.DAST10, InstrumentId.CRAFFT),
        *_paths("co_occurring.substance_use", _DRUG_CLASSES),
        _HEAVY_USE,
    ),
    "evidence.eating_disorder": _evidence_sources(
        (InstrumentId.SCOFF,), "presenting_concerns", "co_occurring.eating"
    ),
}
EVIDENCE_SOURCES["evidence.substance_use"] = tuple(
    dict.fromkeys(
        path
        for name in ("alcohol", "sedatives", "opioids", "drugs")
        for path in EVIDENCE_SOURCES[f"evidence.{name}"]
    )
) + ("presenting_concerns",)


def _derived_specs() -> list[FactSpec]:
    def spec(
        path: str, kind: FactType, description: str, derived_from: tuple[str, ...]
    ) -> FactSpec:
        return FactSpec(path, kind, description, FactSource.DERIVED, derived_from=derived_from)

    return [
        spec(
            "functioning.worst",
            _IMPAIRMENT,
            "The most impaired life domain among those answered.",
            _FUNCTIONING_ANSWERS,
        ),
        spec(
            "functioning.domains_moderate_or_worse",
            _NUMBER,
            "How many answered life domains are moderately impaired or worse.",
            _FUNCTIONING_ANSWERS,
        ),
        spec(
            "co_occurring.mental_health_any",
            _CONDITION,
            "Highest certainty among co-occurring depressive, anxiety, trauma, bipolar and "
            "psychotic disorders.",
            _paths("co_occurring", _MENTAL_HEALTH_CONDITIONS),
        ),
        spec(
            "co_occurring.serious_mental_illness",
            _CONDITION,
            "Highest certainty among co-occurring bipolar and psychotic disorders.",
            _paths("co_occurring", _SERIOUS_MENTAL_ILLNESS),
        ),
        spec(
            "co_occurring.substance_use_any",
            _CONDITION,
            "Highest certainty among co-occurring substance use problems of any class.",
            _SUBSTANCE_ANSWERS,
        ),
        *(
            spec(path, _BOOL, description, EVIDENCE_SOURCES[path])
            for path, description in EVIDENCE.items()
        ),
        spec(
            "logistics.telehealth_capable",
            _BOOL,
            "Has a device, a private space and a reliable connection (all three).",
            _paths("logistics.telehealth", ("device", "private_space", "reliable_connection")),
        ),
        spec(
            "co_occurring.mental_health_count",
            _NUMBER,
            "How many of depressive, anxiety, trauma, bipolar and psychotic disorders are "
            "suspected or known.",
            _paths("co_occurring", _MENTAL_HEALTH_CONDITIONS),
        ),
        spec(
            "respondent.young_adult",
            _BOOL,
            "Is the person a young adult (18 to 25)? Asks the age in years of an adult.",
            _AGE_ANSWERS,
        ),
        spec(
            "respondent.older_adult",
            _BOOL,
            "Is the person an older adult (65 or over)? Asks the age in years of an adult.",
            _AGE_ANSWERS,
        ),
    ]


def _score_specs(policies: Mapping[InstrumentId, InstrumentPolicy]) -> list[FactSpec]:
    specs: list[FactSpec] = []
    for instrument, spec in SPECS.items():
        title, prefix, sources = spec.title, instrument.value, score_sources(instrument)

        def add(
            name: str,
            kind: FactType,
            description: str,
            prefix: str = prefix,
            sources: tuple[str, ...] = sources,
        ) -> None:
            specs.append(
                FactSpec(
                    f"{prefix}.{name}", kind, description, FactSource.SCORE, derived_from=sources
                )
            )

        add("given", _BOOL, f"{title} was given (always known: true or false).")
        add("declined_items", _NUMBER, f"How many {title} items were declined.")
        if instrument is InstrumentId.ASQ:
            for name, kind, description in _EXTRA_SCORE_FACTS[instrument]:
                add(name, kind, description)
            continue
        if spec.kind is AnswerKind.CATEGORICAL:
            add(
                "tier",
                _CSSRS_TIER,
                f"{title} triage tier (unknown if a declined answer could raise it).",
            )
            add("tier_at_least", _CSSRS_TIER, f"{title} tier established by the answers given.")
            continue
        add("total", _NUMBER, f"{title} total (unknown if an item was declined).")
        add("total_at_least", _NUMBER, f"{title} total counting declined items as 0.")
        bands = policies[instrument].bands
        if bands:
            labels = tuple(band.label for band in bands)
            band_type = FactType(FactKind.STRING, labels, True)
            add("band", band_type, f"{title} severity band.")
            add(
                "band_at_least",
                band_type,
                f"{title} band the answered items establish (declined items counted as 0).",
            )
        policy = policies[instrument]
        if policy.positive_at is not None or policy.positive_at_by_sex is not None:
            add("positive", _BOOL, f"{title} screen is positive at the rule set's cut-off.")
        for name, kind, description in _EXTRA_SCORE_FACTS.get(instrument, ()):
            add(name, kind, description)
    return specs


# Score facts of one instrument beyond its total, band and screen result.
_EXTRA_SCORE_FACTS: Final[Mapping[InstrumentId, tuple[tuple[str, FactType, str], ...]]] = {
    InstrumentId.PHQ9: (
        ("item9", _NUMBER, "PHQ-9 item 9 (thoughts of death or self-harm), 0-3."),
        ("item9_declined", _BOOL, "PHQ-9 item 9 was declined."),
    ),
    InstrumentId.CRAFFT: (
        (
            "car",
            _BOOL,
            "CRAFFT 2.1 CAR item: has the person ridden in a car driven by someone (or driven "
            "themselves) who had been using alcohol or drugs?",
        ),
        (
            "any_use",
            _BOOL,
            "CRAFFT 2.1 Part A: any days of alcohol, cannabis or other drug use in the past 12 "
            "months?",
        ),
    ),
    InstrumentId.ASQ: (
        (
            "positive",
            _BOOL,
            "ASQ screen is positive (a yes to any of items 1-4; unknown if a declined item "
            "leaves it open).",
        ),
        (
            "acute",
            _BOOL,
            "ASQ item 5: is the person having thoughts of killing themselves right now?",
        ),
    ),
}


def _stage_specs() -> list[FactSpec]:
    ratings = FactType(FactKind.STRING, tuple(r.value for r in Rating), True)
    specs = [
        FactSpec(
            f"domains.{domain.value}",
            ratings,
            f"Rating of the {domain.value.replace('_', ' ')} domain (none when no rule rated it).",
            FactSource.DOMAIN,
            Stage.PLACEMENT,
        )
        for domain in Domain
    ]
    specs.append(
        FactSpec(
            "placement.level",
            FactType(FactKind.STRING, tuple(level.value for level in LEVEL_ORDER), True),
            "The level of care placed (ordered from outpatient up to emergency evaluation).",
            FactSource.PLACEMENT,
            Stage.FEASIBILITY,
        )
    )
    specs.append(
        FactSpec(
            "placement.minimum_hours_per_week",
            _NUMBER,
            "Minimum weekly hours of the placed level for this age group (unknown for levels "
            "without a minimum).",
            FactSource.PLACEMENT,
            Stage.FEASIBILITY,
        )
    )
    return specs


def build_catalogue(policies: Mapping[InstrumentId, InstrumentPolicy]) -> dict[str, FactSpec]:
    """Every fact a rule set with these instrument policies may use, keyed by path.

    A fact's description is the label of a missing item in a determination: changing the
    description of an existing fact (or of the question it comes from) changes how stored
    screenings replay (tests/unit/test_legacy_replay.py catches it).
    """
    specs = [*_ANSWER_SPECS, *_derived_specs(), *_score_specs(policies), *_stage_specs()]
    return {spec.path: spec for spec in specs}


def types_for_stage(catalogue: Mapping[str, FactSpec], stage: Stage) -> dict[str, FactType]:
    """The facts a condition in ``stage`` may read, with their types."""
    order = {s: i for i, s in enumerate(Stage)}
    return {
        path: spec.type
        for path, spec in catalogue.items()
        if order[spec.available_from] <= order[stage]
    }


# --- extraction --------------------------------------------------------------------------------
# Extraction runs for every screening, so it walks a plan prepared once at import and reads the
# models' field dicts directly. Unknown values are simply left out (absent means unknown).

_SectionPlan = tuple[
    str, tuple[tuple[str, str], ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
]


@dataclass(frozen=True, slots=True)
class ExtractionPlan:
    """Which facts to extract: a rule set needs only the facts its conditions read."""

    sections: tuple[_SectionPlan, ...]
    functioning: bool
    co_occurring: bool
    telehealth: bool
    evidence: bool
    age: bool


def extraction_plan(paths: Iterable[str] | None = None) -> ExtractionPlan:
    """A plan extracting ``paths`` (every fact when None); prepared once per rule set."""
    wanted = None if paths is None else frozenset(paths)

    def keep(path: str) -> bool:
        return wanted is None or path in wanted

    plan: list[_SectionPlan] = []
    for section, section_facts in _ANSWER_PLAN:
        flat = tuple(
            (f.attributes[0], f.path)
            for f in section_facts
            if len(f.attributes) == 1 and keep(f.path)
        )
        nested: dict[str, list[tuple[str, str]]] = {}
        for fact in section_facts:
            assert len(fact.attributes) <= 2, "sections nest one level deep at most"
            if len(fact.attributes) == 2 and keep(fact.path):
                nested.setdefault(fact.attributes[0], []).append((fact.attributes[1], fact.path))
        if flat or nested:
            inner = tuple((name, tuple(facts)) for name, facts in nested.items())
            plan.append((section, flat, inner))
    return ExtractionPlan(
        sections=tuple(plan),
        functioning=any(
            keep(p) for p in ("functioning.worst", "functioning.domains_moderate_or_worse")
        ),
        co_occurring=any(
            keep(p)
            for p in (
                "co_occurring.mental_health_any",
                "co_occurring.serious_mental_illness",
                "co_occurring.substance_use_any",
                "co_occurring.mental_health_count",
            )
        ),
        telehealth=keep("logistics.telehealth_capable"),
        evidence=any(keep(path) for path in EVIDENCE),
        age=any(keep(p) for p in ("respondent.young_adult", "respondent.older_adult")),
    )


EVERY_FACT: Final = extraction_plan()
_IMPAIRMENT_RANK: Final = {member: rank for rank, member in enumerate(Impairment)}
_CONDITION_RANK: Final = {member: rank for rank, member in enumerate(ConditionStatus)}
_MODERATE: Final = _IMPAIRMENT_RANK[Impairment.MODERATE]
_NOT_GIVEN: Final = {f"{instrument.value}.given": False for instrument in InstrumentId}
_SCORE_KEYS: Final = {
    instrument: tuple(
        f"{instrument.value}.{name}"
        for name in (
            "given",
            "declined_items",
            "total",
            "total_at_least",
            "band",
            "positive",
            "band_at_least",
        )
    )
    for instrument in InstrumentId
}


def _highest(values: Sequence[StrEnum | None], rank: Mapping[Any, int]) -> StrEnum | None:
    best: StrEnum | None = None
    best_rank = -1
    for value in values:
        if value is not None and rank[value] > best_rank:
            best, best_rank = value, rank[value]
    return best


def _kleene_all(values: Sequence[bool | None]) -> bool | None:
    if any(value is False for value in values):
        return False
    return None if any(value is None for value in values) else True


def _put_answers(facts: dict[str, object], answers: ScreeningAnswers, plan: ExtractionPlan) -> None:
    """The answers the plan extracts, each under its fact path (a section's own fields, then
    those of its nested models); an answer not given stays unknown."""
    sections = answers.__dict__
    for section_name, flat, nested in plan.sections:
        section = sections[section_name]
        if section is None:
            continue
        fields = section.__dict__
        for name, path in flat:
            value = fields[name]
            if value is not None:
                facts[path] = value
        for name, inner in nested:
            sub = fields[name]
            if sub is not None:
                sub_fields = sub.__dict__
                for sub_name, path in inner:
                    value = sub_fields[sub_name]
                    if value is not None:
                        facts[path] = value


def _put_derived(facts: dict[str, object], answers: ScreeningAnswers, plan: ExtractionPlan) -> None:
    functioning: Functioning | None = answers.functioning
    if functioning is not None and plan.functioning:
        domains = (
            functioning.work_school,
            functioning.self_care,
            functioning.relationships,
            functioning.daily_activities,
        )
        worst = _highest(domains, _IMPAIRMENT_RANK)
        if worst is not None:
            facts["functioning.worst"] = worst
        facts["functioning.domains_moderate_or_worse"] = sum(
            1 for d in domains if d is not None and _IMPAIRMENT_RANK[d] >= _MODERATE
        )
    co: CoOccurring | None = answers.co_occurring
    if co is not None and plan.co_occurring:
        _put_co_occurring(facts, co)
    if plan.age:
        _put_age(facts, answers.respondent)
    logistics = answers.logistics
    if plan.telehealth and logistics is not None and logistics.telehealth is not None:
        t = logistics.telehealth
        facts["logistics.telehealth_capable"] = _kleene_all(
            (t.device, t.private_space, t.reliable_connection)
        )


def _put_co_occurring(facts: dict[str, object], co: CoOccurring) -> None:
    values = co.__dict__
    mental_health = [values[name] for name in _MENTAL_HEALTH_CONDITIONS]
    facts["co_occurring.mental_health_any"] = _highest(mental_health, _CONDITION_RANK)
    facts["co_occurring.serious_mental_illness"] = _highest(
        [values[name] for name in _SERIOUS_MENTAL_ILLNESS], _CONDITION_RANK
    )
    if any(status is not None for status in mental_health):  # none answered: unknown
        facts["co_occurring.mental_health_count"] = sum(
            1 for s in mental_health if s is not None and _CONDITION_RANK[s] >= _SUSPECTED
        )
    if co.substance_use is not None:
        substances = co.substance_use.__dict__
        facts["co_occurring.substance_use_any"] = _highest(
            [substances[name] for name in _SUBSTANCE_CLASSES], _CONDITION_RANK
        )


def _put_age(facts: dict[str, object], respondent: Respondent) -> None:
    """Young adult (18-25) and older adult (65+): false for an adolescent, unknown for an
    adult whose age in years was not given."""
    if respondent.age_group is AgeGroup.ADOLESCENT:
        facts["respondent.young_adult"] = facts["respondent.older_adult"] = False
    elif respondent.age_years is not None:
        facts["respondent.young_adult"] = respondent.age_years <= _YOUNG_ADULT_UP_TO
        facts["respondent.older_adult"] = respondent.age_years >= _OLDER_ADULT_FROM


_YOUNG_ADULT_UP_TO: Final = 25
_OLDER_ADULT_FROM: Final = 65


def _put_scores(
    facts: dict[str, object],
    scores: Mapping[InstrumentId, InstrumentScore],
    policies: Mapping[InstrumentId, InstrumentPolicy],
    adolescent: bool,
) -> None:
    for instrument, score in scores.items():
        given, declined, total, at_least, band, positive, band_at_least = _SCORE_KEYS[instrument]
        facts[given] = True
        facts[declined] = len(score.declined_items)
        if instrument is InstrumentId.CSSRS:
            facts["cssrs.tier"] = score.tier
            facts["cssrs.tier_at_least"] = score.tier_at_least
            continue
        if instrument is InstrumentId.ASQ:  # no total: see _put_youth_screens
            continue
        facts[total] = score.total
        facts[at_least] = score.total_min
        facts[band] = score.band
        facts[positive] = score.positive
        if score.band is not None:
            facts[band_at_least] = score.band
        elif score.total_min is not None:
            table = policies[instrument].for_respondent(adolescent).band_labels
            if score.total_min < len(table):
                facts[band_at_least] = table[score.total_min]


_SUSPECTED: Final = _CONDITION_RANK[ConditionStatus.SUSPECTED]


def _concern(concern: Concern, concerns: Sequence[Concern] | None) -> bool | None:
    """Whether ``concern`` is among the presenting concerns; unknown before they are asked."""
    return None if concerns is None else concern in concerns


def _any(signals: Iterable[bool | None]) -> bool | None:
    """Kleene or: true if any signal is, unknown if none is but one is unknown."""
    unknown = False
    for signal in signals:
        if signal:
            return True
        unknown = unknown or signal is None
    return None if unknown else False


def _screen(
    scores: Mapping[InstrumentId, InstrumentScore], instrument: InstrumentId
) -> bool | None:
    score = scores.get(instrument)
    return False if score is None else score.positive


@dataclass(frozen=True, slots=True)
class _CrafftEvidence:
    substance_use: bool | None = False
    alcohol: bool | None = False
    drugs: bool | None = False


_NO_CRAFFT: Final = _CrafftEvidence()


def _crafft_evidence(
    crafft: Crafft | None, scores: Mapping[InstrumentId, InstrumentScore]
) -> _CrafftEvidence:
    """What a CRAFFT 2.1 adds to the evidence (nothing when it was not given): a positive screen,
    or use in Part A with a yes to CAR, is substance use; a positive screen with alcohol days
    is alcohol, with cannabis or other days drugs."""
    if crafft is None:
        return _NO_CRAFFT
    positive = scores[InstrumentId.CRAFFT].positive
    alcohol_used = _used(crafft.days_alcohol)
    drugs_used = _used(crafft.days_cannabis) or _used(crafft.days_other)
    car_with_use = (alcohol_used or drugs_used) and crafft.items[0] is True
    return _CrafftEvidence(
        substance_use=_any((positive, car_with_use)),
        alcohol=positive if alcohol_used else False,
        drugs=positive if drugs_used else False,
    )


def _used(days: int | None) -> bool:
    """Use reported in CRAFFT Part A (a question not asked is no evidence)."""
    return days is not None and days > 0


def _put_evidence(
    facts: dict[str, object],
    answers: ScreeningAnswers,
    scores: Mapping[InstrumentId, InstrumentScore],
) -> None:
    withdrawal = answers.withdrawal
    heavy = (withdrawal.heavy_daily_use if withdrawal else None) or ()
    # A concern not yet asked is unknown, not absent: evidence that only it could give stays
    # unknown, so a safety rule that reads it is undetermined and the concern is asked first.
    concerns = answers.presenting_concerns
    co = answers.co_occurring
    substances = co.substance_use.__dict__ if co is not None and co.substance_use else {}

    def problem(name: str) -> bool:
        status = substances.get(name)
        return status is not None and _CONDITION_RANK[status] >= _SUSPECTED

    sedative_signs = bool(withdrawal and withdrawal.sedative_signs_now)
    crafft = _crafft_evidence(answers.instruments.crafft, scores)
    alcohol = _any(
        (
            _screen(scores, InstrumentId.AUDIT_C),
            _screen(scores, InstrumentId.AUDIT),
            DailyUseSubstance.ALCOHOL in heavy,
            problem("alcohol"),
            InstrumentId.CIWA_AR in scores,
            crafft.alcohol,
        )
    )
    sedatives = DailyUseSubstance.SEDATIVES in heavy or problem("sedatives") or sedative_signs
    opioids = (
        DailyUseSubstance.OPIOIDS in heavy or problem("opioids") or InstrumentId.COWS in scores
    )
    drugs = _any(
        (
            _screen(scores, InstrumentId.DAST10),
            any(problem(name) for name in _DRUG_CLASSES),
            DailyUseSubstance.OPIOIDS in heavy or DailyUseSubstance.SEDATIVES in heavy,
            crafft.drugs,
        )
    )
    eating = co is not None and co.eating is not None and _CONDITION_RANK[co.eating] >= _SUSPECTED
    facts["evidence.alcohol"] = alcohol
    facts["evidence.sedatives"] = sedatives
    facts["evidence.opioids"] = opioids
    facts["evidence.drugs"] = drugs
    facts["evidence.substance_use"] = _any(
        (
            alcohol,
            sedatives,
            opioids,
            drugs,
            _concern(Concern.SUBSTANCE_USE, concerns),
            crafft.substance_use,
        )
    )
    facts["evidence.eating_disorder"] = _any(
        (
            _concern(Concern.EATING_DISORDER, concerns),
            eating,
            _screen(scores, InstrumentId.SCOFF),
        )
    )


def extract_facts(
    answers: ScreeningAnswers,
    scores: Mapping[InstrumentId, InstrumentScore],
    plan: ExtractionPlan = EVERY_FACT,
    policies: Mapping[InstrumentId, InstrumentPolicy] = DEFAULT_POLICIES,
) -> dict[str, object]:
    """The fact values of one screening (absent keys are unknown); ``policies`` are the cut-offs
    the scores were made with."""
    facts: dict[str, object] = dict(_NOT_GIVEN)
    if answers.presenting_concerns is not None:  # absent: unknown
        facts["presenting_concerns"] = answers.presenting_concerns
    _put_answers(facts, answers, plan)
    _put_derived(facts, answers, plan)
    _put_scores(facts, scores, policies, answers.respondent.age_group is AgeGroup.ADOLESCENT)
    if plan.evidence:
        _put_evidence(facts, answers, scores)
    _put_youth_screens(facts, answers.instruments)
    phq9 = answers.instruments.phq9
    if phq9 is not None:
        item9 = phq9.items[8]
        facts["phq9.item9_declined"] = item9 == DECLINED
        facts["phq9.item9"] = item9 if isinstance(item9, int) else None
    return facts


def _put_youth_screens(facts: dict[str, object], instruments: Instruments) -> None:
    """The CRAFFT 2.1 and ASQ facts read from the answers themselves (CAR, Part A, item 5)."""
    crafft, asq = instruments.crafft, instruments.asq
    if crafft is not None:
        car = crafft.items[0]
        facts["crafft.car"] = car if isinstance(car, bool) else None
        facts["crafft.any_use"] = crafft.part_a_use()
    if asq is not None:
        facts["asq.positive"], facts["asq.acute"] = asq_result(asq.items, asq.acute)

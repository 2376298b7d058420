"""What to ask next: a determination's missing information as questions an intake app can ask.

A determination lists what was missing as the rule set names it: a fact (``safety.
recent_violence``) or an item a rule asks for in words ("A suicide-risk screen: …"). This module
turns each into the questions of the answers model that would supply it (dotted paths, which
are also the FHIR Questionnaire's linkIds, and JSON pointers into ``answers``), drops those
already answered, and orders them by what they could change: safety first (an open safety
question withholds every ambulatory verdict), then the information without which nobody can be
placed, then what could change the level, then what could change the barriers. An item no
question can supply (a clinician's assessment) is listed as one, so an app can loop: submit
what it has, ask the next question, submit again.

Pure: the compiled rule set says which facts each rule reads; nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from app.engine.compiler import CompiledRuleSet
from app.engine.determination import STAGE_ORDER, MissingItem, Stage
from app.engine.facts import FactSource, FactSpec
from app.engine.instruments import InstrumentId

_INSTRUMENTS: Final = frozenset(instrument.value for instrument in InstrumentId)
# Derived facts come from a section's answers: asking the section supplies them. An evidence
# fact counts the presenting concern among answers that are always known: it is unknown only
# while the concern is.
_DERIVED_FROM: Final = (
    ("functioning.", ("functioning",)),
    ("co_occurring.", ("co_occurring",)),
    ("logistics.telehealth_capable", ("logistics.telehealth",)),
    ("respondent.", ("respondent.age_years",)),  # young and older adult: the age in years
    ("evidence.", ("presenting_concerns",)),
)
# A question a rule's words name: "Pregnancy status (medical.pregnant)".
_NAMED_PATH: Final = re.compile(r"\(([a-z_]+(?:\.[a-z_0-9]+)+)\)")


@dataclass(frozen=True, slots=True)
class Question:
    """A question of the answers model: its dotted path (the FHIR linkId) and JSON pointer."""

    path: str
    pointer: str


@dataclass(frozen=True, slots=True)
class ToAsk:
    """One missing item, with the questions that supply it (none: a clinician's assessment)."""

    item: str
    label: str
    stage: Stage
    questions: tuple[Question, ...]
    needed_by: tuple[str, ...]

    @property
    def kind(self) -> str:
        return "question" if self.questions else "assessment"


def _question(path: str) -> Question:
    return Question(path, "/" + path.replace(".", "/"))


def fact_questions(fact: str, source: FactSource | None) -> tuple[str, ...]:
    """The answers' paths that supply ``fact`` (empty for what the engine decides itself)."""
    if source is FactSource.ANSWER:
        return (fact,)
    prefix = fact.partition(".")[0]
    if source is FactSource.SCORE and prefix in _INSTRUMENTS:
        return (f"instruments.{prefix}",)
    if source is FactSource.DERIVED:
        for start, paths in _DERIVED_FROM:
            if fact.startswith(start):
                return paths
    return ()


def answered_paths(answers: Mapping[str, Any], prefix: str = "") -> frozenset[str]:
    """Every dotted path ``answers`` gives a value (sections and instruments included)."""
    found: set[str] = set()
    for name, value in answers.items():
        if value is None:
            continue
        path = f"{prefix}{name}"
        found.add(path)
        if isinstance(value, Mapping):
            found |= answered_paths(value, f"{path}.")
    return frozenset(found)


def _rule_facts(compiled: CompiledRuleSet) -> dict[str, tuple[Stage, tuple[str, ...]]]:
    """Each rule's stage and the facts its condition reads."""
    stages: Iterable[tuple[Stage, Sequence[Any]]] = (
        (Stage.SAFETY, compiled.safety),
        (Stage.INFORMATION, compiled.information),
        (Stage.DOMAINS, compiled.domains),
        (Stage.PLACEMENT, compiled.placement),
        (Stage.FEASIBILITY, compiled.feasibility),
    )
    return {
        rule.id: (stage, tuple(rule.condition.facts)) for stage, rules in stages for rule in rules
    }


def _supplying(
    item: MissingItem,
    needing: Sequence[tuple[Stage, tuple[str, ...]]],
    catalogue: Mapping[str, FactSpec],
) -> list[str]:
    """The answers' paths that could supply ``item``: a fact's own questions; for an item in
    words, those its label names in brackets ("Pregnancy status (medical.pregnant)"), else,
    for what an information rule asks, the questions its condition reads. What a safety rule
    that fired requires in words, naming no question, is an assessment: nothing to ask."""
    if item.item in catalogue:
        return list(fact_questions(item.item, catalogue[item.item].source))
    named = _NAMED_PATH.findall(item.label)
    if named or any(stage is Stage.SAFETY for stage, _ in needing):
        return named
    paths: list[str] = []
    for _, facts in needing:
        for fact in facts:
            known = catalogue.get(fact)
            paths.extend(fact_questions(fact, known.source if known else None))
    return paths


def questions_to_ask(
    missing: Sequence[MissingItem],
    compiled: CompiledRuleSet,
    answered: frozenset[str],
    known_paths: frozenset[str],
) -> tuple[ToAsk, ...]:
    """``missing`` as questions not yet answered (``known_paths``: the questionnaire's paths),
    safety first, then in the order of the stages; the determination's order within a stage."""
    rules = _rule_facts(compiled)
    catalogue = compiled.catalogue
    found: list[tuple[int, int, ToAsk]] = []
    for position, item in enumerate(missing):
        needing = [rules[rule_id] for rule_id in item.needed_by if rule_id in rules]
        # No rule behind it: the engine needs it before anyone can be placed.
        stage = min((s for s, _ in needing), key=STAGE_ORDER.index, default=Stage.INFORMATION)
        paths: dict[str, None] = {}
        for path in _supplying(item, needing, catalogue):
            if path in known_paths and path not in answered:
                paths[path] = None
        ask = ToAsk(
            item.item,
            item.label,
            stage,
            tuple(_question(path) for path in paths),
            item.needed_by,
        )
        found.append((STAGE_ORDER.index(stage), position, ask))
    return tuple(ask for _, _, ask in sorted(found, key=lambda entry: entry[:2]))


def to_json(asks: Sequence[ToAsk]) -> list[dict[str, Any]]:
    """The API's form: what to ask, in order."""
    return [
        {
            "item": ask.item,
            "label": ask.label,
            "kind": ask.kind,
            "stage": ask.stage.value,
            "questions": [
                {"path": q.path, "pointer": q.pointer, "link_id": q.path} for q in ask.questions
            ],
            "needed_by": list(ask.needed_by),
        }
        for ask in asks
    ]

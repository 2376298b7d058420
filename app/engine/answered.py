"""Which questionnaire answers a rule set reads, and which answers a screening gave.

An *answer path* names one question of the questionnaire: a section answer
(``respondent.answered_by``, ``logistics.telehealth.device``), ``presenting_concerns``, or a
whole instrument (``instruments.phq9``). Rules read facts; each fact says which answer paths it
is computed from (``FactSpec.answer_paths``), so the answers a set of rules reads is known at
compile time. At evaluation only a short list of paths is looked up in the answers given
(``AnswerWalk``), which keeps the cost on the hot path small.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from pydantic import BaseModel

from app.engine.answers import ScreeningAnswers
from app.engine.determination import ContextAnswer, UnusedAnswer
from app.engine.expressions import CompiledCondition
from app.engine.facts import FactSource, FactSpec, extraction_plan
from app.engine.instruments import SPECS, InstrumentId

CONCERNS: Final = "presenting_concerns"
_INSTRUMENTS: Final = {f"instruments.{i.value}": i for i in InstrumentId}


def question_paths(catalogue: Mapping[str, FactSpec]) -> tuple[str, ...]:
    """Every answer path of the questionnaire, in catalogue order, instruments last."""
    answers = tuple(path for path, spec in catalogue.items() if spec.source is FactSource.ANSWER)
    return (*answers, *_INSTRUMENTS)


def answers_read(
    conditions: Iterable[CompiledCondition], catalogue: Mapping[str, FactSpec]
) -> frozenset[str]:
    """The answer paths these conditions read, directly or through a derived or score fact."""
    return frozenset(
        path
        for condition in conditions
        for fact in condition.facts
        if (spec := catalogue.get(fact)) is not None
        for path in spec.answer_paths
    )


def question_label(path: str, catalogue: Mapping[str, FactSpec]) -> str:
    """What a question is, in words: the first sentence of its fact's description (the rest
    explains its scale, which a list of answers does not need), or the instrument's title."""
    instrument = _INSTRUMENTS.get(path)
    if instrument is not None:
        return SPECS[instrument].title
    spec = catalogue.get(path)
    if spec is None or not spec.description:
        return path
    first, stop, _ = spec.description.partition(". ")
    return f"{first}." if stop else spec.description


def _json_value(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


class Reach(IntEnum):
    """How far an evaluation went, which decides the answers its rules read."""

    AFTER_SAFETY = 0
    """An override fired: only the safety and consistency rules ran."""
    AFTER_INFORMATION = 1
    """Too little to place anyone: the information check ran too."""
    EVERY_STAGE = 2


def answers_read_by_reach(
    early: Iterable[CompiledCondition],
    information: Iterable[CompiledCondition],
    later: Iterable[CompiledCondition],
    catalogue: Mapping[str, FactSpec],
) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The answer paths read at each ``Reach``: by the safety and consistency rules (``early``),
    then by the information check, then by every later stage. The engine itself reads the
    presenting concerns from the information check on, and the age group for the hours of the
    level placed."""
    first = answers_read(early, catalogue)
    second = first | answers_read(information, catalogue) | {CONCERNS}
    every = second | answers_read(later, catalogue) | {"respondent.age_group"}
    return first, second, every


def context_problems(
    context: Sequence[str], questions: Sequence[str], read: frozenset[str]
) -> Iterator[tuple[str, str]]:
    """(where, message) for each context entry that is not an answer path listed once that no
    rule reads."""
    known = frozenset(questions)
    seen: set[str] = set()
    for index, path in enumerate(context):
        where = f"context.{index}"
        if path not in known:
            yield (
                where,
                (
                    f"'{path}' is not an answer path (a section answer such as "
                    "'respondent.answered_by', or 'instruments.<id>')"
                ),
            )
        elif path in seen:
            yield where, f"'{path}' is listed twice"
        elif path in read:
            yield where, f"'{path}' is read by a rule; context lists only answers no rule reads"
        seen.add(path)


_Chain = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Question:
    """One answer path a walk looks up: the attribute chain to the model holding it (shared by
    the questions of that model), its attribute there, and what a determination lists for it."""

    chain: _Chain
    attribute: str
    path: str
    label: str
    unused: UnusedAnswer


@dataclass(frozen=True, slots=True)
class AnswerWalk:
    """Looks up a fixed list of answer paths in the answers of a screening; prepared once per
    rule set (``walk``) as one flat list, questions of the same model next to each other, so
    evaluation only reads the few attributes it names."""

    questions: tuple[_Question, ...]

    def _given(self, answers: ScreeningAnswers) -> Iterator[tuple[_Question, Any]]:
        """Each question that was answered, with its value: given in the request (a default
        the model filled in was not an answer) and not null."""
        chain: _Chain | None = None
        model: BaseModel | None = None
        for question in self.questions:
            if question.chain is not chain:  # the next model: look it up once
                chain = question.chain
                model = _model_at(answers, chain)
            if model is None:
                continue
            value = model.__dict__[question.attribute]
            if value is not None and question.attribute in model.__pydantic_fields_set__:
                yield question, value

    def unused(self, answers: ScreeningAnswers) -> tuple[UnusedAnswer, ...]:
        """The paths answered, as answers that did not affect the result."""
        if not self.questions:
            return ()
        return tuple(question.unused for question, _ in self._given(answers))

    def context(self, answers: ScreeningAnswers) -> tuple[ContextAnswer, ...]:
        """The paths answered, as context with their values (JSON-ready)."""
        if not self.questions:
            return ()
        return tuple(
            ContextAnswer(question.path, question.label, _json_value(value))
            for question, value in self._given(answers)
        )


def _model_at(answers: ScreeningAnswers, chain: _Chain) -> BaseModel | None:
    """The model at the end of ``chain`` (None when a model on the way was not given)."""
    model: BaseModel = answers
    for attribute in chain:
        inner = model.__dict__[attribute]
        if inner is None or attribute not in model.__pydantic_fields_set__:
            return None
        model = inner
    return model


NO_WALK: Final = AnswerWalk(())
_TOP: Final[_Chain] = ()
_INSTRUMENT_CHAIN: Final[_Chain] = ("instruments",)


def walk(paths: Iterable[str], catalogue: Mapping[str, FactSpec]) -> AnswerWalk:
    """An ``AnswerWalk`` over ``paths`` (answer paths; anything else is ignored), in
    questionnaire order: the presenting concerns, each section's answers (its own, then those
    of its nested models), then the instruments."""
    wanted = frozenset(paths)
    if not wanted:
        return NO_WALK
    found: list[tuple[_Chain, str, str]] = []
    if CONCERNS in wanted:
        found.append((_TOP, CONCERNS, CONCERNS))
    for section, flat, nested in extraction_plan(wanted).sections:
        chain = (section,)
        found += [(chain, attribute, path) for attribute, path in flat]
        for attribute, inner in nested:
            inner_chain = (section, attribute)
            found += [(inner_chain, name, path) for name, path in inner]
    found += [
        (_INSTRUMENT_CHAIN, instrument.value, path)
        for path, instrument in _INSTRUMENTS.items()
        if path in wanted
    ]
    return AnswerWalk(
        tuple(
            _Question(chain, attribute, path, label, UnusedAnswer(path, label))
            for chain, attribute, path in found
            for label in (question_label(path, catalogue),)
        )
    )

"""Which questionnaire answers a rule set reads, and which answers a screening gave.

An *answer path* names one question of the questionnaire: a section answer
(``respondent.answered_by``, ``logistics.telehealth.device``), ``presenting_concerns``, or a
whole instrument (``instruments.phq9``). Rules read facts; each fact says which answer paths it
is computed from (``FactSpec.answer_paths``), so the answers a set of rules reads is known at
compile time. At evaluation only a short list of paths is looked up in the answers given
(``AnswerWalk``), which keeps the cost on the hot path small.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
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
    """What a question is, in words: its fact's description, or the instrument's title."""
    instrument = _INSTRUMENTS.get(path)
    if instrument is not None:
        return SPECS[instrument].title
    spec = catalogue.get(path)
    return spec.description if spec is not None and spec.description else path


def _json_value(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


@dataclass(frozen=True, slots=True)
class AnswerWalk:
    """Looks up a fixed list of answer paths in the answers of a screening; prepared once per
    rule set (``walk``), so evaluation only reads the few attributes it names."""

    concerns: str | None
    sections: tuple[
        tuple[
            str, tuple[tuple[str, str], ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
        ],
        ...,
    ]
    instruments: tuple[tuple[str, str], ...]
    labels: Mapping[str, str]

    def given(self, answers: ScreeningAnswers) -> Iterator[tuple[str, Any]]:
        """Each of the paths that was answered, with its value: given in the request (a
        default the model filled in was not an answer) and not null."""
        if self.concerns is not None and answers.presenting_concerns is not None:
            yield self.concerns, answers.presenting_concerns
        sections = answers.__dict__
        for name, flat, nested in self.sections:
            section = sections[name]
            if section is not None:
                yield from _given(section, flat)
                for attribute, inner in nested:
                    sub = section.__dict__[attribute]
                    if sub is not None and attribute in section.__pydantic_fields_set__:
                        yield from _given(sub, inner)
        given = answers.instruments.__dict__
        for attribute, path in self.instruments:
            if given[attribute] is not None:
                yield path, given[attribute]

    def unused(self, answers: ScreeningAnswers) -> tuple[UnusedAnswer, ...]:
        """The paths answered, as answers that did not affect the result."""
        if not self.labels:
            return ()
        return tuple(UnusedAnswer(path, self.labels[path]) for path, _ in self.given(answers))

    def context(self, answers: ScreeningAnswers) -> tuple[ContextAnswer, ...]:
        """The paths answered, as context with their values (JSON-ready)."""
        if not self.labels:
            return ()
        return tuple(
            ContextAnswer(path, self.labels[path], _json_value(value))
            for path, value in self.given(answers)
        )


def _given(model: BaseModel, paths: tuple[tuple[str, str], ...]) -> Iterator[tuple[str, Any]]:
    values, explicit = model.__dict__, model.__pydantic_fields_set__
    for attribute, path in paths:
        value = values[attribute]
        if value is not None and attribute in explicit:
            yield path, value


NO_WALK: Final = AnswerWalk(None, (), (), {})


def walk(paths: Iterable[str], catalogue: Mapping[str, FactSpec]) -> AnswerWalk:
    """An ``AnswerWalk`` over ``paths`` (answer paths; anything else is ignored)."""
    wanted = frozenset(paths)
    if not wanted:
        return NO_WALK
    plan = extraction_plan(wanted)
    instruments = tuple(
        (instrument.value, path) for path, instrument in _INSTRUMENTS.items() if path in wanted
    )
    known = {path for path in wanted if path == CONCERNS or path in _INSTRUMENTS}
    known |= {path for _, flat, _ in plan.sections for _, path in flat}
    known |= {path for _, _, nested in plan.sections for _, inner in nested for _, path in inner}
    return AnswerWalk(
        CONCERNS if CONCERNS in wanted else None,
        plan.sections,
        instruments,
        {path: question_label(path, catalogue) for path in sorted(known)},
    )

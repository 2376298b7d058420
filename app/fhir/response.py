"""Reading a FHIR QuestionnaireResponse back into carelevel's answers.

The response must cite our Questionnaire (``url`` and, optionally, ``|version``), be
``completed`` or ``amended``, and use only our linkIds with answers of the types the
Questionnaire gives them. Input is read leniently where FHIR allows several spellings of one
answer (a coded yes or ``valueBoolean``; a coded score or ``valueInteger``), strictly
otherwise. Within an instrument that was given, an item left unanswered counts as declined.
Every problem is reported with the linkId it concerns and never with the value sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from app.engine.instrument_content import item_content
from app.engine.instruments import (
    CRAFFT_PART_A,
    AnswerKind,
    InstrumentSpec,
    crafft_part_a_use,
)
from app.fhir.outcome import FhirError, Issue, item_expression
from app.fhir.questionnaire import given_link_id, is_questionnaire_key, parse_business_version
from app.fhir.terminology import (
    LOINC,
    NO,
    YES,
    Vocabulary,
    choice_system,
)
from app.kernel.settings import LEGACY_FHIR_CANONICAL_BASE
from app.questionnaire import FormItem, Kind, form

ANSWERED = ("completed", "amended")
DECLINED = "declined"
# carelevel's Questionnaire nests items at most four levels deep (section, instrument, item
# list, item); deeper nesting is refused before anything walks it recursively.
MAX_ITEM_DEPTH: Final = 8


@dataclass(frozen=True, slots=True)
class Question:
    """What a linkId stands for: a form item, or one item of an instrument's item list."""

    item: FormItem
    number: int | None = None  # instrument items: 1-based

    @property
    def instrument(self) -> InstrumentSpec | None:
        return self.item.instrument if self.number is not None else None


@cache
def given_switches() -> dict[str, str]:
    """The instrument each "was given" question stands for: {linkId: instrument path}."""
    return {given_link_id(instrument.path): instrument.path for instrument in _instruments()}


@cache
def link_ids() -> tuple[dict[str, Question], frozenset[str]]:
    """(questions by linkId, group linkIds)."""
    questions: dict[str, Question] = {}
    groups: set[str] = set()
    for top in form():
        for item in top.walk():
            if item.kind is Kind.GROUP:
                groups.add(item.path)
            elif item.kind is Kind.ITEMS:
                groups.add(item.path)
                for number in range(1, len(item.item_values) + 1):
                    questions[f"{item.path}.{number}"] = Question(item, number)
            else:
                questions[item.path] = Question(item)
    return questions, frozenset(groups)


@dataclass
class ReadResponse:
    """What a QuestionnaireResponse says, in carelevel's terms."""

    key: str
    pin: tuple[str, int] | None  # (owner, version) cited; None: the active version decides
    answers: dict[str, Any]
    context: dict[str, Any] = field(default_factory=dict)  # subject, encounter, source, …


def _structure_issues(error: ValidationError) -> list[Issue]:
    issues = []
    for problem in error.errors(include_input=False, include_url=False)[:20]:
        path = "QuestionnaireResponse" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"]
        )
        issues.append(Issue(diagnostics=f"{path}: {problem['msg']}", expression=path))
    return issues


def _canonical(value: str | None, vocabulary: Vocabulary) -> tuple[str, tuple[str, int] | None]:
    prefix = vocabulary.questionnaire("")
    url, _, version = (value or "").partition("|")
    key = url.removeprefix(prefix)
    if not value or not url.startswith(prefix) or not is_questionnaire_key(key):
        raise FhirError(
            422,
            "The response does not cite a carelevel Questionnaire.",
            [
                Issue(
                    diagnostics=f"questionnaire must be {prefix}<key> (optionally |<version>)",
                    expression="QuestionnaireResponse.questionnaire",
                    code="not-found",
                )
            ],
        )
    if not version:
        return key, None
    pin = parse_business_version(version)
    if pin is None:
        raise FhirError(
            422,
            "The cited Questionnaire version is not one carelevel publishes.",
            [
                Issue(
                    diagnostics="the version reads <owner>.<number>, for example shared.1",
                    expression="QuestionnaireResponse.questionnaire",
                    code="not-found",
                )
            ],
        )
    return key, pin


def refuse_deep_items(resource: dict[str, Any], root: str = "QuestionnaireResponse") -> None:
    """FhirError 422 naming the first item nested deeper than MAX_ITEM_DEPTH (through
    ``item`` or ``answer.item``; ``root`` is the FHIRPath of ``resource``). Iterative: no
    nesting can exhaust the stack here."""
    pending: list[tuple[Any, str, int]] = [(resource.get("item"), root, 1)]
    while pending:
        items, path, depth = pending.pop()
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            here = f"{path}.item[{index}]"
            if depth > MAX_ITEM_DEPTH:
                raise FhirError(
                    422,
                    "The QuestionnaireResponse nests items deeper than the Questionnaire.",
                    [
                        Issue(
                            diagnostics=f"items nest at most {MAX_ITEM_DEPTH} levels deep",
                            expression=here,
                            code="structure",
                        )
                    ],
                )
            pending.append((item.get("item"), here, depth + 1))
            answers = item.get("answer")
            for number, answer in enumerate(answers if isinstance(answers, list) else []):
                if isinstance(answer, dict):
                    pending.append((answer.get("item"), f"{here}.answer[{number}]", depth + 1))


def current_canonical(value: str, vocabulary: Vocabulary) -> str:
    """``value`` with the former canonical base (LEGACY_FHIR_CANONICAL_BASE) replaced by the
    current one."""
    former = LEGACY_FHIR_CANONICAL_BASE + "/"
    if vocabulary.base == LEGACY_FHIR_CANONICAL_BASE or not value.startswith(former):
        return value
    return f"{vocabulary.base}/{value.removeprefix(former)}"


def with_current_canonicals(resource: Any, vocabulary: Vocabulary) -> Any:
    """``resource`` with the former canonical base in its Questionnaire, coding systems and
    carelevel's extensions (the answer-source marker) replaced by the current one: responses
    written against the former base stay valid. Call it on a resource whose depth was checked
    (``refuse_deep_items``): it recurses."""
    if vocabulary.base == LEGACY_FHIR_CANONICAL_BASE:
        return resource
    extensions = f"{LEGACY_FHIR_CANONICAL_BASE}/StructureDefinition/"

    def current(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {name: current(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [current(item, key) for item in value]
        if key in ("questionnaire", "system") and isinstance(value, str):
            return current_canonical(value, vocabulary)
        if key == "url" and isinstance(value, str) and value.startswith(extensions):
            return current_canonical(value, vocabulary)
        return value

    return current(resource)


class _Reader:
    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self.issues: list[Issue] = []
        self.seen: set[str] = set()
        self.answers: dict[str, Any] = {}
        self.items: dict[str, dict[int, Any]] = {}  # instrument item lists by path
        self.given: dict[str, bool] = {}  # instrument path: whether it was given

    def problem(self, link_id: str, message: str, code: str = "invalid") -> None:
        if _ECHOABLE_LINK_ID.fullmatch(link_id) is None:
            # Not one of ours and not plainly an identifier: described, never echoed.
            self.issues.append(Issue(diagnostics=f"an item's linkId {message}", code=code))
            return
        self.issues.append(
            Issue(
                diagnostics=f"linkId '{link_id}': {message}",
                expression=item_expression(link_id),
                code=code,
            )
        )

    def walk(self, items: list[dict[str, Any]]) -> None:
        questions, groups = link_ids()
        for entry in items:
            link_id = entry.get("linkId")
            if not isinstance(link_id, str):
                self.issues.append(Issue(diagnostics="an item without a linkId", code="required"))
                continue
            answers = entry.get("answer") or []
            children = entry.get("item") or []
            if link_id in given_switches():
                if self.first_time(link_id, children, answers):
                    self.given_switch(link_id, answers)
                continue
            if link_id in groups:
                if answers:
                    self.problem(link_id, "is a group and takes no answer")
                self.walk(children)
                continue
            question = questions.get(link_id)
            if question is None:
                self.problem(link_id, "is not in the Questionnaire", code="not-found")
                continue
            if self.first_time(link_id, children, answers) and answers:
                self.answer(link_id, question, answers)

    def first_time(
        self, link_id: str, children: list[dict[str, Any]], answers: list[dict[str, Any]]
    ) -> bool:
        """Whether a question is answered here for the first time and without nested items
        (each a problem reported otherwise)."""
        if link_id in self.seen:
            self.problem(link_id, "is answered more than once")
            return False
        self.seen.add(link_id)
        if children or any(answer.get("item") for answer in answers):
            self.problem(link_id, "takes no nested items")
            return False
        return True

    def given_switch(self, link_id: str, answers: list[dict[str, Any]]) -> None:
        """Whether an instrument was given (valueBoolean); left open, its answers decide."""
        if not answers:
            return
        if len(answers) > 1 or not isinstance(answers[0].get("valueBoolean"), bool):
            self.problem(link_id, "takes one valueBoolean")
            return
        self.given[given_switches()[link_id]] = answers[0]["valueBoolean"]

    def answer(self, link_id: str, question: Question, answers: list[dict[str, Any]]) -> None:
        item = question.item
        if item.kind is Kind.MULTIPLE_CHOICE:
            values = [self.value(link_id, question, answer) for answer in answers]
            if any(value is _INVALID for value in values):
                return
            chosen = [value for value in values if value is not _NONE_OF_THESE]
            if chosen and len(chosen) != len(values):
                self.problem(link_id, "'none of these' goes alone")
                return
            self.put(item.path, chosen)
            return
        if len(answers) > 1:
            self.problem(link_id, "takes one answer")
            return
        value = self.value(link_id, question, answers[0])
        if value is _INVALID or value is _NONE_OF_THESE:
            return
        if question.number is not None:
            self.items.setdefault(item.path, {})[question.number] = value
        else:
            self.put(item.path, value)

    def value(self, link_id: str, question: Question, answer: dict[str, Any]) -> Any:
        """The value one answer gives the question; _INVALID, with the problem reported, when
        it is not one of the question's answers."""
        item = question.item
        present = [name for name in answer if name.startswith("value")]
        if len(present) != 1:
            self.problem(link_id, "an answer has exactly one value[x]")
            return _INVALID
        (kind_name,) = present
        raw = answer[kind_name]
        if question.instrument is not None:
            spec = question.instrument
            allowed = item.item_values[question.number - 1]  # type: ignore[operator]
            if spec.kind is AnswerKind.ORDINAL:
                return self.score(link_id, question, allowed, kind_name, raw)
            return self.yes_no(link_id, kind_name, raw)
        if item.kind is Kind.BOOLEAN:
            # true or false only: not 1, 0 or "true", which lax parsing would take.
            boolean = kind_name == "valueBoolean" and isinstance(raw, bool)
            return raw if boolean else self.wrong(link_id, "valueBoolean")
        if item.kind is Kind.INTEGER:
            return raw if kind_name == "valueInteger" else self.wrong(link_id, "valueInteger")
        if item.kind is Kind.NUMBER:
            # FHIR JSON writes decimals as numbers; a string is not one.
            if kind_name in ("valueDecimal", "valueInteger") and _is_number(raw):
                return float(raw)
            return self.wrong(link_id, "valueDecimal")
        if item.kind is Kind.YES_NO_OR_DECLINED:
            return self.yes_no(link_id, kind_name, raw)
        return self.choice(link_id, item, kind_name, raw)

    def choice(self, link_id: str, item: FormItem, kind_name: str, raw: Any) -> Any:
        """One of the item's choices: a Coding (in the choices' code system, or without a
        system) or a plain string; _NONE_OF_THESE for a multiple choice's "None of these"."""
        assert item.choices is not None
        system = choice_system(self.vocabulary, item.choices)
        if kind_name == "valueCoding" and isinstance(raw, dict):
            if (
                item.kind is Kind.MULTIPLE_CHOICE
                and raw.get("code") == "none"
                and raw.get("system") == self.vocabulary.code_system("answer-special")
            ):
                return _NONE_OF_THESE
            if raw.get("system") in (None, system) and raw.get("code") in _values(item):
                return raw["code"]
            self.problem(link_id, f"the code is not one of {system}")
            return _INVALID
        if kind_name == "valueString" and raw in _values(item):
            return raw
        return self.wrong(link_id, "valueCoding")

    def score(
        self,
        link_id: str,
        question: Question,
        allowed: tuple[int | bool, ...],
        kind_name: str,
        raw: Any,
    ) -> Any:
        spec = question.instrument
        assert spec is not None
        assert question.number is not None
        if kind_name == "valueInteger":
            score: Any = raw
        elif kind_name == "valueCoding" and isinstance(raw, dict):
            score = self.coded_score(spec, question.number, raw)
        else:
            return self.wrong(link_id, "valueCoding or valueInteger")
        if score == DECLINED or (isinstance(score, int) and score in allowed):
            return score
        self.problem(link_id, f"is not an answer of {spec.title} (scores {list(allowed)})")
        return _INVALID

    def coded_score(self, spec: InstrumentSpec, number: int, coding: dict[str, Any]) -> Any:
        """The score of a coded answer: the item's LOINC answer codes, or our item scores;
        None for any other."""
        system, code = coding.get("system"), coding.get("code")
        if system == self.vocabulary.item_responses and code == DECLINED:
            return DECLINED
        if system == LOINC and isinstance(code, str):
            return item_content(spec.id, number).value_of(code)
        if system == self.vocabulary.item_scores and isinstance(code, str):
            return int(code) if _SCORE_CODE.fullmatch(code) else None
        return None

    def yes_no(self, link_id: str, kind_name: str, raw: Any) -> Any:
        if kind_name == "valueBoolean" and isinstance(raw, bool):
            return raw
        if kind_name == "valueCoding" and isinstance(raw, dict):
            system, code = raw.get("system"), raw.get("code")
            if system == LOINC and code in (YES, NO):
                return code == YES
            if system == self.vocabulary.item_responses and code == DECLINED:
                return DECLINED
            self.problem(link_id, f"answers are LOINC {YES} (yes), {NO} (no) or declined")
            return _INVALID
        return self.wrong(link_id, "valueCoding or valueBoolean")

    def wrong(self, link_id: str, expected: str) -> Any:
        self.problem(link_id, f"the answer must be a {expected}")
        return _INVALID

    def put(self, path: str, value: Any) -> None:
        *sections, name = path.split(".")
        target = self.answers
        for section in sections:
            target = target.setdefault(section, {})
        target[name] = value

    def finish(self) -> None:
        """Instrument item lists, in order. Within an instrument that was given (said so, or
        answered in part) a question left unanswered counts as declined: every item of an item
        list, every question it always asks, and a follow-up whose gate was answered yes. An
        instrument rated by its total needs the total. An instrument said not to be given
        takes no answers."""
        questions, _ = link_ids()
        for path, given in self.given.items():
            if not given:
                self.not_given(path)
        if self.issues:
            return
        for instrument in _instruments():
            if self.given.get(instrument.path) or self.answered(instrument.path):
                self.complete(instrument)
        if self.issues:
            return
        for path, items in self.items.items():
            count = sum(1 for q in questions.values() if q.item.path == path)
            if path == _CRAFFT_ITEMS and self.crafft_car_only(items):
                count = 1
            self.put(path, [items.get(number, DECLINED) for number in range(1, count + 1)])

    def crafft_car_only(self, items: dict[int, Any]) -> bool:
        """The questionnaire asks CRAFFT 2.1's CAR item alone when every Part A question is
        answered 0 (one left blank asks the rest of Part B): then Part B is CAR alone, unless
        more of it was answered anyway."""
        part_a = [_value_at(self.answers, f"instruments.crafft.{name}") for name in CRAFFT_PART_A]
        answered = None not in part_a
        return answered and crafft_part_a_use(part_a) is False and set(items) <= {1}

    def answered(self, path: str) -> bool:
        return _answered_under(self.answers, path) or any(
            item_path.startswith(f"{path}.") for item_path in self.items
        )

    def complete(self, instrument: FormItem) -> None:
        """Fill what a given instrument left unanswered (see ``finish``)."""
        for question in instrument.children:
            asked = question.required or self.follow_up_asked(question)
            if not asked or self.answered(question.path) or question.path in self.items:
                continue
            if question.kind is Kind.ITEMS:
                self.items[question.path] = {}
            elif question.kind is Kind.YES_NO_OR_DECLINED:
                self.put(question.path, DECLINED)
            else:
                self.problem(question.path, "is required when the instrument is given")

    def follow_up_asked(self, question: FormItem) -> bool:
        """Whether the answer that asks a follow-up was given (ASQ item 5: a yes to any item)."""
        condition = question.asked_when
        if condition is None:
            return False
        if condition.any_item:
            return condition.equals in self.items.get(condition.path, {}).values()
        return bool(_value_at(self.answers, condition.path) == condition.equals)

    def not_given(self, path: str) -> None:
        if self.answered(path):
            self.problem(given_link_id(path), "is false, yet items of that instrument are answered")


def _instruments() -> tuple[FormItem, ...]:
    """The instruments, each one group of the ``instruments`` section."""
    (section,) = (top for top in form() if top.path == "instruments")
    return section.children


def _value_at(answers: dict[str, Any], path: str) -> Any:
    target: Any = answers
    for part in path.split("."):
        if not isinstance(target, dict):
            return None
        target = target.get(part)
    return target


def _answered_under(answers: dict[str, Any], path: str) -> bool:
    target: Any = answers
    for part in path.split("."):
        if not isinstance(target, dict) or part not in target:
            return False
        target = target[part]
    return True


_CRAFFT_ITEMS: Final = "instruments.crafft.items"


class _Sentinel:
    pass


_INVALID: Any = _Sentinel()
_ECHOABLE_LINK_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")
_SCORE_CODE = re.compile(r"[0-9]{1,2}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_NONE_OF_THESE: Any = _Sentinel()


def read_response(resource: Any, vocabulary: Vocabulary) -> ReadResponse:
    """The answers a QuestionnaireResponse gives (FhirError 400 for an invalid resource, 422
    for one carelevel cannot use). The former canonical base is read as the current one."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "QuestionnaireResponse":
        raise FhirError(
            400,
            "Send a QuestionnaireResponse resource.",
            [Issue(diagnostics="resourceType must be QuestionnaireResponse", code="structure")],
        )
    refuse_deep_items(resource)
    resource = with_current_canonicals(resource, vocabulary)
    try:
        QuestionnaireResponse.model_validate(resource)
    except ValidationError as error:
        raise FhirError(
            400, "The QuestionnaireResponse is not valid FHIR R4.", _structure_issues(error)
        ) from None
    if resource.get("status") not in ANSWERED:
        raise FhirError(
            422,
            "Only a completed or amended QuestionnaireResponse can be evaluated.",
            [
                Issue(
                    diagnostics="status must be completed or amended",
                    expression="QuestionnaireResponse.status",
                    code="business-rule",
                )
            ],
        )
    key, pin = _canonical(resource.get("questionnaire"), vocabulary)
    reader = _Reader(vocabulary)
    reader.walk(resource.get("item") or [])
    if not reader.issues:
        reader.finish()
    if reader.issues:
        raise FhirError(
            422, "The QuestionnaireResponse does not fit the Questionnaire.", reader.issues
        )
    context = {
        name: resource[name]
        for name in ("id", "identifier", "subject", "encounter", "authored", "source", "basedOn")
        if resource.get(name) is not None
    }
    return ReadResponse(key=key, pin=pin, answers=reader.answers, context=context)


def answers_link_id(location: tuple[str | int, ...]) -> str:
    """The linkId a validation error of the answers concerns (``("instruments", "phq9",
    "items", 3)`` → ``instruments.phq9.items.4``)."""
    parts = [str(part) for part in location if not isinstance(part, int)]
    indices = [part for part in location if isinstance(part, int)]
    path = ".".join(parts)
    questions, groups = link_ids()
    if parts and parts[-1] == "items" and indices:
        candidate = f"{path}.{indices[-1] + 1}"
        if candidate in questions:
            return candidate
    while path and path not in questions and path not in groups:
        path = path.rpartition(".")[0]
    return path or "(root)"


def _values(item: FormItem) -> frozenset[str]:
    assert item.choices is not None
    return frozenset(member.value for member in item.choices)

"""Answers written as a FHIR QuestionnaireResponse: the example the API docs show, the one the
integration guide copies, and the tests' way to send the same answers through REST and FHIR."""

from __future__ import annotations

from typing import Any

from app.engine.answers import EXAMPLE_SECTIONS
from app.engine.instrument_content import item_content
from app.engine.instruments import AnswerKind
from app.fhir.questionnaire import given_link_id
from app.fhir.terminology import (
    LOINC,
    NO,
    YES,
    Vocabulary,
    choice_system,
)
from app.questionnaire import FormItem, Kind, form


def _yes_no(vocabulary: Vocabulary, value: Any) -> dict[str, Any]:
    if value == "declined":
        return {"valueCoding": {"system": vocabulary.item_responses, "code": "declined"}}
    return {"valueCoding": {"system": LOINC, "code": YES if value else NO}}


def _score(vocabulary: Vocabulary, item: FormItem, number: int, value: Any) -> dict[str, Any]:
    spec = item.instrument
    assert spec is not None
    if value == "declined":
        return {"valueCoding": {"system": vocabulary.item_responses, "code": "declined"}}
    if spec.kind is not AnswerKind.ORDINAL:
        return _yes_no(vocabulary, value)
    code = item_content(spec.id, number).code_of(value)
    if code is not None:
        return {"valueCoding": {"system": LOINC, "code": code}}
    return {"valueCoding": {"system": vocabulary.item_scores, "code": str(value)}}


def _answers(vocabulary: Vocabulary, item: FormItem, value: Any) -> list[dict[str, Any]]:
    if item.kind is Kind.BOOLEAN:
        return [{"valueBoolean": value}]
    if item.kind is Kind.INTEGER:
        return [{"valueInteger": value}]
    if item.kind is Kind.NUMBER:
        return [{"valueDecimal": value}]
    if item.kind is Kind.YES_NO_OR_DECLINED:
        return [_yes_no(vocabulary, value)]
    assert item.choices is not None
    system = choice_system(vocabulary, item.choices)
    if item.kind is Kind.MULTIPLE_CHOICE:
        if not value:
            return [
                {
                    "valueCoding": {
                        "system": vocabulary.code_system("answer-special"),
                        "code": "none",
                    }
                }
            ]
        return [{"valueCoding": {"system": system, "code": code}} for code in value]
    return [{"valueCoding": {"system": system, "code": value}}]


def _items(
    vocabulary: Vocabulary, items: tuple[FormItem, ...], answers: dict[str, Any]
) -> list[dict[str, Any]]:
    written: list[dict[str, Any]] = []
    for item in items:
        if item.name not in answers or answers[item.name] is None:
            continue
        value = answers[item.name]
        if item.kind is Kind.GROUP:
            children = _items(vocabulary, item.children, value)
            if children and item.path.startswith("instruments."):  # say it was given
                given = {"linkId": given_link_id(item.path), "answer": [{"valueBoolean": True}]}
                written.append(given)
            if children:
                written.append({"linkId": item.path, "item": children})
        elif item.kind is Kind.ITEMS:
            questions = [
                {
                    "linkId": f"{item.path}.{number}",
                    "answer": [_score(vocabulary, item, number, answer)],
                }
                for number, answer in enumerate(value, start=1)
            ]
            written.extend(questions)
        else:
            written.append({"linkId": item.path, "answer": _answers(vocabulary, item, value)})
    return written


def response_for(
    vocabulary: Vocabulary,
    answers: dict[str, Any],
    *,
    key: str = "iop-level-of-care",
    version: str | None = None,
    subject: str | None = "Patient/example",
    status: str = "completed",
) -> dict[str, Any]:
    """A QuestionnaireResponse giving ``answers`` (as the REST API's ``answers`` writes them)."""
    canonical = vocabulary.questionnaire(key) + (f"|{version}" if version else "")
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": canonical,
        "status": status,
        "authored": "2026-11-26T14:05:00Z",
        "item": _items(vocabulary, form(), answers),
    }
    if subject:
        response["subject"] = {"reference": subject}
    return response


def example_response(vocabulary: Vocabulary) -> dict[str, Any]:
    """The API docs' example: the adult suited to IOP that every REST example uses."""
    example = response_for(vocabulary, EXAMPLE_SECTIONS, subject="Patient/1288992")
    return {
        "resourceType": example.pop("resourceType"),
        "id": "qr-1288992-intake",
        "identifier": {
            "system": "urn:ietf:rfc:3986",
            "value": "urn:uuid:4f2d1c3e-8b1a-4a4e-9c55-0a1d2e3f4b5c",
        },
        **example,
        "encounter": {"reference": "Encounter/89284"},
    }

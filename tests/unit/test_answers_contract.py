"""The questionnaire model is the public contract: every field is documented with an example,
and the examples are valid answers."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from app.engine.answers import EXAMPLE_SECTIONS, ScreeningAnswers


def _properties() -> list[tuple[str, str, dict[str, Any]]]:
    schema = ScreeningAnswers.model_json_schema()
    found = [("ScreeningAnswers", name, p) for name, p in schema["properties"].items()]
    for model, definition in schema.get("$defs", {}).items():
        found += [(model, name, p) for name, p in definition.get("properties", {}).items()]
    return found


@pytest.mark.parametrize(("model", "field", "schema"), _properties(), ids=lambda v: str(v)[:40])
def test_every_field_has_a_description_and_an_example(
    model: str, field: str, schema: dict[str, Any]
) -> None:
    assert schema.get("description"), f"{model}.{field} has no description"
    assert schema.get("examples"), f"{model}.{field} has no example"


def test_the_model_example_is_a_valid_screening() -> None:
    (example,) = ScreeningAnswers.model_json_schema()["examples"]
    assert ScreeningAnswers.model_validate(example) == ScreeningAnswers.model_validate(
        EXAMPLE_SECTIONS
    )


def _nested_models(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    found = []
    for name, field in model.model_fields.items():
        for candidate in getattr(field.annotation, "__args__", (field.annotation,)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                found.append((name, candidate))
    return found


@pytest.mark.parametrize(("section", "model"), _nested_models(ScreeningAnswers))
def test_each_section_example_validates_in_its_section(
    section: str, model: type[BaseModel]
) -> None:
    for example in ScreeningAnswers.model_fields[section].examples or []:
        model.model_validate(example)
    for name, inner in _nested_models(model):
        for example in model.model_fields[name].examples or []:
            inner.model_validate(example)
